"""A broker cluster that loses a node: gates publishing while a RabbitMQ node is killed (SIGKILL) and restarted.

    .venv/bin/python bench/cluster.py [--terminals 20] [--rate 2] [--before 6] [--down 10] [--after 6]

Three RabbitMQ nodes from Debian (MQTT plugin, 3.1.1, persistent sessions on quorum
queues; :mod:`sim.infra.rabbitmq`: private loopback ports, names, data and epmd), the
hub simulator in this process (3.1.1, a persistent session, the three URLs) and
``--terminals`` gates (:class:`sim.fleet.FleetTerminal`: the real queue and uplink, 3.1.1,
persistent sessions, the three URLs, ``ack_timeout`` 5 s) as threads, each making
``--rate`` events a second.  Two rounds in one run, each with its own gates and hub
session: the node the hub is connected to is killed, then (next round) a node the hub
is not on.  Each node is killed after ``--before`` seconds and started again ``--down``
seconds later; the gates go on for ``--after`` seconds, then drain.

Per round: events made, stored, lost (must be 0), stored but never made (must be 0) and
the copies the hub dropped as duplicates (its key, terminal + event id, stores each once); the
hub's storing rate before the loss, while the node is down and after its return, with
the ratio to the rate before; the longest pause in storing; the gates' reconnects; the
end-to-end latency (made -> hub stored -> ack back) of events made before the loss and
of events made while the node was down, and their ratio.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

from bench.measure import percentile  # noqa: E402
from sim.fleet import FleetTerminal  # noqa: E402
from sim.hub.hub import Hub  # noqa: E402
from sim.infra.rabbitmq import RabbitCluster  # noqa: E402

HUB_KEY = ed25519.Ed25519PrivateKey.generate()


def round_(cluster: RabbitCluster, work: Path, args: argparse.Namespace, victim_is_hubs: bool) -> dict[str, Any]:
    settings = {"protocol": "3.1.1", "persistent_session": True, "ack_timeout": 5.0, "keepalive": 5}
    terminals = [FleetTerminal(work / "gates", f"gate-{n:03d}", cluster.urls, HUB_KEY.public_key(), **settings)
                 for n in range(args.terminals)]  # fmt: skip
    db = work / "hub.db"
    hub = Hub(",".join(cluster.urls), "01001", db, {t.name: t.public_key for t in terminals}, signing_key=HUB_KEY,
              protocol="3.1.1", client_id=f"hub-{work.name}", persistent=True).start()  # fmt: skip
    if not hub.connected.wait(30):
        raise SystemExit("the hub did not connect to the cluster")
    on_hubs = cluster.nodes[hub._broker_index]
    victim = on_hubs if victim_is_hubs else next(n for n in cluster.nodes if n is not on_hubs)
    stop = threading.Event()

    def publish(index: int, terminal: FleetTerminal) -> None:
        time.sleep(index / len(terminals) / args.rate)  # the gates' phases spread over a period
        while not stop.is_set():
            terminal.emit(1)
            stop.wait(1 / args.rate)

    threads = [threading.Thread(target=publish, args=(i, t), daemon=True) for i, t in enumerate(terminals)]
    try:
        for terminal in terminals:
            terminal.start()
        began = time.time()
        for thread in threads:
            thread.start()
        time.sleep(args.before)
        killed_wall, killed_mono = time.time(), time.monotonic()
        cluster.kill_node(victim)
        time.sleep(args.down)
        cluster.start_node(victim, timeout=120)
        back_wall, back_mono = time.time(), time.monotonic()
        time.sleep(args.after)
        stop.set()
        ended = time.time()
        for thread in threads:
            thread.join(10)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and sum(len(t.queue) for t in terminals):
            time.sleep(0.5)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            rows = conn.execute("SELECT terminal, id, received FROM events ORDER BY received").fetchall()
        made = {(t.name, i) for t in terminals for i in t.ids}
        stored = [(str(r[0]), str(r[1])) for r in rows]
        times = [float(r[2]) for r in rows]
        gaps = [(b - a, a) for a, b in itertools.pairwise(times) if b >= killed_wall - 1]
        pause, since = max(gaps) if gaps else (0.0, killed_wall)

        def rate(start: float, end: float) -> float:
            return sum(1 for t in times if start <= t < end) / max(1e-9, end - start)

        samples = [s for t in terminals for s in t.queue.samples]
        before = [lat for made_at, lat in samples if made_at < killed_mono]
        down = [lat for made_at, lat in samples if killed_mono <= made_at < back_mono]
        return {
            "victim": f"{victim.name} ({'the hub' if victim_is_hubs else 'not the hub'}'s node)",
            "made": len(made), "stored": len(set(stored)), "lost": len(made - set(stored)),
            "unknown": len(set(stored) - made), "duplicates": hub.stats.duplicates,
            "left": sum(len(t.queue) for t in terminals),
            "rates": (rate(began + 1, killed_wall), rate(killed_wall, back_wall), rate(back_wall, ended)),
            "pause": pause, "pause_from": since - killed_wall, "down_for": back_wall - killed_wall,
            "reconnects": sum(max(0, t.uplink.stats.connects - 1) for t in terminals),
            "latency_before": before, "latency_down": down,
        }  # fmt: skip
    finally:
        stop.set()
        for terminal in terminals:
            terminal.stop()
        hub.stop()


def report(n: int, r: dict[str, Any]) -> None:
    pre, during, post = r["rates"]
    print(f"\nround {n}: {r['victim']} killed with SIGKILL, back after {r['down_for']:.1f} s")
    print(f"  events: made {r['made']}, stored {r['stored']}, lost {r['lost']}, stored but never made "
          f"{r['unknown']}, copies the hub dropped as duplicates {r['duplicates']} (its key, terminal + event id, "
          f"stores each once), left in the gates' queues {r['left']}")  # fmt: skip
    print(f"  hub storing, events/s: before {pre:.1f}, node down {during:.1f} (ratio {during / pre:.2f}), "
          f"after {post:.1f} (ratio {post / pre:.2f})")  # fmt: skip
    print(f"  longest pause in storing: {r['pause']:.2f} s, from {r['pause_from']:+.1f} s after the kill; "
          f"gates' reconnects: {r['reconnects']}")  # fmt: skip
    b, d = r["latency_before"], r["latency_down"]
    if b and d:
        print("  made -> acked, s      n     p50     p99     max")
        for name, values in (("before", b), ("node down", d)):
            print(f"    {name:<12} {len(values):6d} {statistics.median(values):7.3f} {percentile(values, 0.99):7.3f} "
                  f"{max(values):7.3f}")  # fmt: skip
        print(f"    ratio node down / before (p50): {statistics.median(d) / statistics.median(b):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2.0, help="events a second per gate")
    parser.add_argument("--before", type=float, default=6.0, help="seconds before the node is killed")
    parser.add_argument("--down", type=float, default=10.0, help="seconds the node stays down")
    parser.add_argument("--after", type=float, default=6.0, help="seconds of publishing after it is back")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # each gate's "disconnected" warning would bury the report
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    cluster = RabbitCluster(work / "rabbit")
    try:
        cluster.start(timeout=240)
        print(f"RabbitMQ cluster of {len(cluster.nodes)} nodes (MQTT 3.1.1, quorum queues) up in "
              f"{cluster.start_seconds:.1f} s; {args.terminals} gates at {args.rate:g} events/s each")  # fmt: skip
        failed = False
        for n, hubs in enumerate((True, False), 1):
            result = round_(cluster, work / f"round{n}", args, hubs)
            report(n, result)
            failed |= bool(result["lost"] or result["unknown"] or result["left"])
        return 1 if failed else 0
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
