"""Events: built from real check-in records, validated against docs/events.cddl by an outside validator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import cbor2
import pycddl
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.app.policy import Policy
from agent.app.reconcile import reconcile
from agent.model import (
    Assurance,
    CheckinRecord,
    ChipFacts,
    Eligibility,
    EligibilitySource,
    FingerFacts,
    FingerStatus,
    InsuranceRecord,
)
from agent.uplink import cose, events
from tests.flow_fakes import PERSON

SCHEMA = pycddl.Schema((Path(__file__).resolve().parent.parent / "docs" / "events.cddl").read_text())
RECORD = InsuranceRecord("001090012345", "HS4010123456789", dt.date(2026, 1, 1), dt.date(2026, 12, 31), "01001", 4,
                         "pupils", "Nguyen Van An", dt.date(1990, 5, 17), "M")  # fmt: skip


def record(chip: ChipFacts | None = None, assurance: Assurance = Assurance.CHIP) -> CheckinRecord:
    from agent.model import CheckinFacts

    elig = Eligibility(RECORD, EligibilitySource.CACHE, True)
    finger = FingerFacts(FingerStatus.MATCH, 87)
    chip = chip or ChipFacts("PACE", True)
    facts = CheckinFacts(PERSON, assurance, chip, finger, elig, dt.date(2026, 11, 24), "01001")
    disc = tuple(reconcile(PERSON, RECORD))
    decision = Policy.default().decide(facts, mismatched=bool(disc))
    return CheckinRecord(PERSON, assurance.value, chip, finger, elig, decision, disc)


@pytest.fixture
def factory(tmp_path: Path) -> events.EventFactory:
    return events.EventFactory("01001", "gate-1", events.load_signing_key(tmp_path / "terminal.key"))


def test_checkin_and_discrepancy_events_match_the_schema(factory: events.EventFactory) -> None:
    rec = record()
    checkin = factory.envelope("checkin", 7, events.checkin_body(rec))
    disc = factory.envelope("discrepancy", 8, events.discrepancy_body(rec, checkin["id"]))
    for event in (checkin, disc):
        SCHEMA.validate_cbor(cbor2.dumps(event))
    assert disc["body"]["fields"] == {"full_name": "Nguyễn Văn An"}
    manual = record(chip=None, assurance=Assurance.MANUAL)
    manual = CheckinRecord(manual.identity, "manual", None, manual.finger, manual.eligibility, manual.decision)
    SCHEMA.validate_cbor(cbor2.dumps(factory.envelope("checkin", 9, events.checkin_body(manual))))


def test_schema_rejects_what_the_code_must_not_send(factory: events.EventFactory) -> None:
    event = factory.envelope("checkin", 1, events.checkin_body(record()))
    event["body"]["outcome"] = "maybe"
    with pytest.raises(pycddl.ValidationError):
        SCHEMA.validate_cbor(cbor2.dumps(event))
    event = factory.envelope("checkin", 1, events.checkin_body(record()))
    event["body"]["face_image"] = b"\xff\xd8"
    with pytest.raises(pycddl.ValidationError):
        SCHEMA.validate_cbor(cbor2.dumps(event))


def test_sealed_events_verify_and_forgeries_do_not(factory: events.EventFactory, tmp_path: Path) -> None:
    event = factory.envelope("checkin", 3, events.checkin_body(record()))
    sealed = factory.seal(event)
    public = factory.key.public_key()
    assert events.open_sealed(sealed, public) == event
    forged = cose.sign1(cbor2.dumps(event), ed25519.Ed25519PrivateKey.generate(), b"gate-1")
    with pytest.raises(events.EventError, match="does not verify"):
        events.open_sealed(forged, public)
    other = dict(event, terminal="gate-2")
    with pytest.raises(events.EventError, match="key id"):
        events.open_sealed(factory.seal(other), public)
    with pytest.raises(events.EventError):
        events.open_sealed(b"not cbor at all", public)


def test_signing_key_is_created_private_and_reloaded(tmp_path: Path) -> None:
    key = events.load_signing_key(tmp_path / "k" / "terminal.key")
    assert (tmp_path / "k" / "terminal.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k" / "terminal.pub").exists()
    again = events.load_signing_key(tmp_path / "k" / "terminal.key")
    assert again.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


def test_strict_decoding() -> None:
    with pytest.raises(events.EventError, match="trailing"):
        events.decode_event(cbor2.dumps({"v": 1}) + b"\x00")
    with pytest.raises(events.EventError, match="missing"):
        events.decode_event(cbor2.dumps({"v": 1}))


def test_rules_finger_required_and_error_events_match_the_schema(factory: events.EventFactory) -> None:
    chip = ChipFacts("PACE", True, chip_auth=False, active_auth=True, rules=("DG15_WITHHELD", "CA_REQUIRED"),
                     finger_expected=True)  # fmt: skip
    rec = record(chip)
    body = events.checkin_body(rec)
    assert body["verification"]["rules"] == ["DG15_WITHHELD", "CA_REQUIRED"]
    assert body["verification"]["finger_required"] is False
    SCHEMA.validate_cbor(cbor2.dumps(factory.envelope("checkin", 1, body)))
    error = factory.envelope("error", 2, events.error_body("read", "RuntimeError"))
    SCHEMA.validate_cbor(cbor2.dumps(error))
    assert events.decode_event(cbor2.dumps(error))["body"]["reason"] == "INTERNAL_ERROR"
    error["body"]["stage"] = "somewhere"
    with pytest.raises(pycddl.ValidationError):
        SCHEMA.validate_cbor(cbor2.dumps(error))
    body["verification"]["rules"] = ["MADE_UP"]
    with pytest.raises(pycddl.ValidationError):
        SCHEMA.validate_cbor(cbor2.dumps(factory.envelope("checkin", 3, body)))


def test_a_batch_is_verified_once_and_opened_whole(factory: events.EventFactory) -> None:
    made = [factory.envelope("checkin", seq, {"id_number": f"0010900123{seq:02d}"}) for seq in range(1, 6)]
    batch = factory.seal_batch([factory.seal(e) for e in made])
    public = factory.key.public_key()
    assert events.open_message(batch, public) == made
    assert events.open_message(factory.seal(made[0]), public) == [made[0]]  # a single event is a message too
    assert events.open_message(batch, None) == made  # operator tools: decoded, not verified
    SCHEMA.validate_cbor(cose.decode_sign1(batch, events.MAX_BATCH).payload)  # the documented wire form


def test_a_forged_or_mixed_batch_is_refused_whole(factory: events.EventFactory, tmp_path: Path) -> None:
    public = factory.key.public_key()
    mine = [factory.seal(factory.envelope("checkin", s, {"id_number": "001090012345"})) for s in (1, 2)]
    thief = events.EventFactory("01001", "gate-1", ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(events.EventError, match="does not verify"):  # someone else's key, this terminal's name
        events.open_message(thief.seal_batch(mine), public)
    other = events.EventFactory("01001", "gate-2", factory.key)  # gate-1's key naming gate-2 inside
    foreign = other.seal(other.envelope("checkin", 3, {"id_number": "001090012345"}))
    with pytest.raises(events.EventError, match="key id"):
        events.open_message(factory.seal_batch([*mine, foreign]), public)
    elsewhere = events.EventFactory("79001", "gate-1", factory.key)  # another facility's event slipped in
    moved = elsewhere.seal(elsewhere.envelope("checkin", 4, {"id_number": "001090012345"}))
    with pytest.raises(events.EventError, match="another terminal or facility"):
        events.open_message(factory.seal_batch([*mine, moved]), public)
    nested = factory.seal_batch([factory.seal_batch(mine)])  # a batch is not an event
    with pytest.raises(events.EventError, match="missing"):
        events.open_message(nested, public)
    for body in ({"v": 1, "terminal": "gate-1", "facility": "01001", "batch": []},
                 {"v": 1, "terminal": "gate-1", "facility": "01001", "batch": ["text, not a sealed event"]},
                 {"v": 2, "terminal": "gate-1", "facility": "01001", "batch": mine},
                 {"v": 1, "facility": "01001", "batch": mine}):  # fmt: skip
        with pytest.raises(events.EventError):
            events.open_message(cose.sign1(cbor2.dumps(body), factory.key, b"gate-1"), public)
    huge = [mine[0]] * (events.MAX_BATCH_EVENTS + 1)
    with pytest.raises(events.EventError, match="1 to"):
        factory.seal_batch(huge)
    with pytest.raises(events.EventError):  # the same, signed by hand
        body = {"v": 1, "terminal": "gate-1", "facility": "01001", "batch": huge}
        events.open_message(cose.sign1(cbor2.dumps(body), factory.key, b"gate-1"), public)
    with pytest.raises(events.EventError, match="exceeds"):  # over MAX_BATCH bytes: refused before decoding
        body = {"v": 1, "terminal": "gate-1", "facility": "01001", "batch": [b"\0" * events.MAX_BATCH]}
        events.open_message(cose.sign1(cbor2.dumps(body), factory.key, b"gate-1"), public)
