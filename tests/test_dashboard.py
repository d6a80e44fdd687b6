"""``python -m sim hub --dashboard PORT`` on a real broker, in a real browser: gates, charts, discrepancies, live."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from paho.mqtt.enums import CallbackAPIVersion

from agent.uplink.events import EventFactory, load_signing_key
from sim.infra.mosquitto import Mosquitto
from tests.browser import Browser, browser, off_loopback  # noqa: F401 - the fixture
from tests.sim_procs import child, sim

pytestmark = [pytest.mark.broker, pytest.mark.slow]
STATIC = Path(__file__).resolve().parent.parent / "sim" / "hub" / "static"
CHART_SHA256 = "48444a82d4edcb5bec0f1965faacdde18d9c17db3063d042abada2f705c9f54a"


def test_vendored_chart_js_is_the_recorded_release() -> None:
    data = (STATIC / "chart-umd.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == CHART_SHA256
    assert data.startswith(b"/*!\n * Chart.js v4.5.1") and CHART_SHA256 in (STATIC / "VENDORED.md").read_text()


class Gate:
    """A terminal as the hub sees it: its signed events and retained status on the broker, with a last will."""

    def __init__(self, tmp_path: Path, name: str, port: int) -> None:
        self.name = name
        key = load_signing_key(tmp_path / name / "terminal.key")
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        (tmp_path / "keys").mkdir(exist_ok=True)
        (tmp_path / "keys" / f"{name}.pub").write_bytes(pem)
        self.factory = EventFactory("01001", name, key)
        self.seq = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        self.topic = f"gate/01001/{name}"
        self.client.will_set(f"{self.topic}/status", cbor2.dumps({"state": "offline", "reason": "connection lost"}),
                             1, True)  # fmt: skip
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def status(self, pending: int) -> None:
        # as a daemon's heartbeat says it: the check-in flow's state, not "online"
        body = {"state": "idle", "queue": {"pending": pending}, "devices": {"card reader": "ok"}}
        self.client.publish(f"{self.topic}/status", cbor2.dumps(body), 1, True).wait_for_publish(10)

    def event(self, kind: str, body: dict[str, Any], wall: float) -> str:
        self.seq += 1
        event = self.factory.envelope(kind, self.seq, body)
        event["time"] = dict(event["time"], wall=wall)
        self.client.publish(f"{self.topic}/events", self.factory.seal(event), 1).wait_for_publish(10)
        return str(event["id"])

    def checkin(self, outcome: str, reason: str, wall: float) -> str:
        return self.event("checkin", {"id_number": "001090012345", "outcome": outcome, "reason": reason}, wall)

    def vanish(self) -> None:
        """The network goes: no DISCONNECT, so the broker publishes the last will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def test_dashboard_shows_gates_charts_and_discrepancies_live(tmp_path: Path, mosquitto: Mosquitto,
                                                             browser: Browser) -> None:  # noqa: F811
    hour = 3600.0 * int(time.time() // 3600)
    one, two = Gate(tmp_path, "gate-1", mosquitto.port), Gate(tmp_path, "gate-2", mosquitto.port)
    argv = sim("hub", "--broker", mosquitto.url, "--db", str(tmp_path / "hub.db"), "--keys", str(tmp_path / "keys"),
               "--dashboard", "0", "--quiet")  # fmt: skip
    with child(argv, stderr_path=tmp_path / "hub.err") as hub:
        url = hub.read_json(30)["dashboard"]
        assert url.startswith("http://127.0.0.1:")
        one.status(7)
        two.status(0)
        for wall, outcome, reason in [(hour - 3000, "admitted", "OK"), (hour - 2000, "admitted", "OK"),
                                      (hour + 60, "refused", "PA_FAILED"), (hour + 120, "refer_desk", "NOT_INSURED")]:
            one.checkin(outcome, reason, wall)  # fmt: skip
        first = two.checkin("admitted_provisional", "ELIGIBILITY_UNKNOWN", hour + 30)
        two.event("discrepancy", {"checkin_id": first, "id_number": "079201000001", "category": "pupils",
                                  "fields": {"full_name": "TRAN THI B", "birth": "2001-02-03"}}, hour + 31)  # fmt: skip
        two.vanish()

        b = browser
        b.resize(1280, 1150)
        b.open(url)
        b.wait(lambda: b.js("return document.querySelectorAll('#gates tbody tr').length") == 2
               and b.js("return document.querySelector('#gates tr[data-terminal=\"gate-2\"]').dataset.online")
               == "false", 15, "both gates, gate-2 offline by its last will")  # fmt: skip
        gates = b.js("return [...document.querySelectorAll('#gates tbody tr')].map(r => r.innerText)")
        assert "online" in gates[0] and "\t7\t" in gates[0] and "offline (connection lost)" in gates[1]

        def hourly() -> dict[str, list[int]]:
            found = b.js("const c = Chart.getChart('hourly'); return c ? "
                         "Object.fromEntries(c.data.datasets.map(d => [d.label, d.data])) : null")  # fmt: skip
            return found or {}

        b.wait(lambda: hourly() == {"gate-1": [2, 2], "gate-2": [0, 1]}, 15, "check-ins per hour per gate")
        outcomes = b.js("const c = Chart.getChart('outcomes'); "
                        "return Object.fromEntries(c.data.labels.map((l, i) => [l, c.data.datasets[0].data[i]]))")
        assert outcomes == {"admitted": 2, "refused": 1, "refer_desk": 1, "admitted_provisional": 1}
        reasons = b.js("return Chart.getChart('reasons').data.labels")
        assert reasons[0] == "OK" and set(reasons) == {"OK", "PA_FAILED", "NOT_INSURED", "ELIGIBILITY_UNKNOWN"}
        row = b.js("return document.querySelector('#discrepancies tbody tr').innerText")
        assert "079******001" in row and "birth, full_name" in row and "pupils" in row
        assert "TRAN" not in b.js("return document.body.innerText")  # the chip's values stay in the hub's database
        b.screenshot(Path(os.environ.get("KIOSK_SCREENSHOTS") or tmp_path) / "30-hub-dashboard.png")

        # live: a new check-in moves the chart without a reload
        one.checkin("admitted", "OK", hour + 600)
        b.wait(lambda: hourly().get("gate-1") == [2, 3], 10, "the new check-in")
        assert off_loopback(b.network()) == []
        assert b.console_errors() == []
        assert hub.stop() == 0
    one.client.loop_stop()
    one.client.disconnect()
