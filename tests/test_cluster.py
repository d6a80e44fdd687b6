"""The agent on a three-node RabbitMQ cluster (MQTT 3.1.1, sessions on quorum queues) that loses a node.

The cluster is Debian's rabbitmq-server, three nodes on private loopback ports with
their own names, data, cookie and epmd (:mod:`sim.infra.rabbitmq`).  Twenty terminals
(the real queue and uplink, 3.1.1 mode, persistent sessions, the three nodes' URLs)
publish while the node the hub is connected to is killed with SIGKILL and later
restarted: every event must reach the hub exactly once after deduplication; the pause
in delivery the loss caused is measured and printed.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from sim.fleet import FleetTerminal
from sim.hub.hub import Hub
from sim.infra.rabbitmq import SERVER, RabbitCluster, _group_alive

pytestmark = [
    pytest.mark.slow,
    pytest.mark.broker,
    pytest.mark.skipif(not SERVER.exists(), reason="rabbitmq-server is not installed (./run setup installs it)"),
]

HUB_KEY = ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    work = tmp_path_factory.mktemp("rabbit")
    nodes = RabbitCluster(work).start(timeout=180)
    print(f"\nRabbitMQ cluster of 3 nodes up in {nodes.start_seconds:.1f} s")
    try:
        yield nodes
    finally:
        nodes.stop()
        shutil.rmtree(work, ignore_errors=True)
    # nothing of the cluster is left running: every node's process group and the private epmd are gone
    assert not any(_group_alive(node.process.pid) for node in nodes.nodes if node.process is not None)
    assert nodes.epmd is not None and nodes.epmd.poll() is not None


def make_hub(cluster: RabbitCluster, db: Path, terminals: list[FleetTerminal], client_id: str) -> Hub:
    keys = {t.name: t.public_key for t in terminals}
    hub = Hub(",".join(cluster.urls), "01001", db, keys, signing_key=HUB_KEY, protocol="3.1.1", client_id=client_id,
              persistent=True).start()  # fmt: skip
    assert hub.connected.wait(30)
    return hub


def test_the_agent_finds_out_the_broker_speaks_3_1_1_and_delivers(cluster: RabbitCluster, tmp_path: Path) -> None:
    terminal = FleetTerminal(tmp_path, "gate-1", cluster.urls, HUB_KEY.public_key(), protocol="auto")
    hub = make_hub(cluster, tmp_path / "hub.db", [terminal], "hub-detect")
    try:
        terminal.start()
        ids = terminal.emit(20)
        assert terminal.uplink.drain(60), f"{len(terminal.queue)} events still queued"
        assert terminal.uplink._protocol5 is False  # refused MQTT 5, fell back on its own
        assert sorted(e["id"] for e in hub.events()) == sorted(ids)
    finally:
        terminal.stop()
        hub.stop()


def test_twenty_terminals_lose_a_node_and_every_event_arrives_once(cluster: RabbitCluster, tmp_path: Path) -> None:
    settings = {"protocol": "3.1.1", "persistent_session": True, "ack_timeout": 5.0, "keepalive": 5}
    terminals = [FleetTerminal(tmp_path, f"gate-{n:02d}", cluster.urls, HUB_KEY.public_key(), **settings)
                 for n in range(20)]  # fmt: skip
    db = tmp_path / "hub.db"
    hub = make_hub(cluster, db, terminals, "hub-node-loss")
    victim = cluster.nodes[hub._broker_index]  # the hub's own node: its session must move to another
    stop = threading.Event()

    def publish(terminal: FleetTerminal) -> None:
        while not stop.is_set():
            terminal.emit(1)
            stop.wait(0.5)  # 2 events a second per terminal, 40 for the fleet

    threads = [threading.Thread(target=publish, args=(t,), daemon=True) for t in terminals]
    try:
        for terminal in terminals:
            terminal.start()
        for thread in threads:
            thread.start()
        time.sleep(4)
        killed_at = time.time()
        cluster.kill_node(victim)
        time.sleep(8)
        cluster.start_node(victim, timeout=90)
        restarted_at = time.time()
        time.sleep(4)
        stop.set()
        for thread in threads:
            thread.join(10)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(len(t.queue) for t in terminals):
            time.sleep(0.5)
        left = {t.name: len(t.queue) for t in terminals if len(t.queue)}
        assert not left, f"events never acknowledged: {left}"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            rows = conn.execute("SELECT terminal, id, received FROM events ORDER BY received").fetchall()
        made = {(t.name, i) for t in terminals for i in t.ids}
        stored = [(str(r[0]), str(r[1])) for r in rows]
        assert len(stored) == len(set(stored)) and set(stored) == made  # exactly once, none lost
        # the pause: the longest stretch around the loss in which the hub stored nothing
        times = [float(r[2]) for r in rows]
        gaps = [(b - a, a) for a, b in itertools.pairwise(times) if b >= killed_at - 1]
        pause, since = max(gaps) if gaps else (0.0, killed_at)
        latencies = sorted(x for t in terminals for x in t.queue.latencies)
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        print(f"\n{len(made)} events from {len(terminals)} terminals, {hub.stats.duplicates} duplicates dropped; "
              f"node {victim.name} killed at +0.0 s, restarted at +{restarted_at - killed_at:.1f} s; "
              f"longest pause in delivery {pause:.1f} s from +{since - killed_at:.1f} s; event made -> acked: "
              f"p50 {latencies[len(latencies) // 2]:.2f} s, p99 {p99:.2f} s, max {latencies[-1]:.2f} s")  # fmt: skip
        assert pause < 60
    finally:
        stop.set()
        for terminal in terminals:
            terminal.stop()
        hub.stop()
