"""``python -m sim hub`` against the shipped broker configuration (TLS, client certificates, ACL) with
certificates from ``python -m sim pki``; a line per stored event, a progress bar on a terminal, --quiet."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from paho.mqtt.enums import CallbackAPIVersion

from agent.uplink.events import EventFactory, load_signing_key
from sim.commands.hub import Reporter, event_line
from sim.infra.mosquitto import start_tls_mosquitto
from tests.sim_procs import child, sim

ID_NUMBER = "001090012345"


def _terminal(tmp_path: Path) -> tuple[Path, EventFactory]:
    key = load_signing_key(tmp_path / "gate-1" / "terminal.key")
    keys = tmp_path / "keys"
    keys.mkdir()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (keys / "gate-1.pub").write_bytes(pem)
    return keys, EventFactory("01001", "gate-1", key)


def _publish(pki: Path, port: int, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gate-1", protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(pki / "ca.crt"), certfile=str(pki / "gate-1.crt"), keyfile=str(pki / "gate-1.key"))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish("gate/01001/gate-1/events", payload, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.mark.broker
def test_hub_over_tls_with_client_certificates(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    made = subprocess.run(sim("pki", "--out", str(pki), "--terminals", "gate-1"), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    broker = start_tls_mosquitto(tmp_path / "broker", pki)
    keys, factory = _terminal(tmp_path)
    try:
        assert broker.url.startswith("mqtts://")
        argv = sim("hub", "--broker", broker.url, "--db", str(tmp_path / "hub.db"), "--keys", str(keys),
                   "--pki", str(pki))  # fmt: skip
        with child(argv, stderr_path=tmp_path / "hub.err") as hub:
            ready = hub.read_json(30)
            assert ready["tls"] is True and ready["terminals"] == ["gate-1"]
            events = [factory.envelope("checkin", seq, {"id_number": ID_NUMBER, "outcome": "admitted"})
                      for seq in (1, 2)]  # fmt: skip
            sealed = [factory.seal(e) for e in events]
            _publish(pki, broker.port, [*sealed, sealed[0]])  # the last one is a replay
            lines = [hub.readline(20) for _ in range(2)]
            assert lines == [f"stored checkin gate-1 seq {e['seq']} id {e['id']} admitted" for e in events]
            assert all(ID_NUMBER not in line for line in lines)
            assert hub.stop() == 0
            stopped = json.loads(hub.wait_for(lambda line: line.startswith("{"), 5))
            assert stopped["stored"] == 2 and stopped["duplicates"] == 1

        # --quiet: the same hub, nothing printed per event
        argv = sim("hub", "--broker", broker.url, "--db", str(tmp_path / "hub2.db"), "--keys", str(keys),
                   "--tls-ca", str(pki / "ca.crt"), "--tls-cert", str(pki / "hub.crt"), "--tls-key",
                   str(pki / "hub.key"), "--quiet")  # fmt: skip
        with child(argv, stderr_path=tmp_path / "hub2.err") as hub:
            hub.read_json(30)
            _publish(pki, broker.port, [factory.seal(factory.envelope("checkin", 3, {"outcome": "admitted"}))])
            assert hub.stop() == 0
            assert json.loads(hub.readline(5))["stored"] == 1
            assert not any(line.startswith("stored") for line in hub.seen)
    finally:
        broker.stop()


def test_incomplete_tls_options_are_refused(tmp_path: Path) -> None:
    res = subprocess.run(
        sim("hub", "--broker", "mqtts://127.0.0.1:1", "--db", str(tmp_path / "db"), "--keys", str(tmp_path),
            "--tls-ca", str(tmp_path / "ca.crt")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 2 and "--tls-ca, --tls-cert and --tls-key together" in res.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_lines_otherwise() -> None:
    event = {"type": "checkin", "seq": 4, "id": "e-4", "body": {"outcome": "refused", "id_number": ID_NUMBER}}
    tty = _Terminal()
    bar = Reporter(quiet=False, out=tty)
    for _ in range(3):
        bar("gate-2", event)
    bar.close()
    assert "stored: " in tty.getvalue() and "3event" in tty.getvalue() and ID_NUMBER not in tty.getvalue()
    plain = io.StringIO()
    Reporter(quiet=False, out=plain)("gate-2", event)
    assert plain.getvalue() == event_line("gate-2", event) + "\n" == "stored checkin gate-2 seq 4 id e-4 refused\n"
    quiet = _Terminal()
    Reporter(quiet=True, out=quiet)("gate-2", event)
    assert quiet.getvalue() == ""


def test_insured_records_of_simulated_people() -> None:
    import datetime as dt

    from sim.commands.hub import insured_records
    from sim.population import make_person

    (record,) = insured_records("12", "01001")
    assert record["id_number"] == make_person(12).id_number and record["facility_code"] == "01001"
    assert record["valid_from"] <= dt.date.today().isoformat() <= record["valid_to"]
    with pytest.raises(ValueError):
        insured_records("twelve", "01001")
