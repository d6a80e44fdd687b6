"""The shipped facility broker configuration: TLS client certificates, no anonymous access, and an ACL
under which a terminal can publish only as itself."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import uplink_config
from agent.store.queue import EventQueue
from agent.uplink.client import Uplink
from agent.uplink.events import EventFactory, load_signing_key
from agent.uplink.hubmsg import HighWaterMark, HubVerifier
from sim.hub.hub import Hub
from sim.infra.mosquitto import Mosquitto
from sim.infra.net import free_port, wait_until
from sim.pki import make_pki

pytestmark = pytest.mark.broker
CONF = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "mosquitto" / "facility.conf"


def broker_conf(pki: Path, port: int) -> str:
    text = CONF.read_text().replace("listener 8883", f"listener {port} 127.0.0.1")
    for name in ("broker.crt", "broker.key", "ca.crt"):
        text = text.replace(f"/etc/mosquitto/certs/{name}", str(pki / name))
    text = text.replace("/etc/mosquitto/gate-acl", str(pki / "acl"))
    return "\n".join(line for line in text.splitlines() if not line.startswith(("persistence", "allow_anonymous")))


def wait(predicate: Callable[[], object], timeout: float = 15.0) -> bool:
    return wait_until(predicate, timeout)


def test_tls_acl_terminal_publishes_only_as_itself(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    make_pki(pki, "01001", ["gate-1", "gate-2"])
    port = free_port()
    broker = Mosquitto(tmp_path / "broker", port, extra_conf=broker_conf(pki, port), anonymous=False).start()
    url = f"mqtts://127.0.0.1:{port}"
    keys = {t: load_signing_key(tmp_path / t / "terminal.key") for t in ("gate-1", "gate-2")}
    hub = Hub(url, "01001", tmp_path / "hub.db", {t: k.public_key() for t, k in keys.items()},
              tls=(str(pki / "ca.crt"), str(pki / "hub.crt"), str(pki / "hub.key"))).start()  # fmt: skip
    queue = EventQueue(tmp_path / "gate-1" / "queue")
    table = {"broker_urls": [url], "tls_ca": str(pki / "ca.crt"), "tls_cert": str(pki / "gate-1.crt"),
             "tls_key": str(pki / "gate-1.key"), "backoff_min": 0.2, "backoff_max": 1.0}  # fmt: skip
    verifier = HubVerifier(hub.signing_key.public_key(), "01001", "gate-1", HighWaterMark(tmp_path / "hub-counter"))
    uplink = Uplink(uplink_config(table, "01001", "gate-1"), queue, verifier=verifier)
    try:
        assert hub.connected.wait(10)
        uplink.start()
        factory = EventFactory("01001", "gate-1", keys["gate-1"])
        for _ in range(3):
            event = factory.envelope("checkin", queue.reserve(), {"id_number": "001090012345"})
            queue.append(event["id"], factory.seal(event), seq=event["seq"])
        uplink.notify()
        assert wait(lambda: len(queue) == 0)
        assert hub.count() == 3

        # gate-1's certificate, publishing a genuine gate-2 event on gate-2's topic: the broker drops it
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="intruder", protocol=mqtt.MQTTv311)
        intruder.tls_set(
            ca_certs=str(pki / "ca.crt"), certfile=str(pki / "gate-1.crt"), keyfile=str(pki / "gate-1.key")
        )
        intruder.connect("127.0.0.1", port)
        intruder.loop_start()
        other = EventFactory("01001", "gate-2", keys["gate-2"])
        stolen = other.seal(other.envelope("checkin", 1, {"id_number": "001090099999"}))
        intruder.publish("gate/01001/gate-2/events", stolen, qos=1).wait_for_publish(5)
        intruder.publish("gate/01001/gate-2/status", b"\xa0", qos=1, retain=True).wait_for_publish(5)
        time.sleep(1.0)
        assert hub.count() == 3 and hub.stats.rejected == 0  # it never reached the hub
        intruder.loop_stop()
        intruder.disconnect()

        # no certificate, no connection
        anonymous = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon", protocol=mqtt.MQTTv311)
        anonymous.tls_set(ca_certs=str(pki / "ca.crt"))
        accepted = threading.Event()
        anonymous.on_connect = lambda c, u, f, reason, p: None if reason.is_failure else accepted.set()
        try:
            anonymous.connect("127.0.0.1", port)
            anonymous.loop_start()
        except (ssl.SSLError, OSError):
            pass  # refused during the handshake: as good as refused at CONNECT
        assert not accepted.wait(2)
        anonymous.loop_stop()
    finally:
        uplink.stop(0)
        queue.close()
        hub.stop()
        broker.stop()
