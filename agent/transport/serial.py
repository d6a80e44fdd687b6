"""Serial lines by URL (pyserial's ``serial_for_url``): a device path, a pty, ``loop://``, ``socket://host:port``.

Bytes only, with a deadline on every read; pyserial's exceptions become
:class:`SerialTransportError` (the port failed) or :class:`TransportTimeoutError`
(nothing arrived in time).
"""

from __future__ import annotations

import time

import serial

from agent.errors import SerialTransportError, TransportTimeoutError


class SerialPort:
    def __init__(self, url: str, baudrate: int = 57600, *, timeout: float = 0.05) -> None:
        self.url = url
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialTransportError(f"cannot open {url}: {exc}") from exc

    @property
    def baudrate(self) -> int:
        return int(self._port.baudrate)

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        try:
            self._port.baudrate = value
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialTransportError(f"{self.url}: cannot set {value} baud: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise SerialTransportError(f"{self.url}: write failed: {exc}") from exc

    def read_some(self, deadline: float, limit: int = 4096) -> bytes:
        """Whatever arrives before ``deadline`` (at least one byte), else TransportTimeoutError."""
        while True:
            try:
                waiting = self._port.in_waiting
                data = self._port.read(max(1, min(limit, waiting)))
            except (serial.SerialException, OSError) as exc:
                raise SerialTransportError(f"{self.url}: read failed: {exc}") from exc
            if data:
                return bytes(data)
            if time.monotonic() >= deadline:
                raise TransportTimeoutError(f"{self.url}: no answer in time")

    def discard_input(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise SerialTransportError(f"{self.url}: {exc}") from exc

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass
