"""Fingerprint module: datasheet frames, the driver against the simulated module on a real pty, every fault."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.bio import protocol as p
from agent.bio.module import FingerprintModule, ModuleProfile
from agent.errors import TransportError
from sim.finger import synthetic
from sim.finger.module import PtyModule, SimModule, parse_sim_faults

H = bytes.fromhex


@pytest.mark.parametrize(
    ("packet", "wire"),
    [
        (p.command_packet("gen_img"), "EF01FFFFFFFF010003010005"),
        (p.command_packet("verify_pwd", 0), "EF01FFFFFFFF0100071300000000001B"),
        (p.command_packet("img2tz", 1), "EF01FFFFFFFF0100040201 0008"),
        (p.command_packet("search", 1, 0, 1000), "EF01FFFFFFFF010008040100 0003E8 00F9"),
        (p.Packet(p.PID_ACK, b"\x00"), "EF01FFFFFFFF07000300000A"),
    ],
)
def test_datasheet_frames_both_ways(packet: p.Packet, wire: str) -> None:
    raw = H(wire.replace(" ", ""))
    assert packet.to_bytes() == raw
    assert p.Packet.from_bytes(raw) == packet


def test_parser_skips_noise_and_waits_for_more() -> None:
    raw = p.command_packet("gen_img").to_bytes()
    packet, used = p.parse_packet(b"\x55\x00\x12" + raw + b"\xef")
    assert packet == p.command_packet("gen_img") and used == 3 + len(raw)
    assert p.parse_packet(raw[:7]) == (None, 0)
    with pytest.raises(p.FrameError, match="checksum"):
        p.parse_packet(raw[:-1] + b"\x00")


@given(st.binary(max_size=64))
def test_any_bytes_give_a_packet_nothing_or_a_frame_error(data: bytes) -> None:
    try:
        p.parse_packet(data)
    except p.FrameError:
        pass


def test_every_confirmation_code_is_a_typed_error_with_its_meaning() -> None:
    for code, (cls, meaning) in p.CONFIRMATION.items():
        error = p.module_error(code, "cmd")
        assert isinstance(error, cls) and meaning in str(error) and error.code == code
    assert "undocumented" in str(p.module_error(0x42))


def test_synthetic_fingers_match_their_own_identity_only() -> None:
    a1, a2 = synthetic.features("alice", noise_seed=1), synthetic.features("alice", noise_seed=2)
    b = synthetic.features("bob", noise_seed=3)
    assert synthetic.score(a1, a2) > 150 and synthetic.score(a1, b) < 10


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimModule, FingerprintModule]]:
    module = SimModule(speed=0)
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(str(tmp_path / "finger"), ModuleProfile(command_timeout=0.3, slow_timeout=0.5))
    yield module, driver
    driver.close()
    served.stop()


@pytest.mark.pty
def test_probe_enroll_identify_verify(sim: tuple[SimModule, FingerprintModule]) -> None:
    module, driver = sim
    driver.handshake()
    params = driver.system_parameters()
    assert (params.capacity, params.packet_size, params.baud) == (1000, 128, 57600)
    module.place("alice")
    driver.enroll(5, threading.Event(), 2)
    assert driver.template_count() == 1 and driver.index() == [5]
    assert driver.identify(threading.Event(), 2) == (5, pytest.approx(200, abs=100))
    module.place("bob")
    assert driver.identify(threading.Event(), 2) is None
    # 1:1 against a reference from the host (the chip's DG3): features, then an image converted on the module
    assert driver.capture_live(threading.Event(), 2)
    assert driver.verify_reference(synthetic.features("bob", size=512), 50).matched
    assert not driver.verify_reference(synthetic.features("alice", size=512), 50).matched
    assert driver.capture_live(threading.Event(), 2)
    assert driver.verify_reference(synthetic.reference_image("bob"), 50, image=True).matched
    template = driver.upload_template(1)
    assert len(template) == 512 and template[:4] == synthetic.TEMPLATE_HEADER
    assert len(driver.upload_image()) == synthetic.IMAGE_SIZE
    driver.delete(5)
    assert driver.template_count() == 0


@pytest.mark.pty
def test_waiting_for_a_finger_is_bounded_and_cancellable(sim: tuple[SimModule, FingerprintModule]) -> None:
    _, driver = sim
    driver.handshake()
    start = time.monotonic()
    assert driver.wait_finger(threading.Event(), 0.5) is False
    assert time.monotonic() - start < 2
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    assert driver.wait_finger(cancel, 30) is False and time.monotonic() - start < 2


@pytest.mark.pty
@pytest.mark.parametrize("spec", ["garbage=0.5,seed=1", "power-up", "checksum=0.3,seed=2", "drop=0.3,seed=3"])
def test_faults_are_survived(tmp_path: Path, spec: str) -> None:
    module = SimModule(speed=0, faults=parse_sim_faults(spec))
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(
        str(tmp_path / "finger"), ModuleProfile(command_timeout=0.3, slow_timeout=0.3, retries=6)
    )
    try:
        driver.handshake()
        module.place("carol")
        for _ in range(5):
            assert driver.capture_live(threading.Event(), 3)
            assert driver.verify_reference(synthetic.features("carol", size=512), 50).matched
    finally:
        driver.close()
        served.stop()


@pytest.mark.pty
def test_a_hung_module_is_reset_and_a_dead_one_is_a_clean_timeout(tmp_path: Path) -> None:
    module = SimModule(speed=0, faults=parse_sim_faults("hang=2"))
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(
        str(tmp_path / "finger"), ModuleProfile(command_timeout=0.2, slow_timeout=0.2, retries=1)
    )
    try:
        driver.handshake()
        module.place("dave")
        assert driver.wait_finger(threading.Event(), 3)  # hangs at command 2; the poll loop re-handshakes
        assert driver.stats["resets"] >= 1
    finally:
        served.stop()
    start = time.monotonic()
    with pytest.raises(TransportError):
        driver.handshake()  # the module is gone: a clean transport error, quickly
    assert time.monotonic() - start < 3
    driver.close()


@pytest.mark.pty
def test_wrong_password_is_typed(tmp_path: Path) -> None:
    module = SimModule(speed=0, password=1234)
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(str(tmp_path / "finger"), ModuleProfile(command_timeout=0.3))
    try:
        with pytest.raises(p.WrongPassword):
            driver.handshake()
        with pytest.raises(p.WrongPassword, match="must be verified"):
            driver.capture()
    finally:
        driver.close()
        served.stop()
