"""The real daemon: gate-agent run with pcscd + vpcd, a QR scanner on a pty, mosquitto and the hub simulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
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
from sim.scanner import PtyScanner, scan_text
from tests.card_fixtures import wait_for_card

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.pty, pytest.mark.slow]


def outcomes(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_outcome(path: Path, count: int, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = outcomes(path)
        if len(got) >= count:
            return got[count - 1]
        time.sleep(0.05)
    raise AssertionError(f"no outcome #{count} within {timeout} s: {outcomes(path)}")


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
    config.write_text(f"""
[terminal]
facility_id = "01001"
terminal_id = "gate-1"
state_dir = "{state}"
[reader]
name = "{pcscd.reader_names[0]}"
trust_dir = "{trust}"
[scanners]
qr_url = "{tmp_path / "qr"}"
[timeouts]
card_removal = 5.0
[outputs]
kinds = ["log", "recorder"]
recorder_path = "{recorder}"
[uplink]
broker_urls = ["{mosquitto.url}"]
allow_plaintext = true
backoff_min = 0.2
backoff_max = 1.0
""")
    daemon = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config)],
                              env={**os.environ, **pcscd.env}, stderr=subprocess.PIPE, text=True)  # fmt: skip
    plug = VpcdPlug(None, pcscd.vpcd_ports[0]).start()
    try:
        assert hub.connected.wait(10)
        # the hub pushes its eligibility data; the terminal applies it and says so
        deadline = time.monotonic() + 20
        result = None
        while result is None and time.monotonic() < deadline:
            cid = hub.push_eligibility("gate-1", records, dt.datetime.now(dt.UTC).isoformat())
            result = hub.wait_result(cid, 2)
        assert result is not None and result["ok"], result

        # 1. a genuine card, keys from the QR scanner
        plug.insert(genuine)
        wait_for_card(pcscd.reader_names[0])
        scanner.emit(scan_text(genuine.person, "qr"))
        first = wait_outcome(recorder, 1)
        assert first["outcome"] == "admitted" and first["reason"] in ("OK", "OTHER_FACILITY")
        plug.remove()
        wait_for_card(pcscd.reader_names[0], present=False)

        # 2. a tampered card: refused, and said why
        plug.insert(tampered)
        wait_for_card(pcscd.reader_names[0])
        scanner.emit(scan_text(tampered.person, "qr"))
        second = wait_outcome(recorder, 2)
        assert (second["outcome"], second["reason"]) == ("refused", "PA_FAILED")
        plug.remove()
        wait_for_card(pcscd.reader_names[0], present=False)

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
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(20)
        finally:
            if daemon.poll() is None:
                daemon.kill()
        scanner.close()
        hub.stop()
        err = daemon.stderr.read() if daemon.stderr else ""
    assert code == 0, err[-3000:]
    for person in (genuine.person, tampered.person):
        assert person.id_number not in err and person.full_name not in err  # logs hold no personal data
