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
#: a batch (several sealed events in one signed message, ``docs/mqtt.md``): at most this many events and bytes
MAX_BATCH_EVENTS = 1000
MAX_BATCH = 1024 * 1024
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

    def seal_batch(self, sealed: list[bytes]) -> bytes:
        """Several sealed events in one message, signed once: the hub verifies one signature for the batch.

        The events keep their own signatures inside (each can still be checked alone later).
        """
        if not 1 <= len(sealed) <= MAX_BATCH_EVENTS:
            raise EventError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events, not {len(sealed)}")
        body = {"v": VERSION, "facility": self.facility, "terminal": self.terminal, "batch": list(sealed)}
        return cose.sign1(cbor2.dumps(body), self.key, self.terminal.encode())


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
    return _event_shape(event)


def _event_shape(event: Any) -> dict[str, Any]:
    """A decoded item that must be an event: shape-checked, plain types."""
    if not isinstance(event, Mapping):
        raise EventError("event is not a map")
    for key, kind in (("v", int), ("id", str), ("type", str), ("terminal", str), ("seq", int), ("body", Mapping)):
        if not isinstance(event.get(key), kind):
            raise EventError(f"event field {key!r} is missing or not {kind.__name__}")
    if event["v"] != VERSION:
        raise EventError(f"unsupported event version {event['v']}")
    thawed: dict[str, Any] = _thaw(event)
    return thawed


_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})


def _thaw(value: Any) -> Any:
    """cbor2 6 decodes maps and arrays inside tags as frozen types; give plain ones back.

    Plain dicts and lists (everything outside tags) are fixed in place, not copied: the hub opens
    thousands of events a second.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        for k, v in value.items():
            if type(v) not in _SCALARS:
                value[k] = _thaw(v)
        return value
    if kind is list:
        for i, v in enumerate(value):
            if type(v) not in _SCALARS:
                value[i] = _thaw(v)
        return value
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
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
    _check_signer(message, event)
    return event


def open_message(data: bytes, key: ed25519.Ed25519PublicKey | None) -> list[dict[str, Any]]:
    """The events of one message on a terminal's events topic: a sealed event, or a batch of them.

    The outer signature is verified (when a key is given) before anything inside is read.  In a
    batch that one signature covers every event's bytes, so the events inside are decoded without
    verifying each again, but each must be a sealed event of the batch's signer (key id) and
    terminal; one bad event refuses the whole message (EventError), since the terminal sent it whole.
    """
    try:
        message = cose.decode_sign1(data, MAX_BATCH)
        payload = cose.verify1(message, key) if key is not None else message.payload
        item = decode_cbor(payload, MAX_BATCH)
    except (cose.CoseError, CborError) as exc:
        raise EventError(str(exc)) from exc
    if not (isinstance(item, Mapping) and "batch" in item):
        if len(payload) > MAX_EVENT:
            raise EventError(f"an event over {MAX_EVENT} bytes")
        event = _event_shape(item)
        _check_signer(message, event)
        return [event]
    inner, terminal = item.get("batch"), item.get("terminal")
    if item.get("v") != VERSION or not isinstance(terminal, str) or not isinstance(inner, list | tuple):
        raise EventError("a batch needs v, terminal and batch (a list of sealed events)")
    if not 1 <= len(inner) <= MAX_BATCH_EVENTS or not all(isinstance(e, bytes) for e in inner):
        raise EventError(f"a batch holds 1 to {MAX_BATCH_EVENTS} sealed events (byte strings)")
    if message.kid is not None and message.kid.decode(errors="replace") != terminal:
        raise EventError("the signer's key id does not match the batch's terminal")
    events = []
    for sealed in inner:
        try:
            one = cose.decode_sign1(sealed)
        except cose.CoseError as exc:
            raise EventError(f"an event of the batch: {exc}") from exc
        if one.kid != message.kid:
            raise EventError("an event of the batch was sealed by another key id")
        event = decode_event(one.payload)
        if event["terminal"] != terminal or event.get("facility") != item.get("facility"):
            raise EventError("an event of the batch names another terminal or facility")
        events.append(event)
    return events


def _check_signer(message: cose.Sign1, event: Mapping[str, Any]) -> None:
    if message.kid is not None and message.kid.decode(errors="replace") != event["terminal"]:
        raise EventError("the signer's key id does not match the event's terminal")
