"""The VNeID route and the gateway's codes through the real daemon, the scanner pty, mosquitto and the hub simulator.

gate-agent run reads tokens from a QR scanner on a pseudo-terminal, asks the hub over
MQTT (signed replies), and the hub asks its simulated national identity service and
social-insurance gateway.  Every VNeID variant and every class of result code ends
in the outcome the table says; the hub stores the events and exports XML0 rows that
validate.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from agent.app.attendant import send
from agent.uplink.events import load_signing_key
from agent.uplink.hubmsg import public_pem
from sim.card import build_card
from sim.card.vpcd import VpcdPlug
from sim.clinic.patients import Kind, Patient, _strip_diacritics, insurance_record
from sim.hub import xml0
from sim.hub.gateway import GatewaySim
from sim.hub.hub import Hub
from sim.hub.vneid import IdentityService
from sim.infra.mosquitto import Mosquitto
from sim.infra.pcscd import Pcscd
from sim.population import make_person
from sim.scanner import PtyScanner, scan_text
from tests.card_fixtures import wait_for_card
from tests.daemon_harness import apply_eligibility, gate_config, outcomes, start_daemon, stop_daemon, wait_outcome

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.pty, pytest.mark.slow]


def test_vneid_variants_and_gateway_codes_end_to_end(tmp_path: Path, pcscd: Pcscd, mosquitto: Mosquitto) -> None:
    state, trust = tmp_path / "state", tmp_path / "trust"
    key = load_signing_key(state / "terminal.key")
    today = dt.date.today()
    people = {name: make_person(seed) for name, seed in (
        ("valid", 501), ("mismatch", 502), ("down", 503), ("unknown", 504), ("army", 505), ("renewed", 506),
        ("lapsed", 507), ("nocard", 508), ("badcode", 509), ("revoked", 510), ("reduced", 511))}  # fmt: skip
    child = make_person(512, min_age=0, max_age=5)
    card = build_card("cccd", seed=513)  # the chip route: the record has another birth date (070)
    card.write_trust(str(trust))

    def record(name: str, kind: Kind = Kind.INSURED, **changes: Any) -> dict[str, Any]:
        rec = insurance_record(Patient(0, kind, people[name], "other", 7), "01001", today)
        assert rec is not None
        return {**rec, "facility_code": "01001", **changes}

    records = [record(n) for n in ("valid", "down", "army", "renewed", "badcode", "revoked", "reduced")]
    records += [record("mismatch", full_name=_strip_diacritics(people["mismatch"].full_name)),
                record("lapsed", Kind.EXPIRED)]  # fmt: skip
    chip_rec = insurance_record(Patient(0, Kind.INSURED, card.person, "pupils", 9), "01001", today)
    assert chip_rec is not None
    wrong_birth = (card.person.birth - dt.timedelta(days=3)).isoformat()
    records.append({**chip_rec, "facility_code": "01001", "birth": wrong_birth})
    by_id = {str(r["id_number"]): r for r in records}
    forced = {people["down"].id_number: "101", people["unknown"].id_number: "999", people["army"].id_number: "001",
              people["renewed"].id_number: "003", people["badcode"].id_number: "052",
              people["revoked"].id_number: "110", people["reduced"].id_number: "121"}  # fmt: skip
    gateway = GatewaySim(by_id, forced=forced, children_without_card={child.id_number})
    service = IdentityService()
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": key.public_key()}, by_id,
              gateway=gateway, identity_service=service).start()  # fmt: skip
    (state / "hub.pub").write_bytes(public_pem(hub.signing_key.public_key()))
    scanner = PtyScanner(tmp_path / "qr")
    recorder = tmp_path / "outcomes.jsonl"
    config = tmp_path / "agent.toml"
    config.write_text(gate_config(state=state, reader=pcscd.reader_names[0], trust=trust, qr=tmp_path / "qr",
                                  recorder=recorder, broker_url=mosquitto.url))  # fmt: skip
    daemon = start_daemon(config, pcscd.env)
    plug = VpcdPlug(None, pcscd.vpcd_ports[0]).start()
    tokens: list[str] = []
    seen = 0

    def expect(outcome: str, reason: str | tuple[str, ...]) -> dict[str, Any]:
        nonlocal seen
        seen += 1
        got = wait_outcome(recorder, seen)
        reasons = (reason,) if isinstance(reason, str) else reason
        assert (got["outcome"], got["reason"]) in [(outcome, r) for r in reasons], (seen, got)
        return got

    def show(name: str, variant: str = "valid") -> None:
        token = service.issue(people[name], variant)
        tokens.append(token)
        scanner.emit(token)

    try:
        assert hub.connected.wait(10)
        # the hub's eligibility snapshot reaches the terminal (so the cache can answer when the gateway cannot)
        apply_eligibility(hub, "gate-1", records)

        # VNeID: each variant of the national identity service's tokens
        show("valid")
        expect("admitted", "OK")
        for variant, reason in (("expired", "VNEID_EXPIRED"), ("revoked", "VNEID_REVOKED"),
                                ("wrong-level", "VNEID_WRONG_LEVEL"), ("forged", "VNEID_INVALID")):  # fmt: skip
            show("valid", variant)
            expect("refer_desk", reason)
        show("mismatch")  # gateway 061: the insurer lost the diacritics
        expect("admitted", "RECORD_MISMATCH")
        show("down")  # gateway 101: no answer, the cache decides
        expect("admitted", "OK")
        show("unknown")  # a code not in the table: no answer; the fresh cache does not know this person
        expect("refer_desk", "NOT_IN_CACHE")

        # the desk: an ID number typed, each gateway code class
        desk = [("army", "refer_desk", "INSURANCE_OTHER_AGENCY"), ("renewed", "admitted_provisional", "MANUAL_ENTRY"),
                ("lapsed", "refer_desk", "INSURANCE_EXPIRED"), ("nocard", "refer_desk", "NOT_INSURED"),
                ("badcode", "refer_desk", "INSURANCE_CARD_CODE_WRONG"), ("revoked", "refer_desk", "INSURANCE_REVOKED"),
                ("reduced", "refer_desk", "INSURANCE_REDUCED")]  # fmt: skip
        for name, outcome, reason in desk:
            assert send(state / "attendant.sock", {"id_number": people[name].id_number, "no_card": True})["ok"]
            expect(outcome, reason)
        assert send(state / "attendant.sock", {"id_number": child.id_number, "no_card": True})["ok"]
        expect("admitted_provisional", "MANUAL_ENTRY")  # 130: the child without a card

        # the chip: the gateway is asked with the chip's name and birth date, and finds the birth date wrong (070)
        plug.insert(card)
        wait_for_card(pcscd.reader_names[0])
        scanner.emit(scan_text(card.person, "qr"))
        expect("admitted", "RECORD_MISMATCH")
        plug.remove()
        wait_for_card(pcscd.reader_names[0], present=False)

        deadline = time.monotonic() + 20
        while hub.count("checkin") < seen and time.monotonic() < deadline:
            time.sleep(0.1)
        checkins = [e["body"] for e in hub.events() if e["type"] == "checkin"]
        assert len(checkins) == seen
        by_number: dict[Any, list[dict[str, Any]]] = {}
        for body in checkins:
            by_number.setdefault(body["id_number"], []).append(body)
        first = by_number[people["valid"].id_number][0]
        assert first["assurance"] == "vneid" and first["vneid"]["status"] == "valid"
        assert first["vneid"]["reference"].startswith("vn-") and first["eligibility"]["gateway_code"] == "000"
        assert [b["vneid"]["status"] for b in by_number[None]] == ["expired", "revoked", "wrong_level", "invalid"]
        assert by_number[people["down"].id_number][0]["eligibility"] == {
            "source": "cache", "fresh": True, "card_number": by_id[people["down"].id_number]["card_number"],
            "category": "other", "gateway_code": "101"}  # fmt: skip
        codes = {n: by_number[people[n].id_number][0]["eligibility"].get("gateway_code") for n in people}
        assert codes == {"valid": "000", "mismatch": "061", "down": "101", "unknown": "999", "army": "001",
                         "renewed": "003", "lapsed": "010", "nocard": "050", "badcode": "052", "revoked": "110",
                         "reduced": "121"}  # fmt: skip
        assert "CHILD_WITHOUT_CARD" in by_number[child.id_number][0]["findings"]
        assert "INSURANCE_CARD_REPLACED" in by_number[people["renewed"].id_number][0]["findings"]
        chip = by_number[card.person.id_number][0]
        assert chip["assurance"] == "chip" and chip["eligibility"]["gateway_code"] == "070"
        discrepancies = {e["body"]["id_number"]: e["body"]["fields"] for e in hub.events()
                         if e["type"] == "discrepancy"}  # fmt: skip
        assert discrepancies[people["mismatch"].id_number] == {"full_name": people["mismatch"].full_name}
        assert discrepancies[card.person.id_number] == {"birth": card.person.birth.isoformat()}
        assert service.by_status == {"valid": 4, "expired": 1, "revoked": 1, "wrong_level": 1, "invalid": 1}

        # XML0: one row per check-in that let someone in with an identity; every row validates
        path = tmp_path / "xml0.xml"
        admitted = [o for o in outcomes(recorder) if o["outcome"] in ("admitted", "admitted_provisional")]
        # the child typed at the desk has no identity the hub knows: the HIS completes that row at the desk
        assert hub.export_xml0(dt.datetime.now(xml0.VN).date(), path) == len(admitted) - 1 == 5
        rows = xml0.read_file(path)
        for row in rows:
            xml0.validate_row(row)
        by_cccd = {r["SO_CCCD"]: r for r in rows}
        valid_row = by_cccd[people["valid"].id_number]
        assert valid_row["HO_TEN"] == people["valid"].full_name and valid_row["MA_DOITUONG_KCB"] == "1"
        assert valid_row["NGAY_SINH"] == people["valid"].birth.strftime("%Y%m%d") + "0000"
        assert valid_row["MA_THE_BHYT"][2] == str(by_id[people["valid"].id_number]["benefit_level"])
        assert child.id_number not in by_cccd
        assert people["unknown"].id_number not in by_cccd  # sent to the desk: no check-in row
        assert by_cccd[card.person.id_number]["NGAY_SINH"] == card.person.birth.strftime("%Y%m%d") + "0000"
        assert [r["STT"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]

        # offline: the hub is gone, the token cannot be verified: the desk (the default), nothing admitted
        hub.stop()
        show("valid")
        expect("refer_desk", "VNEID_UNVERIFIED_OFFLINE")
    finally:
        plug.stop()
        code, err = stop_daemon(daemon)
        scanner.close()
        try:
            hub.stop()
        except Exception:  # already stopped by the offline step
            pass
    assert code == 0, err[-3000:]
    for token in tokens:  # the token is never logged, nor stored in the terminal's queue
        assert token not in err and token.split(".")[1] not in err
    hub_files = b"".join(p.read_bytes() for p in tmp_path.glob("hub.db*"))  # what the hub stored, in clear
    assert hub_files.count(b"vn-") >= 4  # the references are there ...
    for token in tokens:
        assert token.split(".")[2].encode() not in hub_files  # ... never a token
    for person in [*people.values(), child, card.person]:
        assert person.id_number not in err and person.full_name not in err
