"""The VNeID route: an opaque app token, verified by the national identity service through the hub.

The VNeID QR's payload and signature scheme are not public, so the gate trusts
nothing in it: it sends the token to the hub (a request/response over the uplink,
short timeout), and the hub asks the national identity service (over the national
data-sharing platform, its "citizen verification" service).  What comes back is the
verified identity, the account's level and the hub's reference for that answer.

What the terminal trusts: the hub's answer, because it arrives signed by the hub key
pinned at enrolment (agent/uplink/hubmsg.py).  What it does not: the token, the phone,
anything shown on its screen.  No answer in time is *unverified* (fail closed:
``VNEID_UNVERIFIED_OFFLINE``, by default sent to the desk); an answer that does not
parse is *invalid*.  A level-1 account (not identified in person) is ``wrong_level``.

The token is never logged, never put in an event or the queue: the event keeps the
assurance (``vneid``), the status, the level and the hub's reference.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agent.errors import GateAgentError
from agent.model import Identity, VneidFacts, VneidStatus

log = logging.getLogger(__name__)

#: the account level the health-insurance route needs (Decree 59/2022: level 2 = identified in person)
REQUIRED_LEVEL = 2
_REFERENCE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class VneidResult:
    facts: VneidFacts
    identity: Identity | None  # only for a valid, level-2 verification

    def __repr__(self) -> str:
        return f"VneidResult({self.facts.status}, <redacted>)"


class TokenVerifier(Protocol):
    """The uplink's side: send the token to the hub, return its (signature-verified) answer or None."""

    @property
    def connected(self) -> bool: ...

    def verify_vneid(self, token: str, timeout: float) -> Mapping[str, Any] | None: ...


def result_from_answer(answer: Mapping[str, Any] | None) -> VneidResult:
    """The hub's ``vneid`` answer -> facts and identity; anything odd is INVALID, nothing is UNVERIFIED."""
    if answer is None:
        return VneidResult(VneidFacts(VneidStatus.UNVERIFIED), None)
    try:
        status = VneidStatus(str(answer.get("status")))
    except ValueError:
        return VneidResult(VneidFacts(VneidStatus.INVALID), None)
    if status is VneidStatus.UNVERIFIED:  # the hub could not reach the service
        return VneidResult(VneidFacts(VneidStatus.UNVERIFIED), None)
    ref = answer.get("reference")
    reference = ref if isinstance(ref, str) and _REFERENCE.fullmatch(ref) else None
    level = answer.get("level")
    level = level if isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 9 else None
    if status is not VneidStatus.VALID:
        return VneidResult(VneidFacts(status, level, reference), None)
    if level is None or level < REQUIRED_LEVEL:  # valid but not enough: the level decides, not the hub's word
        return VneidResult(VneidFacts(VneidStatus.WRONG_LEVEL, level, reference), None)
    identity = _identity(answer.get("identity"))
    if identity is None or reference is None:
        return VneidResult(VneidFacts(VneidStatus.INVALID, level, reference), None)
    return VneidResult(VneidFacts(VneidStatus.VALID, level, reference), identity)


def _identity(item: object) -> Identity | None:
    if not isinstance(item, Mapping):
        return None
    number = item.get("id_number")
    if not isinstance(number, str) or not re.fullmatch(r"[0-9]{12}", number):
        return None
    name = item.get("full_name")
    sex = item.get("sex")
    birth: dt.date | None = None
    if item.get("birth") is not None:
        try:
            birth = dt.date.fromisoformat(str(item["birth"]))
        except ValueError:
            return None
    return Identity(
        number,
        name if isinstance(name, str) and name else None,
        birth,
        sex if sex in ("M", "F") else None,
    )


class HubTokenVerifier:
    """Verifies tokens through the uplink; offline (not connected, timeout, error) is UNVERIFIED."""

    def __init__(self, uplink: TokenVerifier | None, timeout: float = 2.0) -> None:
        self.uplink = uplink
        self.timeout = timeout

    def verify(self, token: str) -> VneidResult:
        if self.uplink is None or not self.uplink.connected:
            return result_from_answer(None)
        try:
            answer = self.uplink.verify_vneid(token, self.timeout)
        except GateAgentError as exc:
            log.warning("VNeID verification failed: %s", type(exc).__name__)
            answer = None
        result = result_from_answer(answer)
        log.info("VNeID verification: %s", result.facts.status)
        return result
