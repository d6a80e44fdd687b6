"""Line-oriented control channels for simulated devices: stdin, a Unix socket, a FIFO.

A device takes one text command a line and gives one JSON answer line each.  A
:class:`Handler` is anything with ``command(line) -> dict`` and a ``stop`` event
(set by a ``quit`` command or a signal).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO

MAX_LINE = 1024


class Handler(Protocol):
    stop: threading.Event

    def command(self, line: str) -> dict[str, Any]: ...


def _answer(out: TextIO, lock: threading.Lock, answer: dict[str, Any]) -> None:
    with lock:
        out.write(json.dumps(answer) + "\n")
        out.flush()


def serve_lines(controller: Handler, lines: TextIO, out: TextIO, out_lock: threading.Lock) -> None:
    """Commands from a text stream (stdin or a FIFO), answers on ``out``, until end of input or quit."""
    for line in lines:
        if not line.strip():
            continue
        _answer(out, out_lock, controller.command(line))
        if controller.stop.is_set():
            return


class SocketControl:
    """A Unix stream socket at ``path``: each connection sends command lines and reads one answer line each."""

    def __init__(self, controller: Handler, path: Path) -> None:
        self.controller = controller
        self.path = Path(path)
        if self.path.is_socket():
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, name="finger-control", daemon=True).start()

    def _accept(self) -> None:
        while not self.controller.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        with conn, conn.makefile("rwb") as stream:
            while True:
                raw = stream.readline(MAX_LINE + 1)
                if not raw:
                    return
                if len(raw) > MAX_LINE:
                    answer: dict[str, Any] = {"ok": False, "error": "line too long"}
                else:
                    answer = self.controller.command(raw.decode("utf-8", "replace"))
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()

    def close(self) -> None:
        self.sock.close()
        if self.path.is_socket():
            self.path.unlink()


def open_fifo(path: Path) -> TextIO:
    """Create the FIFO if needed and open it so that writers coming and going never end the input."""
    if not path.exists():
        os.mkfifo(path, 0o600)
    elif not stat.S_ISFIFO(path.stat().st_mode):
        raise ValueError(f"{path} exists and is not a FIFO")
    fd = os.open(path, os.O_RDWR)  # holding a writer end ourselves: no end of file when a writer closes
    return os.fdopen(fd, "r", encoding="utf-8", errors="replace")


def send(path: Path, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one command to a module's control socket and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data))


def start_thread(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def stop_on_signals(stop: threading.Event) -> threading.Event:
    """SIGTERM and SIGINT set ``stop`` (a clean shutdown instead of a kill); returns it."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def serve_until_stopped(controller: Handler, prog: str, control: Path | None, fifo: Path | None,
                        ready: dict[str, Any]) -> int:  # fmt: skip
    """Take commands on the socket ``control``, the FIFO ``fifo`` and stdin; print ``ready``; wait for stop.

    Returns the exit code: 2 when the FIFO cannot be opened (said on stderr as ``prog``), else 0.
    """
    out_lock = threading.Lock()
    server = None
    try:
        if control:
            server = SocketControl(controller, control)
        if fifo:
            try:
                lines = open_fifo(fifo)
            except (ValueError, OSError) as exc:
                sys.stderr.write(f"{prog}: error: {exc}\n")
                return 2
            start_thread(serve_lines, controller, lines, sys.stdout, out_lock)
        with out_lock:
            sys.stdout.write(json.dumps(ready) + "\n")
            sys.stdout.flush()
        if sys.stdin is not None and not sys.stdin.closed:
            start_thread(serve_lines, controller, sys.stdin, sys.stdout, out_lock)
        while not controller.stop.wait(0.5):
            pass
    finally:
        if server is not None:
            server.close()
    return 0
