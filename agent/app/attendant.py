"""The attendant's input: ID number and date of birth typed at the desk, or a patient without a chip card.

A Unix socket in the state directory (``attendant.sock``, mode 0660; served by
:class:`agent.app.sources.AttendantSocket`) takes one JSON object per line::

    {"id_number": "001090012345", "birth": "17051990", "issued": "01022021"}   # keys for the chip
    {"id_number": "001090012345", "no_card": true}                             # child under 6, no card

and answers one JSON line ``{"ok": true}`` or ``{"ok": false, "error": "..."}``.
``gate-agent attendant`` is the command-line client; a desk UI would use the same socket.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from agent.app.ports import KeysEntered, ManualEntry, Trigger
from agent.card.cccd import PersonalId, cccd_access_keys, parse_ddmmyyyy
from agent.card.errors import InputError
from agent.errors import GateAgentError

#: the longest request line the socket reads
MAX_LINE = 4096


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


def send(path: Path, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Client side: send one request, return the answer."""
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
    except OSError as exc:
        raise GateAgentError(f"cannot reach the agent at {path}: {exc} (is gate-agent running?)") from exc
    answer = json.loads(data or b"{}")
    return answer if isinstance(answer, dict) else {"ok": False, "error": "bad answer"}
