"""The real infrastructure the other tests stand on: pcscd + vpcd, mosquitto, the CLIs."""

from __future__ import annotations

import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest

from sim.infra.mosquitto import Mosquitto
from sim.infra.net import tcp_listening
from sim.infra.pcscd import Pcscd


@pytest.mark.pcscd
def test_private_pcscd_offers_the_vpcd_readers(pcscd: Pcscd) -> None:
    from smartcard.System import readers

    names = [str(r) for r in readers()]
    assert names == pcscd.reader_names
    assert all(tcp_listening(p) for p in pcscd.vpcd_ports)


@pytest.mark.broker
def test_mosquitto_round_trip(mosquitto: Mosquitto) -> None:
    got = threading.Event()
    payloads: list[bytes] = []

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        payloads.append(msg.payload)
        got.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe("t/#", qos=1)
    client.loop_start()
    try:
        client.publish("t/x", b"hello", qos=1).wait_for_publish(5)
        assert got.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert payloads == [b"hello"]


@pytest.mark.broker
def test_mosquitto_restart_keeps_port(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    mosquitto.kill()
    assert not tcp_listening(port)
    mosquitto.start()
    assert mosquitto.port == port and tcp_listening(port)


@pytest.mark.parametrize("package", ["agent", "sim"])
def test_cli_help(package: str) -> None:
    out = subprocess.run([sys.executable, "-m", package, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
