"""The reading loop of one scanner: serial port (through :class:`SerialPort`) -> framer -> keys.

Opens the port by URL, sets ``ready`` once it is open (tests and the daemon wait on
it rather than guessing how long an open takes), feeds what arrives to a
:class:`ScanFramer`, parses each complete scan and hands the keys on.  A silence of
``pause`` seconds ends a partial MRZ.  A port that fails is closed and opened again
after a second; the error stays readable in ``error`` for the daemon's status.

A bad scan is logged with the name of the field that failed, never its value (an
:class:`InputError` message may quote a date of birth or an ID number): the patient
scans again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.card.errors import InputError
from agent.errors import SerialTransportError, TransportTimeoutError
from agent.scan.framer import ScanFramer
from agent.scan.parse import ScannedKeys, parse_scan
from agent.transport.serial import SerialPort

log = logging.getLogger(__name__)

PortOpener = Callable[[str, int], SerialPort]
PAUSE = 0.3  # seconds of silence that end a partial MRZ (the profiles' line_timeout)
REOPEN = 1.0  # seconds between attempts to open a failed port


def open_port(url: str, baudrate: int) -> SerialPort:
    return SerialPort(url, baudrate)


class ScanLoop:
    def __init__(
        self,
        url: str,
        kind: str,
        baudrate: int = 9600,
        *,
        name: str | None = None,
        pause: float = PAUSE,
        opener: PortOpener = open_port,
    ) -> None:
        self.url = url
        self.kind = kind
        self.name = name or f"{kind} scanner"
        self.baudrate = baudrate
        self.pause = pause
        self.framer = ScanFramer(kind)
        self.ready = threading.Event()  # set while the port is open
        self.error: str | None = None
        self.scans = 0
        self.bad_scans = 0
        self._opener = opener

    def run(self, stop: threading.Event, submit: Callable[[ScannedKeys], None]) -> None:
        """Read until ``stop`` is set."""
        while not stop.is_set():
            try:
                port = self._opener(self.url, self.baudrate)
            except SerialTransportError as exc:
                self.error = f"{self.name}: {exc}"
                stop.wait(REOPEN * 2)
                continue
            self.error = None
            self.ready.set()
            try:
                self._read(port, stop, submit)
            except SerialTransportError as exc:
                self.error = f"{self.name}: {exc}"
                log.warning("%s", self.error)
            finally:
                self.ready.clear()
                port.close()
            stop.wait(REOPEN)

    def _read(self, port: SerialPort, stop: threading.Event, submit: Callable[[ScannedKeys], None]) -> None:
        while not stop.is_set():
            try:
                data = port.read_some(time.monotonic() + self.pause)
            except TransportTimeoutError:
                self.framer.pause()
                continue
            for text in self.framer.feed(data):
                keys = self.parse(text)
                if keys is not None:
                    self.scans += 1
                    submit(keys)

    def parse(self, text: str) -> ScannedKeys | None:
        """One complete scan -> keys; a bad one is logged by field name and gives None."""
        try:
            return parse_scan(text, self.kind)
        except InputError as exc:
            self.bad_scans += 1
            self.framer.discard_partial()
            log.warning("%s: bad scan (%s)", self.name, exc.field or "input")
            return None
