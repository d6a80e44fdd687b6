"""The scanner line framer byte by byte, and the reading loop over a real pyserial ``loop://`` port."""

from __future__ import annotations

import logging
import threading

import pytest

from agent.scan.framer import ScanFramer
from agent.scan.loop import ScanLoop
from agent.scan.parse import ScannedKeys
from agent.transport.serial import SerialPort
from sim.population import make_person

PERSON = make_person(5)
TD1 = PERSON.td1()
TD3 = PERSON.td3()


def feed_all(framer: ScanFramer, chunks: list[bytes]) -> list[str]:
    out: list[str] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


def test_line_ends_cr_lf_and_crlf_frame_alike() -> None:
    for end in (b"\r", b"\n", b"\r\n", b"\n\r"):
        framer = ScanFramer("qr")
        assert framer.feed(b"first" + end + b"second" + end) == ["first", "second"]
        assert not framer.partial
    assert ScanFramer("qr").feed(b"\r\n\r\n  \r\nonly\n\n") == ["only"]  # empty lines are no scans


def test_a_line_without_its_end_is_held() -> None:
    framer = ScanFramer("qr")
    assert framer.feed(b"001090012345") == []
    assert framer.partial
    assert framer.feed(b"\r\n") == ["001090012345"]


def test_mrz_lines_are_grouped_td1_three_by_thirty_td3_two_by_forty_four() -> None:
    framer = ScanFramer("mrz")
    assert framer.feed(TD1[0].encode() + b"\r\n") == []
    assert framer.feed(TD1[1].encode() + b"\r\n") == []
    assert framer.feed(TD1[2].encode() + b"\r\n") == ["\n".join(TD1)]
    assert framer.feed(("\r\n".join(TD3) + "\r\n").encode()) == ["\n".join(TD3)]
    assert framer.feed(TD1[0].lower().encode() + b"\n" + TD1[1].encode() + b"\n" + TD1[2].encode() + b"\n") == [
        "\n".join(TD1)  # upper-cased
    ]
    assert not framer.partial


def test_a_qr_scanner_does_not_group_lines() -> None:
    assert ScanFramer("qr").feed(("\r\n".join(TD1) + "\r\n").encode()) == list(TD1)


def test_every_split_of_a_mixed_stream_frames_the_same() -> None:
    stream = (
        ("\r\n".join(TD1) + "\r\n").encode()
        + b"garbage \xff\x00 that is no scan\r"
        + ("\n".join(TD3) + "\n").encode()
        + b"\r\n"
        + ("\r".join(TD1) + "\r").encode()
    )
    whole = ScanFramer("mrz").feed(stream)
    assert whole == ["\n".join(TD1), "garbage \ufffd\x00 that is no scan", "\n".join(TD3), "\n".join(TD1)]
    for cut in range(len(stream) + 1):
        assert feed_all(ScanFramer("mrz"), [stream[:cut], stream[cut:]]) == whole, cut
    for cut in range(0, len(stream), 7):
        assert feed_all(ScanFramer("mrz"), [stream[:cut], stream[cut : cut + 3], stream[cut + 3 :]]) == whole, cut
    assert feed_all(ScanFramer("mrz"), [stream[i : i + 1] for i in range(len(stream))]) == whole


def test_a_pause_ends_a_partial_mrz() -> None:
    framer = ScanFramer("mrz")
    assert framer.feed(("\r\n".join(TD1[:2]) + "\r\n").encode()) == []
    assert framer.partial
    framer.pause()
    assert not framer.partial
    # the next document is framed on its own, not glued to the two lines before
    assert framer.feed(("\r\n".join(TD1) + "\r\n").encode()) == ["\n".join(TD1)]


def test_an_overlong_line_is_dropped_to_its_end_without_its_content_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    framer = ScanFramer("qr", max_line=64)
    secret = b"001090012345|" + b"X" * 100
    with caplog.at_level(logging.WARNING):
        assert framer.feed(secret[:50]) == []
        assert framer.feed(secret[50:]) == []  # over the limit: dropped, and so is the rest of the line
        assert framer.feed(b"Y" * 500) == []
        assert framer.feed(b"\r\nnext\r\n") == ["next"]
    assert framer.dropped_lines == 1
    assert "longer than 64 bytes" in caplog.text and "001090012345" not in caplog.text and "XXX" not in caplog.text
    assert framer.feed(b"A" * 64 + b"\n") == ["A" * 64]  # exactly at the limit is a line


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="mrz or qr"):
        ScanFramer("barcode")


def test_the_loop_over_a_real_port_submits_keys_and_logs_only_the_field(caplog: pytest.LogCaptureFixture) -> None:
    port = SerialPort("loop://", 9600)
    loop = ScanLoop("loop://", "qr", opener=lambda url, baud: port)
    stop = threading.Event()
    got: list[ScannedKeys] = []
    arrived = threading.Event()

    def submit(keys: ScannedKeys) -> None:
        got.append(keys)
        arrived.set()

    thread = threading.Thread(target=loop.run, args=(stop, submit), daemon=True)
    with caplog.at_level(logging.WARNING):
        thread.start()
        try:
            assert loop.ready.wait(5)
            bad = PERSON.qr().split("|")
            bad[3] = "31022099"  # no such date of birth: the error message quotes it
            port.write("|".join(bad).encode() + b"\r\n")
            port.write(PERSON.qr().encode() + b"\r\n")
            assert arrived.wait(5)
        finally:
            stop.set()
            thread.join(5)
    assert [k.id_number for k in got] == [PERSON.id_number] and loop.scans == 1 and loop.bad_scans == 1
    assert "bad scan (birth)" in caplog.text
    assert "31022099" not in caplog.text and PERSON.id_number not in caplog.text
    assert not loop.ready.is_set()  # the port was closed on stop


def test_a_port_that_does_not_open_is_an_error_state_not_ready() -> None:
    stop = threading.Event()

    def opener(url: str, baudrate: int) -> SerialPort:
        stop.set()  # one attempt: run() returns after it
        return SerialPort(url, baudrate)

    loop = ScanLoop("/nonexistent/scanner", "mrz", opener=opener)
    loop.run(stop, lambda keys: None)
    assert loop.error is not None and "/nonexistent/scanner" in loop.error and not loop.ready.is_set()
