"""The real daemon: gate-agent run with pcscd + vpcd, a QR scanner on a pty, mosquitto and the hub simulator."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from agent.app.attendant import send
from agent.uplink.events import load_signing_key
from agent.uplink.hubmsg import public_pem
from sim.card import build_card
from sim.card.vpcd import VpcdPlug
from sim.clinic.patients import Kind, Patient, insurance_record
from sim.hub.hub import Hub
from sim.infra.mosquitto import Mosquitto
from sim.infra.pcscd import Pcscd
from sim.scanner import PtyScanner
from tests.daemon_harness import (
    apply_eligibility,
    gate_config,
    outcomes,
    present_card,
    start_daemon,
    stop_daemon,
    wait_outcome,
)

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.pty, pytest.mark.slow]


def test_daemon_checks_patients_in_end_to_end(tmp_path: Path, pcscd: Pcscd, mosquitto: Mosquitto) -> None:
    state, trust = tmp_path / "state", tmp_path / "trust"
    key = load_signing_key(state / "terminal.key")
    genuine = build_card("cccd", seed=101)
    tampered = build_card("cccd", seed=102, variant="altered-dg")
    genuine.write_trust(str(trust))
    today = dt.date.today()
    records = [
        insurance_record(Patient(0, Kind.INSURED, genuine.person, "pupils", 101), "01001", today),
        insurance_record(Patient(1, Kind.INSURED, tampered.person, "pupils", 102), "01001", today),
    ]
    eligibility = {str(r["id_number"]): r for r in records if r is not None}
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": key.public_key()}, eligibility).start()
    (state / "hub.pub").write_bytes(public_pem(hub.signing_key.public_key()))  # pinned, as at enrolment
    scanner = PtyScanner(tmp_path / "qr")
    recorder = tmp_path / "outcomes.jsonl"
    config = tmp_path / "agent.toml"
    config.write_text(gate_config(state=state, reader=pcscd.reader_names[0], trust=trust, qr=tmp_path / "qr",
                                  recorder=recorder, broker_url=mosquitto.url))  # fmt: skip
    daemon = start_daemon(config, pcscd.env)
    plug = VpcdPlug(None, pcscd.vpcd_ports[0]).start()
    try:
        assert hub.connected.wait(10)
        # the hub pushes its eligibility data; the terminal applies it and says so
        apply_eligibility(hub, "gate-1", [r for r in records if r is not None])

        # 1. a genuine card, keys from the QR scanner
        first = present_card(plug, pcscd.reader_names[0], scanner, genuine, recorder, 1)
        assert first["outcome"] == "admitted" and first["reason"] in ("OK", "OTHER_FACILITY")

        # 2. a tampered card: refused, and said why
        second = present_card(plug, pcscd.reader_names[0], scanner, tampered, recorder, 2)
        assert (second["outcome"], second["reason"]) == ("refused", "PA_FAILED")

        # 3. a child without a card, entered by the attendant
        assert send(state / "attendant.sock", {"id_number": genuine.person.id_number, "no_card": True})["ok"]
        third = wait_outcome(recorder, 3)
        assert third["outcome"] == "admitted_provisional"

        # every outcome shown reached the hub, once, with the same event id
        deadline = time.monotonic() + 20
        while hub.count("checkin") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        shown = {o["event_id"] for o in outcomes(recorder)}
        stored = {e["id"] for e in hub.events() if e["type"] == "checkin"}
        assert shown == stored and len(stored) == 3
        assert "Nguy" not in recorder.read_text()  # no personal data in the recorder
    finally:
        plug.stop()
        code, err = stop_daemon(daemon)
        scanner.close()
        hub.stop()
    assert code == 0, err[-3000:]
    for person in (genuine.person, tampered.person):
        assert person.id_number not in err and person.full_name not in err  # logs hold no personal data
