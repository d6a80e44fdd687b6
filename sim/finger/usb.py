"""A simulated USB fingerprint sensor: the device side of libfprint's ``virtual_image`` driver.

The agent opens ``fprint://virtual_image?socket=PATH``: libfprint (the real library,
Debian's build) listens on PATH.  This class connects there and plays the sensor:
when a patient puts a finger down it sends the image — ``int32 width, int32
height`` in the host's byte order, then ``width * height`` grey bytes — and libfprint
hands it to the capture in progress.  Negative widths are the driver's commands
(-1 retry, -2 error, -3 automatic finger detection, -4 finger on/off, -5 unplug).

``t_capture`` models the sensor's read-out and USB transfer, scaled by ``speed``.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from pathlib import Path

from sim.finger import synth

log = logging.getLogger(__name__)
RETRY, ERROR, AUTO_FINGER, FINGER_STATUS, REMOVE = -1, -2, -3, -4, -5


class VirtualImageSensor:
    def __init__(self, path: Path | str, *, t_capture: float = 0.15, speed: float = 1.0) -> None:
        self.path = Path(path)
        self.t_capture = t_capture
        self.speed = speed
        self.captures = 0
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def connect(self, timeout: float = 15.0) -> VirtualImageSensor:
        """Connect once libfprint listens (the agent opens the device at start)."""
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.path))
            except OSError:
                s.close()
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"libfprint does not listen on {self.path}") from None
                time.sleep(0.05)
                continue
            self._sock = s
            return self

    def _send(self, data: bytes) -> None:
        with self._lock:
            if self._sock is None:
                self.connect()
            assert self._sock is not None
            try:
                self._sock.sendall(data)
            except OSError:  # the agent restarted: libfprint listens again on the same path
                self._sock.close()
                self.connect()
                self._sock.sendall(data)

    def present(self, width: int, height: int, pixels: bytes) -> None:
        """A finger on the sensor: its image goes to libfprint (after the modelled read-out time)."""
        if len(pixels) != width * height:
            raise ValueError(f"{len(pixels)} bytes for a {width}x{height} image")
        if self.speed:
            time.sleep(self.t_capture * self.speed)
        self.captures += 1
        self._send(struct.pack("=ii", width, height) + pixels)

    def present_finger(self, key: str) -> synth.Impression:
        """The next live impression of the synthetic finger ``key`` ("ID:position")."""
        live = synth.live_for(key, self.captures)
        self.present(live.width, live.height, live.pixels)
        return live

    def command(self, code: int, value: int = 0) -> None:
        self._send(struct.pack("=ii", code, value))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
