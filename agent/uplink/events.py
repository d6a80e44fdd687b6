"""Check-in and discrepancy events: CBOR (schema ``docs/events.cddl``, version 1), signed with COSE_Sign1.

Every event carries a unique id (UUID4 text), the facility and terminal ids, the
terminal's persistent sequence number (the queue's), and its time as the terminal
knew it: wall clock, whether that clock was synchronised (a Pi without RTC boots
with a stale clock), the boot id and the monotonic clock, so the hub can rebase
times of unsynchronised events.  Personal data is the minimum the hub needs: the
ID number (the insurance claim needs it) and, in a discrepancy, the chip's values
of the mismatched fields (to clean the insurance record).  Never images or
fingerprints.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.codec.cbor import CborError, decode_cbor
from agent.errors import GateAgentError
from agent.model import CheckinRecord
from agent.store.files import load_or_create_private_key
from agent.uplink import cose

VERSION = 1
MAX_EVENT = 16 * 1024
SYNC_FLAG = Path("/run/systemd/timesync/synchronized")


class EventError(GateAgentError):
    """An event is malformed or its signature does not verify."""


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def clock_synced(flag: Path = SYNC_FLAG) -> bool:
    return flag.exists()


def load_signing_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """The terminal's Ed25519 key (PEM, 0600), created on first start; its public half beside it (.pub)."""
    return load_or_create_private_key(
        path, ed25519.Ed25519PrivateKey, ed25519.Ed25519PrivateKey.generate, EventError,
        "cannot load the terminal signing key", "the terminal signing key must be Ed25519", write_public=True,
    )  # fmt: skip


@dataclass
class EventFactory:
    facility: str
    terminal: str
    key: ed25519.Ed25519PrivateKey
    sync_flag: Path = SYNC_FLAG

    def __post_init__(self) -> None:
        self.boot = boot_id()

    def envelope(self, kind: str, seq: int, body: Mapping[str, Any], event_id: str | None = None) -> dict[str, Any]:
        return {
            "v": VERSION,
            "id": event_id or str(uuid.uuid4()),
            "type": kind,
            "facility": self.facility,
            "terminal": self.terminal,
            "seq": seq,
            "time": {
                "wall": time.time(),
                "synced": clock_synced(self.sync_flag),
                "boot": self.boot,
                "mono": time.monotonic(),
            },
            "body": dict(body),
        }

    def seal(self, event: Mapping[str, Any]) -> bytes:
        """The signed wire form (COSE_Sign1 around the event's CBOR)."""
        return cose.sign1(cbor2.dumps(dict(event)), self.key, self.terminal.encode())


def checkin_body(record: CheckinRecord) -> dict[str, Any]:
    chip, finger, elig, decision = record.chip, record.finger, record.eligibility, record.decision
    verification: dict[str, Any] = {
        "access": chip.access if chip else None,
        "passive_auth": chip.passive_auth if chip else None,
        "pa_failed_step": chip.passive_auth_failed_step if chip else None,
        "chip_auth": chip.chip_auth if chip else None,
        "active_auth": chip.active_auth if chip else None,
        "rules": list(chip.rules) if chip else [],
        "finger": finger.status.value,
        "finger_required": finger.required,
    }
    if finger.score is not None:
        verification["finger_score"] = finger.score
    eligibility: dict[str, Any] = {"source": elig.source.value, "fresh": elig.fresh}
    if elig.record is not None:
        eligibility["card_number"] = elig.record.card_number
        eligibility["category"] = elig.record.category
    if elig.gateway_code is not None:
        eligibility["gateway_code"] = elig.gateway_code
    body: dict[str, Any] = {
        "id_number": record.identity.id_number or None,  # None: a VNeID token that gave no verified identity
        "assurance": record.assurance,
        "verification": verification,
        "eligibility": eligibility,
        "outcome": str(decision.outcome),
        "reason": decision.reason,
        "findings": [str(f) for f in decision.findings],
    }
    if record.vneid is not None:  # the outcome and the hub's reference; never the token
        vneid: dict[str, Any] = {"status": record.vneid.status.value}
        if record.vneid.level is not None:
            vneid["level"] = record.vneid.level
        if record.vneid.reference is not None:
            vneid["reference"] = record.vneid.reference
        body["vneid"] = vneid
    return body


def error_body(stage: str, error: str) -> dict[str, Any]:
    """A check-in ended by an unexpected failure: the stage and the error's type (never its message)."""
    return {"stage": stage, "error": error, "outcome": "refer_desk", "reason": "INTERNAL_ERROR"}


def discrepancy_body(record: CheckinRecord, checkin_id: str) -> dict[str, Any]:
    return {
        "checkin_id": checkin_id,
        "id_number": record.identity.id_number,
        "category": record.eligibility.record.category if record.eligibility.record else None,
        "fields": {d.field: d.chip_value for d in record.discrepancies},
    }


def decode_event(data: bytes) -> dict[str, Any]:
    """An event's CBOR, strictly decoded and shape-checked (for the hub and the operator tools)."""
    try:
        event = decode_cbor(data, MAX_EVENT)
    except CborError as exc:
        raise EventError(str(exc)) from exc
    if not isinstance(event, Mapping):
        raise EventError("event is not a map")
    for key, kind in (("v", int), ("id", str), ("type", str), ("terminal", str), ("seq", int), ("body", Mapping)):
        if not isinstance(event.get(key), kind):
            raise EventError(f"event field {key!r} is missing or not {kind.__name__}")
    if event["v"] != VERSION:
        raise EventError(f"unsupported event version {event['v']}")
    thawed: dict[str, Any] = _thaw(event)
    return thawed


def _thaw(value: Any) -> Any:
    """cbor2 6 decodes maps and arrays inside tags as frozen types; give plain ones back."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def open_sealed(data: bytes, key: ed25519.Ed25519PublicKey | None) -> dict[str, Any]:
    """Verify (when a key is given) and decode a sealed event."""
    try:
        message = cose.decode_sign1(data)
        payload = cose.verify1(message, key) if key is not None else message.payload
    except cose.CoseError as exc:
        raise EventError(str(exc)) from exc
    event = decode_event(payload)
    if message.kid is not None and message.kid.decode(errors="replace") != event["terminal"]:
        raise EventError("the signer's key id does not match the event's terminal")
    return event
