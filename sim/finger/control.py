"""The control channel of a simulated fingerprint module: one text command a line, one JSON answer a line.

Commands::

    place IDENTITY      a finger of IDENTITY on the sensor (see :func:`resolve_identity`)
    lift                take it off (``remove`` is the same)
    status              what is on the sensor, templates in the library, commands served
    quit                stop the simulated module

The same commands arrive on stdin (interactive use; end of input is not an end of
the module), on a Unix stream socket (``--control PATH``: connect, write a line, read
the answer line) or on a FIFO (``--fifo PATH``; answers go to stdout).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from sim.finger.module import SimModule

log = logging.getLogger(__name__)

#: a finger identity as the simulated card's DG3 derives it: the holder's ID number and the finger position
#: (ISO/IEC 19794-4: 1 right thumb, 2 right index, ..., 6 left thumb, ..., 10 left little)
IDENTITY_EXAMPLE = "001090012345:2"
_PERSON = re.compile(r"^person:(\d+)(?::(\d+))?$")
MAX_LINE = 1024


def resolve_identity(text: str) -> str:
    """``person:SEED[:POS]`` -> the identity of that simulated person's finger (the person of ``sim card --seed``);
    anything else is taken literally (``ID_NUMBER:POS`` matches that card's DG3 reference)."""
    match = _PERSON.match(text)
    if match is None:
        return text
    from sim.card.eac import finger_identity
    from sim.population import make_person

    return finger_identity(make_person(int(match.group(1))).id_number, int(match.group(2) or 2))


class Controller:
    """Applies commands to a module; thread safe (stdin, socket and FIFO threads share it)."""

    def __init__(self, module: SimModule) -> None:
        self.module = module
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def command(self, line: str) -> dict[str, Any]:
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        with self._lock:
            if word == "place":
                if not rest:
                    return {"ok": False, "error": f"place needs an identity, e.g. place {IDENTITY_EXAMPLE}"}
                self.module.place(resolve_identity(rest))
            elif word in ("lift", "remove"):
                self.module.remove()
            elif word == "status":
                pass
            elif word == "quit":
                self.stop.set()
            else:
                return {"ok": False, "error": f"unknown command {word!r} (place ID, lift, status, quit)"}
            return {"ok": True, "finger": self.module.finger, "templates": len(self.module.library),
                    "commands": self.module.commands}  # fmt: skip


def _answer(out: TextIO, lock: threading.Lock, answer: dict[str, Any]) -> None:
    with lock:
        out.write(json.dumps(answer) + "\n")
        out.flush()


def serve_lines(controller: Controller, lines: TextIO, out: TextIO, out_lock: threading.Lock) -> None:
    """Commands from a text stream (stdin or a FIFO), answers on ``out``, until end of input or quit."""
    for line in lines:
        if not line.strip():
            continue
        _answer(out, out_lock, controller.command(line))
        if controller.stop.is_set():
            return


class SocketControl:
    """A Unix stream socket at ``path``: each connection sends command lines and reads one answer line each."""

    def __init__(self, controller: Controller, path: Path) -> None:
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
