"""A scanner as a device source of the check-in flow: lines in, access keys out.

Both kinds of scanner send text lines over a serial port (``serial_for_url``: a
device, a pty, ``socket://``).  The framing lives in :mod:`agent.scan.framer`, the
parsing in :mod:`agent.scan.parse`, the reading loop in :mod:`agent.scan.loop`; this
class only runs that loop in a thread and submits the keys to the flow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.app.ports import Trigger
from agent.scan.loop import ScanLoop
from agent.scan.parse import parse_scan

__all__ = ["ScannerSource", "parse_scan"]


class ScannerSource:
    """Reads a serial scanner in a thread and submits keys to the flow."""

    def __init__(self, url: str, kind: str, baudrate: int = 9600) -> None:
        self.url = url
        self.kind = kind
        self.name = f"{kind} scanner"
        self.baudrate = baudrate
        self.loop = ScanLoop(url, kind, baudrate, name=self.name)
        self.ready = self.loop.ready  # set while the port is open
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def error(self) -> str | None:
        return self.loop.error

    @property
    def scans(self) -> int:
        return self.loop.scans

    def state(self) -> str:
        return f"error: {self.error}" if self.error else "ok"

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self._thread = threading.Thread(target=self.loop.run, args=(self._stop, submit), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)
