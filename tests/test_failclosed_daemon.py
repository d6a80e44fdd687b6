"""Fail closed through the real daemon: gate-agent run with pcscd + vpcd, a fingerprint module and a QR
scanner on ptys, mosquitto and the hub simulator."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from agent.uplink.events import load_signing_key
from agent.uplink.hubmsg import public_pem
from sim.card import SimulatedCard, build_card
from sim.card import eac as sim_eac
from sim.card.vpcd import VpcdPlug
from sim.clinic.patients import Kind, Patient, insurance_record
from sim.finger.module import PtyModule, SimModule
from sim.hub.hub import Hub
from sim.infra.mosquitto import Mosquitto
from sim.infra.pcscd import Pcscd
from sim.scanner import PtyScanner, scan_text
from tests.card_fixtures import wait_for_card
from tests.daemon_harness import apply_eligibility, gate_config, present_card, start_daemon, stop_daemon

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.pty, pytest.mark.slow]


def test_the_daemon_refers_a_withheld_finger_refuses_clones_and_survives_a_hostile_chip(
    tmp_path: Path, pcscd: Pcscd, mosquitto: Mosquitto
) -> None:
    state, trust = tmp_path / "state", tmp_path / "trust"
    key = load_signing_key(state / "terminal.key")
    credentials = sim_eac.eac_pki(0).write_credentials(tmp_path / "terminal")
    holder = build_card("cccd", seed=301)
    clone = build_card("cccd", seed=302, variant="clone-hiding-dg14-dg15")
    hostile = build_card("cccd", seed=303, variant="hostile-chaining")
    trailer = build_card("cccd", seed=304, variant="aa-unknown-trailer")
    holder.write_trust(str(trust))
    today = dt.date.today()
    cards: list[SimulatedCard] = [holder, clone, hostile, trailer]
    records = [insurance_record(Patient(i, Kind.INSURED, c.person, "pupils", 301 + i), "01001", today)
               for i, c in enumerate(cards)]  # fmt: skip
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": key.public_key()},
              {str(r["id_number"]): r for r in records if r is not None}).start()  # fmt: skip
    (state / "hub.pub").write_bytes(public_pem(hub.signing_key.public_key()))  # pinned, as at enrolment
    module = PtyModule(SimModule(speed=0), tmp_path / "finger").start()  # nobody ever places a finger
    scanner = PtyScanner(tmp_path / "qr")
    recorder = tmp_path / "outcomes.jsonl"
    config = tmp_path / "agent.toml"
    config.write_text(gate_config(
        state=state, reader=pcscd.reader_names[0], trust=trust, qr=tmp_path / "qr", recorder=recorder,
        broker_url=mosquitto.url,
        reader_extra=f'terminal_credentials = "{credentials}"\nfiles = ["dg1", "dg13", "dg3"]',
        sections=f'[finger]\nenabled = true\nurl = "{tmp_path / "finger"}"', timeouts_extra="finger = 2.0",
    ))  # fmt: skip
    daemon = start_daemon(config, pcscd.env)
    plug = VpcdPlug(None, pcscd.vpcd_ports[0]).start()
    try:
        assert hub.connected.wait(10)
        apply_eligibility(hub, "gate-1", [r for r in records if r])

        # 1. the card holder's card, no finger on the sensor: not admitted
        first = present_card(plug, pcscd.reader_names[0], scanner, holder, recorder, 1)
        assert (first["outcome"], first["reason"]) == ("refer_desk", "FINGER_REQUIRED_NOT_CHECKED"), first

        # 2. a copy that hides DG14 and DG15 (the files its EF.SOD lists): refused as a clone
        second = present_card(plug, pcscd.reader_names[0], scanner, clone, recorder, 2)
        assert (second["outcome"], second["reason"]) == ("refused", "CLONE_SUSPECTED"), second

        # 3. a hostile chip (endless response chaining): the read fails, nothing is decided, the daemon lives on
        plug.insert(hostile)
        wait_for_card(pcscd.reader_names[0])
        scanner.emit(scan_text(hostile.person, "qr"))
        time.sleep(2.0)
        plug.remove()
        wait_for_card(pcscd.reader_names[0], present=False)
        assert daemon.poll() is None

        # 4. an Active Authentication answer with an unknown 9796-2 trailer: failed, not "not judged"
        fourth = present_card(plug, pcscd.reader_names[0], scanner, trailer, recorder, 3)
        assert (fourth["outcome"], fourth["reason"]) == ("refused", "CLONE_SUSPECTED"), fourth

        deadline = time.monotonic() + 20
        while hub.count("checkin") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        events = {e["id"]: e for e in hub.events() if e["type"] == "checkin"}
        withheld = events[str(first["event_id"])]["body"]
        assert withheld["verification"]["finger_required"] is True and withheld["verification"]["finger"] == "error"
        assert "FINGER_REQUIRED_NOT_CHECKED" in withheld["findings"]
        cloned = events[str(second["event_id"])]["body"]
        assert cloned["verification"]["rules"] == ["DG14_WITHHELD", "DG15_WITHHELD"]
        assert cloned["verification"]["passive_auth"] is True
        unknown = events[str(fourth["event_id"])]["body"]["verification"]
        assert unknown["active_auth"] is False and unknown["rules"] == ["AA_REQUIRED"]
        assert len(events) == 3  # the hostile chip left no check-in
    finally:
        plug.stop()
        code, err = stop_daemon(daemon)
        scanner.close()
        module.stop()
        hub.stop()
    assert code == 0, err[-3000:]
    assert "prompt read_failed" in err  # the hostile chip was read, and the read failed (step 3)
    for card in cards:
        assert card.person.id_number not in err and card.person.full_name not in err
