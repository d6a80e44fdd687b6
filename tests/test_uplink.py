"""Queue -> MQTT -> hub simulator on a real mosquitto: acks end to end, outages, dedup, forgery, commands."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cbor2
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import uplink_config
from agent.errors import ConfigError
from agent.store.queue import EventQueue
from agent.uplink import cose
from agent.uplink.client import Uplink, UplinkConfig
from agent.uplink.events import EventFactory, load_signing_key, open_message
from agent.uplink.hubmsg import HighWaterMark, HubVerifier
from sim.hub.hub import Hub
from sim.infra.mosquitto import Mosquitto
from sim.infra.net import wait_until

pytestmark = pytest.mark.broker

#: the hub's message-signing key, which each terminal here has pinned
HUB_KEY = ed25519.Ed25519PrivateKey.generate()


def wait(predicate: Callable[[], object], timeout: float = 20.0) -> bool:
    return wait_until(predicate, timeout)


class Terminal:
    def __init__(self, root: Path, broker: Mosquitto, name: str = "gate-1", **cfg: object) -> None:
        self.key = load_signing_key(root / name / "terminal.key")
        self.factory = EventFactory("01001", name, self.key)
        self.queue = EventQueue(root / name / "queue")
        table = {"broker_urls": [broker.url], "backoff_min": 0.1, "backoff_max": 0.5, "ack_timeout": 30.0,
                 "allow_plaintext": True, **cfg}  # fmt: skip
        verifier = HubVerifier(HUB_KEY.public_key(), "01001", name, HighWaterMark(root / name / "hub-counter.json"))
        self.uplink = Uplink(uplink_config(table, "01001", name), self.queue, on_command=self.command,
                             verifier=verifier, batch_sealer=self.factory.seal_batch)  # fmt: skip
        self.commands: list[dict[str, object]] = []

    def command(self, body: object) -> tuple[bool, str]:
        assert isinstance(body, dict)
        self.commands.append(body)
        if body.get("type") != "eligibility_snapshot":
            return False, f"unknown command type {body.get('type')!r}"
        return True, f"{len(body.get('records', []))} records"

    def emit(self, n: int) -> list[str]:
        ids = []
        for i in range(n):
            event = self.factory.envelope("checkin", self.queue.reserve(), {"id_number": f"00109001{i:04d}"})
            self.queue.append(event["id"], self.factory.seal(event), seq=event["seq"])
            ids.append(event["id"])
        self.uplink.notify()
        return ids


@pytest.fixture
def setup(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[Terminal, Hub]]:
    terminal = Terminal(tmp_path, mosquitto)
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": terminal.key.public_key()},
              eligibility={"001090012345": {"id_number": "001090012345"}}, signing_key=HUB_KEY).start()  # fmt: skip
    assert hub.connected.wait(10)
    terminal.uplink.start()
    yield terminal, hub
    terminal.uplink.stop(0)
    terminal.queue.close()
    hub.stop()


def test_events_leave_the_queue_only_when_the_hub_acknowledges(setup: tuple[Terminal, Hub]) -> None:
    terminal, hub = setup
    ids = terminal.emit(50)
    assert wait(lambda: len(terminal.queue) == 0)
    assert hub.count() == 50 and hub.stats.duplicates == 0
    assert [e["id"] for e in hub.events()] == ids  # in order, by sequence number


def test_nothing_is_lost_across_broker_restarts(setup: tuple[Terminal, Hub], mosquitto: Mosquitto) -> None:
    terminal, hub = setup
    terminal.emit(30)
    mosquitto.kill()
    terminal.emit(30)  # made while the broker is down
    assert len(terminal.queue) >= 30
    mosquitto.start()
    assert wait(lambda: len(terminal.queue) == 0, 30)
    assert hub.count() == 60  # every event exactly once after dedup


def test_unacknowledged_events_are_sent_again_and_deduplicated(tmp_path: Path, mosquitto: Mosquitto) -> None:
    terminal = Terminal(tmp_path, mosquitto, ack_timeout=1.0)
    hub = Hub(
        mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": terminal.key.public_key()}, signing_key=HUB_KEY
    ).start()
    try:
        assert hub.connected.wait(10)
        unsubscribed = threading.Event()
        hub.client.on_unsubscribe = lambda *args: unsubscribed.set()
        hub.client.unsubscribe("gate/01001/+/events")
        assert unsubscribed.wait(10)  # UNSUBACK: the broker routes no more events to the hub
        terminal.uplink.start()
        terminal.emit(5)
        assert wait(lambda: terminal.uplink.stats.published >= 5)
        hub.client.subscribe("gate/01001/+/events", qos=1)
        assert wait(lambda: len(terminal.queue) == 0, 30)
        assert hub.count() == 5 and terminal.uplink.stats.resent >= 5
    finally:
        terminal.uplink.stop(0)
        hub.stop()


def test_forged_and_foreign_events_are_rejected(setup: tuple[Terminal, Hub]) -> None:
    terminal, hub = setup
    event = terminal.factory.envelope("checkin", 999, {"id_number": "x"})
    forged = cose.sign1(cbor2.dumps(event), ed25519.Ed25519PrivateKey.generate(), b"gate-1")
    hub.client.publish("gate/01001/gate-1/events", forged, qos=1)
    hub.client.publish("gate/01001/gate-9/events", terminal.factory.seal(event), qos=1)
    hub.client.publish("gate/01001/gate-1/events", b"\xff\x00garbage", qos=1)
    assert wait(lambda: hub.stats.rejected == 3)
    assert hub.stats.reasons == {"bad signature": 1, "unknown terminal": 1, "malformed": 1}
    assert hub.count() == 0


@pytest.mark.parametrize("batch", [50, 1])
def test_a_backlog_goes_in_batches_and_live_events_alone(tmp_path: Path, mosquitto: Mosquitto, batch: int) -> None:
    terminal = Terminal(tmp_path, mosquitto, batch=batch, inflight=200)
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": terminal.key.public_key()},
              signing_key=HUB_KEY).start()  # fmt: skip
    seen: list[int] = []  # events per message, as a third client on the broker sees them
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="spy", protocol=mqtt.MQTTv5)
    spy.on_message = lambda client, userdata, message: seen.append(len(open_message(bytes(message.payload), None)))
    subscribed = threading.Event()
    spy.on_subscribe = lambda *args: subscribed.set()
    spy.connect("127.0.0.1", mosquitto.port)
    spy.loop_start()
    try:
        spy.subscribe("gate/01001/gate-1/events", qos=1)
        assert subscribed.wait(10) and hub.connected.wait(10)
        backlog = terminal.emit(300)  # made before the uplink runs: backlog
        terminal.uplink.start()
        assert wait(lambda: len(terminal.queue) == 0, 30)
        live = terminal.emit(1)
        assert wait(lambda: len(terminal.queue) == 0 and sum(seen) == 301, 30)
        assert hub.count() == 301 and hub.stats.duplicates == 0 and hub.stats.rejected == 0
        assert [e["id"] for e in hub.events()] == backlog + live  # in order, each once
        assert seen[-1] == 1  # the live event went alone
        if batch == 1:
            assert seen == [1] * 301
        else:  # the window (200, an eighth kept for live events) cut into messages of at most 50
            assert max(seen) == 50 and len(seen) <= 301 // 50 + 4, str(seen)
    finally:
        spy.loop_stop()
        spy.disconnect()
        terminal.uplink.stop(0)
        hub.stop()


def test_forged_mixed_and_replayed_batches_at_the_hub(setup: tuple[Terminal, Hub]) -> None:
    terminal, hub = setup
    made = [terminal.factory.envelope("checkin", 900 + i, {"id_number": "001090012345"}) for i in range(3)]
    sealed = [terminal.factory.seal(e) for e in made]
    thief = EventFactory("01001", "gate-1", ed25519.Ed25519PrivateKey.generate())
    other = EventFactory("01001", "gate-2", terminal.key)
    foreign = other.seal(other.envelope("checkin", 1, {"id_number": "001090012345"}))
    hub.client.publish("gate/01001/gate-1/events", thief.seal_batch(sealed), qos=1)  # forged signature
    hub.client.publish("gate/01001/gate-1/events", terminal.factory.seal_batch([*sealed, foreign]), qos=1)
    assert wait(lambda: hub.stats.rejected == 2)
    assert hub.stats.reasons == {"bad signature": 1, "malformed": 1} and hub.count() == 0  # nothing of either
    genuine = terminal.factory.seal_batch(sealed)
    for _ in range(2):  # sent, then replayed: stored once
        hub.client.publish("gate/01001/gate-1/events", genuine, qos=1)
    assert wait(lambda: hub.stats.duplicates == 3)
    assert hub.count() == 3


def test_eligibility_query_and_hub_commands(setup: tuple[Terminal, Hub]) -> None:
    terminal, hub = setup
    assert wait(lambda: terminal.uplink.connected)
    answer = terminal.uplink.query_eligibility("001090012345", 5)
    assert answer is not None and answer["record"] == {"id_number": "001090012345"}
    none = terminal.uplink.query_eligibility("001090099999", 5)
    assert none is not None and none["record"] is None
    ok = hub.push_eligibility("gate-1", [{"id_number": "001090012345"}], dt.datetime.now(dt.UTC).isoformat())
    assert hub.wait_result(ok, 10) == {"id": ok, "ok": True, "reason": "1 records"}
    bad = hub.send_command("gate-1", {"type": "self_destruct"})
    result = hub.wait_result(bad, 10)
    assert result is not None and result["ok"] is False and "unknown command" in result["reason"]


def test_stop_drains_and_leaves_an_offline_status(setup: tuple[Terminal, Hub], mosquitto: Mosquitto) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    terminal, hub = setup
    assert wait(lambda: terminal.uplink.connected)
    terminal.emit(20)
    terminal.uplink.stop(20)
    assert len(terminal.queue) == 0 and hub.count() == 20  # stop() drained before going offline
    statuses: list[object] = []
    got = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        statuses.append(cbor2.loads(message.payload))
        got.set()

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="status-watcher")
    watcher.on_message = on_message
    watcher.on_connect = lambda client, *args: client.subscribe("gate/01001/gate-1/status", qos=1)
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.loop_start()
    try:
        assert got.wait(10)
        assert statuses[0] == {"state": "offline"}  # said on purpose, not the last will of a lost link
    finally:
        watcher.disconnect()
        watcher.loop_stop()


def test_drain_returns_false_when_nothing_is_acknowledged(tmp_path: Path, mosquitto: Mosquitto) -> None:
    from sim.infra.net import free_port

    terminal = Terminal(tmp_path, mosquitto, broker_urls=[f"mqtt://127.0.0.1:{free_port()}"])
    terminal.uplink.start()
    try:
        terminal.emit(2)
        started = time.monotonic()
        assert terminal.uplink.drain(0.5) is False
        assert time.monotonic() - started >= 0.5
        assert terminal.uplink.drain(0) is False and len(terminal.queue) == 2
    finally:
        terminal.uplink.stop(0)
        terminal.queue.close()


def test_failover_to_the_second_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    from sim.infra.net import free_port

    dead = f"mqtt://127.0.0.1:{free_port()}"
    terminal = Terminal(tmp_path, mosquitto, broker_urls=[dead, mosquitto.url])
    hub = Hub(
        mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": terminal.key.public_key()}, signing_key=HUB_KEY
    ).start()
    try:
        assert hub.connected.wait(10)
        terminal.uplink.start()
        terminal.emit(3)
        assert wait(lambda: len(terminal.queue) == 0, 30)
        assert terminal.uplink.stats.broker == f"127.0.0.1:{mosquitto.port}"
    finally:
        terminal.uplink.stop(0)
        hub.stop()


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"uplink\.brokers: unknown key"):
        uplink_config({"brokers": []}, "f", "t")
    with pytest.raises(ConfigError, match=r"uplink\.broker_urls"):
        uplink_config({"broker_urls": ["http://x"]}, "f", "t")
    with pytest.raises(ConfigError, match=r"uplink\.inflight: expected an integer"):
        uplink_config({"broker_urls": [], "inflight": "many"}, "f", "t")
    with pytest.raises(ConfigError, match=r"uplink\.broker_urls: .* plain MQTT without TLS"):
        uplink_config({"broker_urls": ["mqtt://127.0.0.1:1883"]}, "f", "t")
    assert uplink_config({"broker_urls": ["mqtts://127.0.0.1:8883"]}, "f", "t").allow_plaintext is False


def test_a_tls_file_problem_at_start_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    table = {"broker_urls": ["mqtts://127.0.0.1:8883"], "tls_ca": str(tmp_path / "ca.pem"),
             "tls_cert": str(tmp_path / "missing.crt"), "tls_key": str(tmp_path / "gate.key")}  # fmt: skip
    with pytest.raises(ConfigError, match=r"uplink\.tls_cert: file .*missing\.crt does not exist"):
        uplink_config(table, "01001", "gate-1")  # the config schema names it first
    # a file that goes missing after the config was checked: the uplink's start names it too
    config = UplinkConfig(("mqtts://127.0.0.1:8883",), "01001", "gate-1", tls_ca=table["tls_ca"],
                          tls_cert=table["tls_cert"], tls_key=table["tls_key"])  # fmt: skip
    uplink = Uplink(config, EventQueue(tmp_path / "queue"))
    with pytest.raises(ConfigError, match=r"uplink\.tls_cert: .*missing\.crt"):
        uplink.start()
