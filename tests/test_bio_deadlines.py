"""A hostile fingerprint module cannot hold the gate: absolute deadlines, bounded buffers (real ptys)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from agent.bio.module import MAX_BUFFER, FingerprintModule
from agent.bio.protocol import PID_ACK, PID_DATA, FrameError, Packet
from agent.errors import TransportTimeoutError
from agent.profiles import ModuleProfile

pytestmark = pytest.mark.pty

PROFILE = ModuleProfile(command_timeout=0.3, slow_timeout=0.5, retries=2)


class Streamer:
    """The module's side of a pty that answers with an endless stream from ``produce``."""

    def __init__(self, produce: Callable[[random.Random], bytes]) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave
        self.produce = produce
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rng = random.Random(7)
        while not self.stop.is_set():
            try:
                os.write(self.master, self.produce(rng))
            except OSError:
                return
            time.sleep(0.001)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def streamer() -> Iterator[Callable[[Callable[[random.Random], bytes]], tuple[Streamer, FingerprintModule]]]:
    opened: list[tuple[Streamer, FingerprintModule]] = []

    def make(produce: Callable[[random.Random], bytes]) -> tuple[Streamer, FingerprintModule]:
        s = Streamer(produce)
        driver = FingerprintModule.open(s.path, PROFILE)
        opened.append((s, driver))
        return s, driver

    yield make
    for s, driver in opened:
        driver.close()
        s.close()


def _bounded(call: Callable[[], object], limit: float) -> tuple[float, object]:
    """Run ``call`` in a thread; fail when it has not returned after ``limit`` seconds."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:
            out.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still running after {limit} s: a stream extended the deadline"
    return time.monotonic() - start, out[0]


GARBAGE: dict[str, Callable[[random.Random], bytes]] = {
    "noise": lambda rng: bytes(rng.randrange(256) for _ in range(64)).replace(b"\xef\x01", b"\xee\x01"),
    "other_address": lambda rng: Packet(PID_ACK, b"\x02", 0x12345678).to_bytes(),
    "bad_checksums": lambda rng: Packet(PID_ACK, b"\x02", 0xFFFFFFFF).to_bytes()[:-1] + b"\x00",
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_waiting_for_a_finger_ends_at_its_deadline_whatever_the_module_sends(
    kind: str, streamer: Callable[[Callable[[random.Random], bytes]], tuple[Streamer, FingerprintModule]]
) -> None:
    _, driver = streamer(GARBAGE[kind])
    took, result = _bounded(lambda: driver.capture_live(threading.Event(), 1.0), 4.0)
    assert result is False or isinstance(result, TransportTimeoutError | FrameError), result
    assert took < 1.0 + PROFILE.slow_timeout + 0.5, took
    assert len(driver._buffer) <= MAX_BUFFER


def test_an_endless_upload_ends_at_its_size_limit_or_deadline(
    streamer: Callable[[Callable[[random.Random], bytes]], tuple[Streamer, FingerprintModule]]
) -> None:
    first = [True]

    def endless(rng: random.Random) -> bytes:
        if first[0]:
            first[0] = False
            return Packet(PID_ACK, b"\x00", 0xFFFFFFFF).to_bytes()  # "OK, data follows"
        return Packet(PID_DATA, bytes(128), 0xFFFFFFFF).to_bytes()  # ... and never ends

    _, driver = streamer(endless)
    took, result = _bounded(driver.upload_template, 10.0)
    assert isinstance(result, FrameError | TransportTimeoutError), result
    assert took < PROFILE.command_timeout + 2 * 4096 * 10 / PROFILE.baud + 1.0
