"""The attacker on the facility network, through real brokers and a real daemon: every attack fails and is logged.

The broker here is the simulator's own (no ACL, anyone may publish anywhere), the
worst case the terminal must survive on its own; the broker with the shipped
configuration (TLS, client certificates, ACL) is attacked at the end.  The same
suite passes the legitimate hub's commands.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cbor2
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.app import enrol
from agent.config import load_config
from agent.uplink.events import EventFactory, load_signing_key
from agent.uplink.hubmsg import HubSigner
from sim.card import shared_pki
from sim.card.eac import ROLE_CVCA, ROLE_DV_DOMESTIC, ROLE_IS, eac_pki, make_cvc
from sim.card.pki import issuer_pki
from sim.hub.enrol import Authority, enroll_terminal
from sim.hub.hub import Hub
from sim.infra.mosquitto import Mosquitto
from sim.infra.net import wait_until
from sim.infra.pcscd import Pcscd
from sim.pki import make_pki
from tests.daemon_harness import start_daemon, stop_daemon

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.slow]

T = "gate-1"
CMD = f"gate/01001/{T}/cmd"


def wait(predicate: Callable[[], object], timeout: float = 15.0) -> bool:
    return wait_until(predicate, timeout)


def attacker(broker: Mosquitto, client_id: str = "attacker") -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


@dataclass
class Gate:
    state: Path
    log: Path
    hub: Hub
    hub_key: ed25519.Ed25519PrivateKey
    request: Path
    authority: Authority
    daemon: subprocess.Popen[bytes]

    def logged(self, text: str, timeout: float = 10.0) -> bool:
        return wait(lambda: text in self.log.read_text(errors="replace"), timeout)

    def command(self, body: dict[str, object], timeout: float = 10.0) -> dict[str, object]:
        cid = self.hub.send_command(T, body)
        result = self.hub.wait_result(cid, timeout)
        assert result is not None, self.log.read_text()[-2000:]
        return result

    def status(self) -> dict[str, object]:
        with self.hub._db_lock:
            row = self.hub._db.execute("SELECT body FROM status WHERE terminal = ?", (T,)).fetchone()
        return json.loads(row[0]) if row else {}


@pytest.fixture
def gate(tmp_path: Path, pcscd: Pcscd, mosquitto: Mosquitto) -> Iterator[Gate]:
    """An enrolled gate-1 daemon (keys born on it, the hub pinned) and its hub on a broker without ACL."""
    state, trust = tmp_path / "state", tmp_path / "trust"
    shared_pki().write_trust(trust)
    pki = tmp_path / "pki"
    make_pki(pki, "01001", [])
    hub_key = ed25519.Ed25519PrivateKey.generate()
    authority = Authority.load(pki, hub_key, shared_pki().csca)
    config = tmp_path / "agent.toml"
    log = tmp_path / "agent.log"
    config.write_text(f"""
[terminal]
facility_id = "01001"
terminal_id = "{T}"
state_dir = "{state}"
[reader]
name = "{pcscd.reader_names[0]}"
trust_dir = "{trust}"
terminal_credentials = "{state / "eac"}"
[outputs]
kinds = ["log"]
[uplink]
broker_urls = ["{mosquitto.url}"]
allow_plaintext = true
backoff_min = 0.2
backoff_max = 1.0
heartbeat = 0.5
""")
    cfg = load_config(config)
    enrol.request(cfg, tmp_path / "request")
    enroll_terminal(tmp_path / "request", T, authority, tmp_path / "hub-keys", tmp_path / "answer")
    enrol.install(cfg, tmp_path / "answer")
    signing = load_signing_key(state / "terminal.key")
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {T: signing.public_key()}, signing_key=hub_key).start()
    daemon = start_daemon(config, pcscd.env, log)
    gate = Gate(state, log, hub, hub_key, tmp_path / "request", authority, daemon)
    try:
        assert hub.connected.wait(10)
        assert gate.logged("connected to the broker", 30), log.read_text()[-3000:]
        yield gate
    finally:
        code, err = stop_daemon(daemon, log)
        hub.stop()
    assert code == 0, err[-3000:]  # every attack left a daemon that stops cleanly


def _policy_admitting_expired_insurance() -> dict[str, object]:
    return {"type": "policy", "id": "evil-policy", "policy": {"not_insured": "admit"}}


def test_forged_and_unsigned_commands_change_nothing(gate: Gate, mosquitto: Mosquitto) -> None:
    evil = attacker(mosquitto)
    rogue = eac_pki(99)
    rogue_files = {f"{k}.cvcert": v for k, v in rogue.certificates.items()}
    rogue_files["terminal.key"] = rogue.terminal_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    eac_before = sorted((p.name, p.read_bytes()) for p in (gate.state / "eac").iterdir())
    trust_before = sorted(p.name for p in (gate.state.parent / "trust").iterdir())

    # 1. unsigned CBOR, as the terminal used to obey: a policy that admits expired insurance
    evil.publish(CMD, cbor2.dumps(_policy_admitting_expired_insurance()), qos=1)
    assert gate.logged("rejected a hub cmd message: not a signed hub message")
    # 2. the same, signed by a key the attacker made (well-formed COSE, right fields)
    forger = HubSigner(ed25519.Ed25519PrivateKey.generate(), "01001")
    creds = {"type": "terminal_credentials", "id": "evil-eac", "files": rogue_files}
    evil.publish(CMD, forger.seal(T, "cmd", creds), qos=1)
    assert gate.logged("rejected a hub cmd message: bad signature")
    # 3. a rogue CSCA, unsigned
    other_csca = issuer_pki(5).csca.public_bytes(serialization.Encoding.PEM)
    evil.publish(CMD, cbor2.dumps({"type": "trust_update", "id": "evil-csca", "files": {"rogue.pem": other_csca}}))
    # 4. a command the hub really signed, for gate-2, replayed on gate-1's topic
    evil.publish(CMD, gate.hub.signer.seal("gate-2", "cmd", {"id": "x", "type": "policy", "policy": {}}), qos=1)
    assert gate.logged("rejected a hub cmd message: for another terminal")
    # 5. an old captured command, expired
    old = gate.hub.signer.seal(T, "cmd", {"id": "old", "type": "policy", "policy": {}}, 60, issued=time.time() - 7200)
    evil.publish(CMD, old, qos=1)
    assert gate.logged("rejected a hub cmd message: expired")
    time.sleep(0.5)
    assert not (gate.state / "policy.json").exists()
    assert sorted((p.name, p.read_bytes()) for p in (gate.state / "eac").iterdir()) == eac_before
    assert sorted(p.name for p in (gate.state.parent / "trust").iterdir()) == trust_before
    evil.loop_stop()

    # the legitimate hub's command goes through; replaying its exact bytes does not
    captured: list[bytes] = []
    spy = attacker(mosquitto, "spy")
    spy.on_message = lambda c, u, m: captured.append(bytes(m.payload))
    spy.subscribe(CMD, qos=1)
    time.sleep(0.3)
    legit = gate.command({"type": "policy", "policy": {"not_insured": "refuse"}})
    assert legit["ok"] is True, legit
    assert wait(lambda: captured)
    spy.publish(CMD, captured[0], qos=1)
    assert gate.logged("rejected a hub cmd message: replayed or old counter")
    assert wait(lambda: (gate.status().get("policy") or {}).get("source") == "hub")  # reported in the heartbeat
    uplink = gate.status().get("uplink")
    assert isinstance(uplink, dict) and uplink["hub_messages_rejected"] >= 5
    spy.loop_stop()


def test_hub_signed_commands_are_still_checked(gate: Gate) -> None:
    eac_key = serialization.load_pem_private_key((gate.state / "eac" / "terminal.key").read_bytes(), None)
    assert isinstance(eac_key, ec.EllipticCurvePrivateKey)
    # a private key in a credentials command is refused, whoever signed it
    carrying_key = {"terminal.key": b"-----BEGIN PRIVATE KEY-----\n...", "is.cvcert": b"\x7f\x21\x00"}
    result = gate.command({"type": "terminal_credentials", "files": carrying_key})
    assert result["ok"] is False and "private key" in str(result["reason"])
    # a self-made CVCA certifying this terminal's own key: the chain does not start at the trusted CVCA
    rogue_cvca = ec.generate_private_key(ec.BrainpoolP256R1())
    rogue_dv = ec.generate_private_key(ec.BrainpoolP256R1())
    today = dt.date.today()
    until = today + dt.timedelta(days=9)
    files = {
        "cvca.cvcert": make_cvc(car="VNEVIL00001", chr_="VNEVIL00001", public_key=rogue_cvca.public_key(),
                                role_rights=ROLE_CVCA | 3, effective=today, expiration=until,
                                signer=rogue_cvca, with_domain=True),
        "dv.cvcert": make_cvc(car="VNEVIL00001", chr_="VNEVILDV00001", public_key=rogue_dv.public_key(),
                              role_rights=ROLE_DV_DOMESTIC | 3, effective=today, expiration=until,
                              signer=rogue_cvca),
        "is.cvcert": make_cvc(car="VNEVILDV00001", chr_="VNGATE100002", public_key=eac_key.public_key(),
                              role_rights=ROLE_IS | 3, effective=today, expiration=until,
                              signer=rogue_dv),
    }  # fmt: skip
    result = gate.command({"type": "terminal_credentials", "files": files})
    assert result["ok"] is False and "CVCA this terminal trusts" in str(result["reason"]), result
    # CSCAs only inside a master list signed under the pinned root
    other = issuer_pki(6)
    bare = {"rogue.pem": other.csca.public_bytes(serialization.Encoding.PEM)}
    result = gate.command({"type": "trust_update", "files": bare})
    assert result["ok"] is False and "master list" in str(result["reason"])
    result = gate.command({"type": "trust_update", "files": {"rogue.ml": other.master_list()}})
    assert result["ok"] is False and "pinned root" in str(result["reason"])
    # eligibility dated in the future, or older than what is held
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    result = gate.command({"type": "eligibility_snapshot", "as_of": future, "records": []})
    assert result["ok"] is False and "future" in str(result["reason"])
    now = dt.datetime.now(dt.UTC)
    assert gate.command({"type": "eligibility_snapshot", "as_of": now.isoformat(), "records": []})["ok"] is True
    older = (now - dt.timedelta(hours=1)).isoformat()
    assert gate.command({"type": "eligibility_snapshot", "as_of": older, "records": []})["ok"] is False

    # the legitimate hub: a genuine master list, renewed certificates (no key), all accepted
    result = gate.command({"type": "trust_update", "files": {"vn.ml": shared_pki().master_list()}})
    assert result["ok"] is True, result
    answer = gate.state.parent / "renewal"
    enroll_terminal(gate.request, T, gate.authority, gate.state.parent / "hub-keys", answer)
    renewal = {p.name: p.read_bytes() for p in answer.glob("*.cvcert")}
    result = gate.command({"type": "terminal_credentials", "files": renewal})
    assert result["ok"] is True and "VNGATE1" in str(result["reason"]), result


def test_malformed_hub_messages_do_not_freeze_the_uplink(gate: Gate, mosquitto: Mosquitto) -> None:
    evil = attacker(mosquitto)
    reply, ack = f"gate/01001/{T}/reply", f"gate/01001/{T}/ack"
    evil.publish(reply, cbor2.dumps({"record": None, "corr": -1}), qos=1)  # once: bytes(-1) in paho's thread
    evil.publish(reply, gate.hub.signer.seal(T, "reply", {"record": None, "corr": -1}), qos=1)
    evil.publish(ack, cbor2.dumps({"ids": "everything"}), qos=1)
    evil.publish(ack, gate.hub.signer.seal(T, "ack", {"ids": [1, 2]}), qos=1)
    evil.publish(CMD, bytes.fromhex("d81ca16161d81d00"), qos=1)  # a self-referencing map
    evil.publish(CMD, b"\xff" * 64, qos=1)
    assert gate.logged("rejected a hub reply message: a reply needs corr")
    assert gate.logged("rejected a hub ack message: ids must be a list")
    evil.loop_stop()
    # still alive: the next legitimate command is applied and answered
    now = dt.datetime.now(dt.UTC).isoformat()
    assert gate.command({"type": "eligibility_snapshot", "as_of": now, "records": []})["ok"] is True
    assert "Traceback" not in gate.log.read_text()


def test_forged_foreign_and_expired_acks_are_refused(gate: Gate, mosquitto: Mosquitto) -> None:
    """Acks keep no replay counter (several hub workers; an ack names only stored ids), but everything else holds."""
    evil = attacker(mosquitto)
    ack = f"gate/01001/{T}/ack"
    forger = HubSigner(ed25519.Ed25519PrivateKey.generate(), "01001")
    evil.publish(ack, forger.seal(T, "ack", {"ids": ["a-forged-id"]}), qos=1)
    assert gate.logged("rejected a hub ack message: bad signature")
    evil.publish(ack, gate.hub.signer.seal("gate-2", "ack", {"ids": ["gate-2-id"]}), qos=1)
    assert gate.logged("rejected a hub ack message: for another terminal")
    old = gate.hub.signer.seal(T, "ack", {"ids": ["an-old-id"]}, 60, issued=time.time() - 7200)
    evil.publish(ack, old, qos=1)
    assert gate.logged("rejected a hub ack message: expired")
    evil.publish(ack, cbor2.dumps({"ids": ["unsigned"]}), qos=1)
    assert gate.logged("rejected a hub ack message: not a signed hub message")
    evil.loop_stop()

    def rejected() -> int:
        uplink = gate.status().get("uplink")
        return int(uplink["hub_messages_rejected"]) if isinstance(uplink, dict) else 0

    assert wait(lambda: rejected() >= 4)  # counted and reported in the heartbeat
    assert "Traceback" not in gate.log.read_text()


def test_the_hub_stands_up_to_a_hostile_terminal(tmp_path: Path, mosquitto: Mosquitto) -> None:
    keys = {t: load_signing_key(tmp_path / t / "terminal.key") for t in ("gate-1", "gate-2")}
    record = {"id_number": "001090012345", "full_name": "x"}
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {t: k.public_key() for t, k in keys.items()},
              eligibility={"001090012345": record}).start()  # fmt: skip
    seen: dict[str, list[bytes]] = {}
    watcher = attacker(mosquitto, "watcher")
    watcher.on_message = lambda c, u, m: seen.setdefault(m.topic, []).append(bytes(m.payload))
    watcher.subscribe("gate/#", qos=1)
    evil = attacker(mosquitto, "gate-1-evil")
    try:
        assert hub.connected.wait(10)
        time.sleep(0.3)
        # a query whose reply topic is a wildcard, or another gate's command topic
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "gate/01001/gate-2/cmd"
        props.CorrelationData = b"c1"
        evil.publish("gate/01001/gate-1/query", cbor2.dumps({"id_number": "001090012345"}), 1, properties=props)
        body = {"id_number": "001090012345", "reply_to": "gate/01001/+/cmd", "corr": b"c2"}
        evil.publish("gate/01001/gate-1/query", cbor2.dumps(body), qos=1)
        evil.publish("gate/01001/gate-1/query", cbor2.dumps({"id_number": -1, "corr": -1}), qos=1)
        # a self-referencing status, a result for a command that was not sent to it, a malformed event
        evil.publish("gate/01001/gate-1/status", bytes.fromhex("d81ca16161d81d00"), qos=1)
        cid = hub.send_command("gate-2", {"type": "policy", "policy": {}})
        evil.publish("gate/01001/gate-1/cmd/result", cbor2.dumps({"id": cid, "ok": True, "reason": "x"}), qos=1)
        factory = EventFactory("01001", "gate-1", keys["gate-1"])
        bad = factory.envelope("checkin", 1, {})
        bad["body"] = ["not", "a", "map"]
        evil.publish("gate/01001/gate-1/events", factory.seal(bad), qos=1)
        assert wait(lambda: len(seen.get("gate/01001/gate-1/reply", [])) == 2)
        assert wait(lambda: hub.stats.reasons.get("malformed") == 1 and hub.stats.reasons.get("malformed query"))
        assert "gate/01001/gate-2/reply" not in seen
        assert len(seen.get("gate/01001/gate-2/cmd", [])) == 1  # only the hub's own command, signed for gate-2
        assert hub.wait_result(cid, 0.5) is None  # gate-1 cannot answer for gate-2
        # both threads alive: events of both gates stored, deduplicated per (terminal, id), acknowledged
        same_id = "00000000-0000-4000-8000-000000000001"
        for terminal in ("gate-1", "gate-2"):
            f = EventFactory("01001", terminal, keys[terminal])
            event = f.envelope("checkin", 7, {"outcome": "admitted"}, event_id=same_id)
            evil.publish(f"gate/01001/{terminal}/events", f.seal(event), qos=1)
            evil.publish(f"gate/01001/{terminal}/events", f.seal(event), qos=1)
        assert wait(lambda: hub.count() == 2 and hub.stats.duplicates == 2)
        assert wait(lambda: len(seen.get("gate/01001/gate-2/ack", [])) >= 1)
    finally:
        evil.loop_stop()
        watcher.loop_stop()
        hub.stop()


def test_shipped_broker_config_keeps_one_terminal_from_knocking_another_off(tmp_path: Path) -> None:
    from agent.config import uplink_config
    from agent.store.queue import EventQueue
    from agent.uplink.client import Uplink
    from sim.infra.mosquitto import start_tls_mosquitto

    pki = tmp_path / "pki"
    make_pki(pki, "01001", ["gate-1", "gate-2"])
    broker = start_tls_mosquitto(tmp_path / "broker", pki)
    table = {"broker_urls": [broker.url], "tls_ca": str(pki / "ca.crt"), "tls_cert": str(pki / "gate-1.crt"),
             "tls_key": str(pki / "gate-1.key"), "backoff_min": 0.2, "backoff_max": 1.0}  # fmt: skip
    uplink = Uplink(uplink_config(table, "01001", "gate-1"), EventQueue(tmp_path / "queue"))
    try:
        uplink.start()
        assert wait(lambda: uplink.connected)
        # gate-2's certificate, gate-1's client id: with use_username_as_clientid the broker renames it
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="01001-gate-1", protocol=mqtt.MQTTv311)
        intruder.tls_set(ca_certs=str(pki / "ca.crt"), certfile=str(pki / "gate-2.crt"),
                         keyfile=str(pki / "gate-2.key"))  # fmt: skip
        intruder.connect("127.0.0.1", broker.port)
        intruder.loop_start()
        time.sleep(1.5)
        assert uplink.connected and uplink.stats.connects == 1  # never kicked off
        # gate-2 publishes a command on gate-1's topic: the ACL drops it before the terminal sees it
        intruder.publish("gate/01001/gate-1/cmd", cbor2.dumps({"id": "x", "type": "policy", "policy": {}}), qos=1)
        intruder.publish("gate/01001/gate-1/ack", cbor2.dumps({"ids": ["x"]}), qos=1)
        time.sleep(1.0)
        assert uplink.stats.rejected == 0 and uplink.stats.commands == 0
        intruder.loop_stop()
        # a plain listener does not exist: mqtt:// to the same port fails
        plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain", protocol=mqtt.MQTTv311)
        with pytest.raises((OSError, ConnectionError)):
            plain.connect("127.0.0.1", broker.port)
            plain.loop(1.0)
            plain.loop(1.0)
            if not plain.is_connected():
                raise ConnectionError("refused")
    finally:
        uplink.stop(0)
        broker.stop()
