"""The VNeID route without a broker: scan recognition, the service's tokens, the hub's answer, the flow, the event."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import cbor2
import pycddl
import pytest

from agent.app.eligibility import EligibilityCache, EligibilityChain, record_to_dict
from agent.app.flow import CheckinFlow, FlowTimeouts
from agent.app.outputs import MemoryOutput
from agent.app.policy import Finding, Policy
from agent.app.ports import VneidScanned
from agent.app.vneid import HubTokenVerifier, result_from_answer
from agent.card.errors import InputError
from agent.model import EligibilitySource, InsuranceRecord, VneidStatus
from agent.scan.parse import ScannedKeys, ScannedToken, classify_scan, parse_scan
from agent.uplink import events
from sim.hub.vneid import VARIANTS, IdentityService, token_for_seed
from sim.population import make_person
from tests.flow_fakes import FakeReader, MemorySink

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = pycddl.Schema((ROOT / "docs" / "events.cddl").read_text())
PERSON = make_person(4242)
TD1 = "IDVNM0901234567001090012345<<4\n9005172M3012319VNM<<<<<<<<<<<6\nNGUYEN<<VAN<AN<<<<<<<<<<<<<<<<"


def test_a_scan_is_told_apart_by_what_it_is_not() -> None:
    token = token_for_seed(4242, "valid")
    assert classify_scan(token, "qr") == "vneid" and classify_scan(token, "mrz") == "vneid"
    assert classify_scan(PERSON.qr(), "qr") == "cccd_qr"
    assert classify_scan(PERSON.id_number, "qr") == "id_number"
    assert classify_scan(TD1, "mrz") == "mrz"
    scan = parse_scan(token, "qr")
    assert isinstance(scan, ScannedToken) and scan.token == token and token not in repr(scan)
    assert isinstance(parse_scan(PERSON.qr(), "qr"), ScannedKeys)
    assert isinstance(parse_scan(PERSON.id_number, "qr"), ScannedKeys)
    # not tokens: too short, too long, spaces, MRZ-like capitals, digits only, a damaged CCCD QR
    for text in ("abc.def", "x." * 1100, "has spaces in it but is long enough", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
                 "1234567890123456789012345", "0012|Nguyễn"):  # fmt: skip
        assert classify_scan(text, "qr") != "vneid", text
    with pytest.raises(InputError):
        parse_scan("has spaces in it but is long enough", "qr")


def test_the_service_answers_each_variant() -> None:
    service = IdentityService()
    got = {v: service.verify(service.issue(PERSON, v)) for v in VARIANTS}
    assert {v: a["status"] for v, a in got.items()} == {
        "valid": "valid", "expired": "expired", "revoked": "revoked", "wrong-level": "wrong_level",
        "forged": "invalid"}  # fmt: skip
    assert got["valid"]["identity"]["id_number"] == PERSON.id_number and got["valid"]["level"] == 2
    assert all("identity" not in a for v, a in got.items() if v != "valid")
    # a token of another service (another seed) is invalid here; the scanner's and the hub's agree by seed
    assert IdentityService("elsewhere").verify(service.issue(PERSON))["status"] == "invalid"
    assert IdentityService().verify(token_for_seed(4242, "valid"))["status"] == "valid"
    assert service.verify(service.issue(PERSON), now=time.time() + 3600)["status"] == "expired"
    tampered = service.issue(PERSON).split(".")
    tampered[1] = tampered[1][:-2] + ("AA" if tampered[1][-2:] != "AA" else "BB")
    assert service.verify(".".join(tampered))["status"] == "invalid"
    service.online = False
    assert service.verify(service.issue(PERSON))["status"] == "unverified"


def test_the_hubs_answer_is_checked_not_believed() -> None:
    identity = {"id_number": PERSON.id_number, "full_name": PERSON.full_name, "birth": PERSON.birth.isoformat(),
                "sex": PERSON.sex}  # fmt: skip
    ok = result_from_answer({"status": "valid", "level": 2, "reference": "vn-1", "identity": identity})
    assert ok.facts.status is VneidStatus.VALID and ok.identity is not None and ok.identity.birth == PERSON.birth
    cases: list[tuple[dict[str, Any] | None, VneidStatus]] = [
        (None, VneidStatus.UNVERIFIED),
        ({"status": "unverified"}, VneidStatus.UNVERIFIED),
        ({"status": "valid", "level": 1, "reference": "vn-1", "identity": identity}, VneidStatus.WRONG_LEVEL),
        ({"status": "valid", "reference": "vn-1", "identity": identity}, VneidStatus.WRONG_LEVEL),
        ({"status": "valid", "level": 2, "identity": identity}, VneidStatus.INVALID),  # no reference
        ({"status": "valid", "level": 2, "reference": "vn-1", "identity": {"id_number": "12"}}, VneidStatus.INVALID),
        ({"status": "valid", "level": 2, "reference": "vn-1"}, VneidStatus.INVALID),
        ({"status": "great"}, VneidStatus.INVALID),
        ({"status": "expired", "level": 2, "reference": "vn-1"}, VneidStatus.EXPIRED),
        ({"status": "revoked", "reference": "vn 1"}, VneidStatus.REVOKED),
    ]
    for answer, status in cases:
        result = result_from_answer(answer)
        assert result.facts.status is status, answer
        assert (result.identity is None) == (status is not VneidStatus.VALID)
    assert result_from_answer({"status": "revoked", "reference": "vn 1"}).facts.reference is None


class Uplink:
    def __init__(self, answer: dict[str, Any] | None, connected: bool = True) -> None:
        self.answer, self.connected = answer, connected
        self.tokens: list[str] = []

    def verify_vneid(self, token: str, timeout: float) -> dict[str, Any] | None:
        self.tokens.append(token)
        return self.answer


def flow_with(verifier: HubTokenVerifier | None, records: list[InsuranceRecord]) -> tuple[CheckinFlow, MemorySink]:
    cache = EligibilityCache(dt.timedelta(hours=24))
    cache.apply_snapshot([record_to_dict(r) for r in records], dt.datetime.now(dt.UTC))
    sink = MemorySink()
    flow = CheckinFlow(reader=FakeReader(), eligibility=EligibilityChain(cache), sink=sink, output=MemoryOutput(),
                       policy=Policy.default(), facility_code="01001", vneid=verifier,
                       timeouts=FlowTimeouts(0.3, 0.3, 2, 2, 0.1, 0.3))  # fmt: skip
    return flow, sink


RECORD = InsuranceRecord(PERSON.id_number, "GD4010123456789", dt.date(2020, 1, 1), dt.date(2099, 12, 31), "01001",
                         4, "other", "Nguyen Van An", PERSON.birth, PERSON.sex)  # fmt: skip


@pytest.mark.parametrize("variant", [*VARIANTS, "offline", "no-hub"])
def test_each_variant_through_the_flow(variant: str, caplog: pytest.LogCaptureFixture,
                                       tmp_path: Path) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    service = IdentityService()
    token = service.issue(PERSON, variant if variant in VARIANTS else "valid")
    uplink = Uplink(service.verify(token), connected=variant != "offline")
    flow, sink = flow_with(None if variant == "no-hub" else HubTokenVerifier(uplink), [RECORD])
    shown = flow.handle(VneidScanned(token))
    assert shown is not None
    (_, rec), = sink.records
    expected = {"valid": ("admitted", "RECORD_MISMATCH"), "expired": ("refer_desk", "VNEID_EXPIRED"),
                "revoked": ("refer_desk", "VNEID_REVOKED"), "wrong-level": ("refer_desk", "VNEID_WRONG_LEVEL"),
                "forged": ("refer_desk", "VNEID_INVALID"), "offline": ("refer_desk", "VNEID_UNVERIFIED_OFFLINE"),
                "no-hub": ("refer_desk", "VNEID_UNVERIFIED_OFFLINE")}[variant]  # fmt: skip
    assert (shown.outcome, shown.reason) == expected
    assert rec.assurance == "vneid" and rec.vneid is not None
    body = events.checkin_body(rec)
    event = events.EventFactory("01001", "gate-1", events.load_signing_key(tmp_path / "k")).envelope("checkin", 1, body)
    SCHEMA.validate_cbor(cbor2.dumps(event))
    wire = cbor2.dumps(event)
    assert token.encode() not in wire and token.split(".")[2].encode() not in wire  # never the token
    assert token not in caplog.text and token.split(".")[1] not in caplog.text and PERSON.full_name not in caplog.text
    if variant == "valid":
        assert body["id_number"] == PERSON.id_number and body["vneid"]["reference"].startswith("vn-")
        assert Finding.VNEID_IDENTITY in rec.decision.findings
        assert {d.field for d in rec.discrepancies} == {"full_name"}  # the verified name cleans the record
        assert rec.eligibility.source is EligibilitySource.CACHE
    else:
        assert body["id_number"] is None and rec.eligibility.source is EligibilitySource.NONE
    if variant == "offline":
        assert uplink.tokens == []  # nothing was sent while offline


def test_offline_is_configurable() -> None:
    flow, _ = flow_with(HubTokenVerifier(Uplink(None, connected=False)), [RECORD])
    flow.policy = Policy.from_config({"vneid_unverified_offline": "refuse"})
    shown = flow.handle(VneidScanned(IdentityService().issue(PERSON)))
    assert shown is not None and (shown.outcome, shown.reason) == ("refused", "VNEID_UNVERIFIED_OFFLINE")


def test_a_valid_token_while_the_card_waits_for_keys_takes_the_vneid_route() -> None:
    from agent.app.ports import CardInserted

    service = IdentityService()
    token = service.issue(PERSON)
    flow, sink = flow_with(HubTokenVerifier(Uplink(service.verify(token))), [RECORD])
    flow.submit(VneidScanned(token))
    assert flow.handle(CardInserted()) is None  # the scan answered the wait for keys
    assert flow.reader.calls == 0 and [r.assurance for _, r in sink.records] == ["vneid"]  # type: ignore[attr-defined]
