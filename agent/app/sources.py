"""The device sources of the daemon: each turns what a device sees into triggers in the flow's inbox.

* :class:`CardWatcherSource` -- a card arriving on or leaving the PC/SC reader;
* :class:`ScannerSource` -- an MRZ or QR scanner on a serial line (what a scan means: :mod:`agent.scan.source`);
* :class:`AttendantSocket` -- the attendant's Unix socket (what a request means: :mod:`agent.app.attendant`).

Each runs its own thread (the card watcher's is in :mod:`agent.transport.pcsc`) and
satisfies :class:`agent.app.ports.DeviceSource`; the flow alone decides what a trigger leads to.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.app.attendant import MAX_LINE, trigger_from_request
from agent.app.ports import CardInserted, CardRemoved, KeysEntered, Trigger
from agent.card.errors import InputError
from agent.errors import GateAgentError, SerialTransportError
from agent.scan.source import parse_scan

log = logging.getLogger(__name__)

_MRZ_LINE = re.compile(r"^[A-Z0-9<]{30}$|^[A-Z0-9<]{44}$")


class CardWatcherSource:
    """PC/SC card presence as flow triggers."""

    name = "card reader"

    def __init__(self, reader: str) -> None:
        from agent.transport.pcsc import CardWatcher

        self.watcher = CardWatcher(reader)

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self.watcher.start_watch(lambda present: submit(CardInserted() if present else CardRemoved()))

    def stop(self) -> None:
        self.watcher.stop()

    def state(self) -> str:
        return self.watcher.state()


class ScannerSource:
    """Reads a serial scanner in a thread and submits keys to the flow."""

    def __init__(self, url: str, kind: str, baudrate: int = 9600) -> None:
        self.url = url
        self.kind = kind
        self.name = f"{kind} scanner"
        self.baudrate = baudrate
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.scans = 0

    def state(self) -> str:
        return f"error: {self.error}" if self.error else "ok"

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(submit,), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)

    def _open(self) -> object:
        import serial

        try:
            return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.3)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialTransportError(f"{self.name} at {self.url}: {exc}") from exc

    def _run(self, submit: Callable[[Trigger], None]) -> None:
        import serial

        while not self._stop.is_set():
            try:
                port = self._open()
            except SerialTransportError as exc:
                self.error = str(exc)
                self._stop.wait(2)
                continue
            self.error = None
            lines: list[str] = []
            buffer = b""
            try:
                while not self._stop.is_set():
                    # what is buffered now, else wait (up to the port timeout) for one byte: a whole
                    # line goes on at once instead of waiting out the timeout for a full block
                    chunk = port.read(port.in_waiting or 1)  # type: ignore[attr-defined]
                    if not chunk:
                        if lines:  # a pause ends a multi-line MRZ that did not parse yet
                            lines = []
                        continue
                    buffer += chunk
                    while b"\n" in buffer or b"\r" in buffer:
                        raw, _, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").partition(b"\n")
                        line = raw.decode("utf-8", "replace").strip()
                        if line:
                            lines = self._line(line, lines, submit)
            except (serial.SerialException, OSError) as exc:
                self.error = f"{self.name}: {exc}"
                log.warning("%s", self.error)
            finally:
                port.close()  # type: ignore[attr-defined]
            self._stop.wait(1)

    def _line(self, line: str, lines: list[str], submit: Callable[[Trigger], None]) -> list[str]:
        if self.kind == "mrz" and _MRZ_LINE.match(line.upper()):
            lines = [*lines, line.upper()]
            if len(lines) < 2 or (len(lines) == 2 and len(lines[0]) == 30):
                return lines
            text = "\n".join(lines)
            lines = []
        else:
            text = line
        try:
            scan = parse_scan(text, self.kind)
        except InputError as exc:
            log.warning("%s: bad scan (%s): %s", self.name, exc.field or "input", exc)
            return []
        if scan is not None:
            self.scans += 1
            submit(KeysEntered(scan.keys, scan.source, scan.id_number))
        return lines


class AttendantSocket:
    """A device source: serves the socket in a thread and submits triggers to the flow."""

    name = "attendant"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def state(self) -> str:
        return "ok" if self._sock is not None else "stopped"

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o660)
        except OSError as exc:
            sock.close()
            raise GateAgentError(f"cannot open the attendant socket {self.path}: {exc}") from exc
        sock.listen(4)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(submit,), name="attendant", daemon=True)
        self._thread.start()

    def _serve(self, submit: Callable[[Trigger], None]) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self._handle(conn, submit)
                except OSError as exc:
                    log.warning("attendant connection failed: %s", exc)

    def _handle(self, conn: socket.socket, submit: Callable[[Trigger], None]) -> None:
        data = b""
        while b"\n" not in data and len(data) < MAX_LINE:
            chunk = conn.recv(MAX_LINE)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\n", 1)[0]
        try:
            request = json.loads(line)
            trigger = trigger_from_request(request)
        except (ValueError, InputError) as exc:
            answer: dict[str, Any] = {"ok": False, "error": str(exc)}
        else:
            submit(trigger)
            answer = {"ok": True}
        conn.sendall((json.dumps(answer) + "\n").encode())

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(2)
        if self.path.exists():
            self.path.unlink()
