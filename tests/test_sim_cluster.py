"""``python -m sim cluster`` by hand: a node comes up, is killed and started again from stdin, and all stops."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sim.infra.rabbitmq import SERVER, _group_alive
from tests.sim_procs import Child, sim

pytestmark = [
    pytest.mark.slow,
    pytest.mark.broker,
    pytest.mark.skipif(not SERVER.exists(), reason="rabbitmq-server is not installed (./run setup installs it)"),
]


def round_trip(url: str) -> bool:
    """An MQTT 3.1.1 client subscribes and gets its own QoS 1 message back through the node."""
    parts = urlsplit(url)
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=mqtt.MQTTv311)
    client.on_message = lambda c, u, m: got.set() if m.payload == b"ping" else None
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, 10)
    except OSError:
        return False
    client.loop_start()
    try:
        client.subscribe("gate/probe", qos=1)
        client.publish("gate/probe", b"ping", qos=1)
        return got.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()


def refused(url: str) -> bool:
    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe-down", protocol=mqtt.MQTTv311)
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, 10)
    except OSError:
        return True
    client.disconnect()
    return False


def test_a_cluster_started_by_hand_takes_node_commands_and_stops_everything(tmp_path: Path) -> None:
    bad = subprocess.run(sim("cluster", "--nodes", "0"), capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--nodes must be 1 to 9" in bad.stderr

    work = tmp_path / "cluster"
    cluster = Child(sim("cluster", "--nodes", "1", "--json", "--workdir", str(work)), stdin=subprocess.PIPE,
                    stderr_path=tmp_path / "cluster.err")  # fmt: skip
    assert cluster.proc.stdin is not None

    def command(line: str) -> dict[str, object]:
        assert cluster.proc.stdin is not None
        cluster.proc.stdin.write(line + "\n")
        cluster.proc.stdin.flush()
        return cluster.read_json(120)

    try:
        ready = cluster.read_json(180)
        assert ready["event"] == "ready"
        urls = ready["urls"]
        assert isinstance(urls, list) and len(urls) == 1 and urls[0].startswith("mqtt://127.0.0.1:")
        assert str(ready["log"]) == str(work) and (work / "rt1" / "rabbitmq.conf").exists()
        assert round_trip(urls[0])

        killed = command("kill 1")
        assert killed == {"event": "kill", "node": 1, "url": urls[0], "running": False}
        assert refused(urls[0])
        assert command("start 1")["running"] is True
        assert round_trip(urls[0])  # the same node, with its data, on the same port

        assert command("kill 7")["event"] == "error"
        assert command("open the gates")["event"] == "error"
        status = command("status")
        nodes = status["nodes"]
        assert isinstance(nodes, list) and nodes[0]["running"] is True
        pid = int(nodes[0]["pid"])
    finally:
        rc = cluster.stop(signal.SIGTERM, timeout=60)
    assert rc == 0, (tmp_path / "cluster.err").read_text()
    assert not _group_alive(pid)  # the node's whole process group is gone
    assert refused(urls[0])
    assert (work / "rt1" / "log").is_dir()  # the work directory stays, with the node's logs
