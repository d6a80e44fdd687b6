"""The device sources of the daemon: each turns what a device sees into triggers in the flow's inbox.

* :class:`CardWatcherSource` -- a card arriving on or leaving the PC/SC reader;
* :class:`ScannerSource` -- an MRZ or QR scanner on a serial line (the reading loop: :mod:`agent.scan.loop`);
* :class:`AttendantSocket` -- the attendant's Unix socket (what a request means: :mod:`agent.app.attendant`).

Each runs its own thread (the card watcher's is in :mod:`agent.transport.pcsc`) and
satisfies :class:`agent.app.ports.DeviceSource`; the flow alone decides what a trigger leads to.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.app.attendant import MAX_LINE, trigger_from_request
from agent.app.ports import CardInserted, CardRemoved, KeysEntered, Trigger
from agent.card.errors import InputError
from agent.errors import GateAgentError
from agent.scan.loop import ScanLoop
from agent.scan.parse import ScannedKeys

log = logging.getLogger(__name__)

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
    """Runs a scanner's reading loop (:class:`agent.scan.loop.ScanLoop`) in a thread and submits keys to the flow."""

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
        def keys_entered(scan: ScannedKeys) -> None:
            submit(KeysEntered(scan.keys, scan.source, scan.id_number))

        self._thread = threading.Thread(target=self.loop.run, args=(self._stop, keys_entered), name=self.name,
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)


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
