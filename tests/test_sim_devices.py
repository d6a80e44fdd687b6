"""``python -m sim scanner`` and ``python -m sim broker`` as background devices a developer starts by hand."""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sim.infra.control import send
from sim.infra.net import tcp_listening
from sim.population import make_person
from tests.sim_procs import child, sim


@pytest.mark.pty
def test_scanner_in_the_background_takes_commands_on_its_socket(tmp_path: Path) -> None:
    link, ctl = tmp_path / "qr", tmp_path / "qr.ctl"
    argv = sim("scanner", "--kind", "qr", "--pty-link", str(link), "--control", str(ctl))
    with child(argv, stdin=subprocess.DEVNULL, stderr_path=tmp_path / "err") as scanner:
        assert scanner.read_json(30)["event"] == "ready"
        time.sleep(0.5)
        assert scanner.proc.poll() is None  # end of stdin is not the end of the scanner
        fd = os.open(link, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)  # keep the line open while it sends
        try:
            assert send(ctl, "12") == {"event": "scanned", "ok": True, "seed": 12}
            assert send(ctl, "text 001090012345")["ok"]
            data = b""
            deadline = time.monotonic() + 10
            while b"001090012345\r\n" not in data and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.2)[0]:
                    data += os.read(fd, 4096)
        finally:
            os.close(fd)
        assert make_person(12).qr().encode() + b"\r\n" in data
        assert data.endswith(b"001090012345\r\n")
        bad = send(ctl, "twelve")
        assert bad["ok"] is False and "not a seed" in bad["error"]
        assert scanner.stop() == 0
    assert not link.exists() and not ctl.exists()


@pytest.mark.broker
def test_broker_command_round_trip_and_clean_stop(tmp_path: Path) -> None:
    with child(sim("broker", "--json", "--workdir", str(tmp_path / "b")), stderr_path=tmp_path / "err") as broker:
        info = broker.read_json(30)
        assert info["url"] == f"mqtt://127.0.0.1:{info['port']}" and info["tls"] is False
        got = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.on_message = lambda c, u, m: got.set()
        client.connect("127.0.0.1", info["port"])
        client.subscribe("t/#", qos=1)
        client.loop_start()
        try:
            time.sleep(0.3)
            client.publish("t/x", b"hi", qos=1).wait_for_publish(5)
            assert got.wait(5)
        finally:
            client.loop_stop()
            client.disconnect()
        assert broker.stop() == 0
    assert not tcp_listening(info["port"])


@pytest.mark.broker
def test_broker_command_with_the_facility_tls_configuration(tmp_path: Path) -> None:
    made = subprocess.run(sim("pki", "--out", str(tmp_path / "pki")), capture_output=True, timeout=60)
    assert made.returncode == 0
    argv = sim("broker", "--pki", str(tmp_path / "pki"), "--workdir", str(tmp_path / "b"))
    with child(argv, stderr_path=tmp_path / "err") as broker:
        line = broker.readline(30)
        assert line.startswith("export GATE_SIM_BROKER=mqtts://127.0.0.1:")
        assert "require_certificate true" in (tmp_path / "b" / "mosquitto.conf").read_text()
        assert broker.stop() == 0
