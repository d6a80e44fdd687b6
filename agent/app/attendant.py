"""The attendant's input: ID number and date of birth typed at the desk, or a patient without a chip card.

A Unix socket in the state directory (``attendant.sock``, mode 0660) takes one JSON
object per line::

    {"id_number": "001090012345", "birth": "17051990", "issued": "01022021"}   # keys for the chip
    {"id_number": "001090012345", "no_card": true}                             # child under 6, no card

and answers one JSON line ``{"ok": true}`` or ``{"ok": false, "error": "..."}``.  With
``"wait": true`` in the request, that one line comes after the decision instead and carries
it: ``{"ok": true, "outcome": ..., "reason": ..., "message_vi": ..., "message_en": ...,
"event_id": ..., "provisional": ...}``, or ``{"ok": false, "prompt": "timeout", ...}`` when the
check-in ended without one (wrong keys, an unreadable card, a timeout); the socket is also an
output of the flow for this.  ``gate-agent attendant`` is the command-line client; a desk UI
would use the same socket.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.app.ports import KeysEntered, ManualEntry, Shown, Trigger
from agent.card.cccd import PersonalId, cccd_access_keys, parse_ddmmyyyy
from agent.card.errors import InputError
from agent.errors import GateAgentError

log = logging.getLogger(__name__)

MAX_LINE = 4096
WAIT_LIMIT = 300.0  # seconds a waiting request is kept at most (the client has its own, shorter, limit)
#: prompts that end a check-in without an outcome: a waiting attendant hears them
ENDING_PROMPTS = frozenset({"wrong_keys", "read_failed", "timeout"})


def trigger_from_request(request: Any) -> Trigger:
    """Validate one request; InputError names the bad field."""
    if not isinstance(request, dict):
        raise InputError("request must be a JSON object")
    id_number = request.get("id_number")
    if not isinstance(id_number, str):
        raise InputError("id_number is required", field="id_number")
    PersonalId(id_number)  # validates the 12 digits and the province/century code
    if request.get("no_card"):
        return ManualEntry(id_number)
    birth = request.get("birth")
    if not isinstance(birth, str):
        raise InputError("birth (DDMMYYYY) is required unless no_card is true", field="birth")
    issued = request.get("issued")
    keys = cccd_access_keys(
        id_number,
        parse_ddmmyyyy(birth, "birth"),
        issued=None if issued in (None, "") else parse_ddmmyyyy(str(issued), "issued"),
    )
    return KeysEntered(keys, "attendant", id_number)


class AttendantSocket:
    """A device source: serves the socket in a thread and submits triggers to the flow."""

    name = "attendant"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._waiting: list[tuple[socket.socket, float]] = []  # connections owed an outcome, with deadlines
        self._waiting_lock = threading.Lock()

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
            self._expire()
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                keep = self._handle(conn, submit)
            except OSError as exc:
                log.warning("attendant connection failed: %s", exc)
                keep = False
            if not keep:
                conn.close()

    def _handle(self, conn: socket.socket, submit: Callable[[Trigger], None]) -> bool:
        """Answer one request; True when the connection now waits for the outcome."""
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
            if isinstance(request, dict) and request.get("wait") is True:
                with self._waiting_lock:
                    self._waiting.append((conn, time.monotonic() + WAIT_LIMIT))
                submit(trigger)
                return True
            submit(trigger)
            answer = {"ok": True}
        conn.sendall((json.dumps(answer) + "\n").encode())
        return False

    # --- an output of the flow: waiting requests get the outcome ---------------------------------

    def _answer_waiting(self, answer: dict[str, Any], expired_only: bool = False) -> None:
        now = time.monotonic()
        with self._waiting_lock:
            due = [(c, d) for c, d in self._waiting if not expired_only or d <= now]
            self._waiting = [w for w in self._waiting if w not in due]
        for conn, _ in due:
            try:
                conn.sendall((json.dumps(answer, ensure_ascii=False) + "\n").encode())
            except OSError as exc:
                log.info("attendant left before the outcome: %s", exc)
            finally:
                conn.close()

    def _expire(self) -> None:
        if self._waiting:
            self._answer_waiting({"ok": False, "error": f"no outcome within {WAIT_LIMIT:g} s"}, expired_only=True)

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        if code in ENDING_PROMPTS and self._waiting:
            self._answer_waiting({"ok": False, "prompt": code, "message_vi": message_vi, "message_en": message_en})

    def show(self, shown: Shown) -> None:
        if self._waiting:
            self._answer_waiting({"ok": True, **dataclasses.asdict(shown)})

    def stop(self) -> None:
        self._stop.set()
        self._answer_waiting({"ok": False, "error": "the agent is stopping"})
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(2)
        if self.path.exists():
            self.path.unlink()


def send(path: Path, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Client side: send one request, return the answer (with ``wait``, ``timeout`` covers the check-in)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall((json.dumps(request) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        raise GateAgentError(f"no answer from the agent within {timeout:g} s") from None
    except OSError as exc:
        raise GateAgentError(f"cannot reach the agent at {path}: {exc} (is gate-agent running?)") from exc
    answer = json.loads(data or b"{}")
    return answer if isinstance(answer, dict) else {"ok": False, "error": "bad answer"}
