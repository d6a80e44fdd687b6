"""Many gates on one broker: N simulated terminals, one mosquitto, the hub simulator.

    .venv/bin/python bench/fleet.py [--terminals 50,200,500] [--seconds 30] [--per-process 50] [--hub-workers 1]

Each terminal is a :class:`sim.fleet.FleetTerminal`: the real durable queue (fsync per
event, encrypted) and the real uplink (its own MQTT connection, signed events, signed
acks from the hub, 3 threads and paho's), making 1 synthetic check-in event a second
at a random phase and a status heartbeat every ``--heartbeat`` seconds.  Terminals run
``--per-process`` to a process (threads), so N = 500 is 10 processes; the hub
(``python -m sim hub``: verify, store in batches, one ack per terminal and batch) and
mosquitto run in their own processes.  After ``--seconds`` the terminals stop making
events and drain; then the run reports, per N: events made, stored at the hub, lost
(must be 0) and duplicates, the end-to-end latency (made -> hub stored -> ack back ->
out of the queue) p50/p99/max, and the CPU of broker, hub and terminals.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.store.files import public_pem  # noqa: E402
from agent.uplink.events import load_signing_key  # noqa: E402
from agent.uplink.hubmsg import load_or_create_private_key, load_public_key  # noqa: E402
from bench.measure import cpu_seconds, percentile  # noqa: E402
from sim.infra.mosquitto import start_mosquitto  # noqa: E402

# --- a process of terminals ----------------------------------------------------------------------------


def worker_main(args: argparse.Namespace) -> int:
    from sim.fleet import FleetTerminal

    root = Path(args.root)
    hub_key = load_public_key(root / "hub.pub")
    names = args.names.split(",")
    terminals = [FleetTerminal(root / "t", name, [args.broker], hub_key, inflight=64, ack_timeout=30.0,
                               heartbeat=args.heartbeat) for name in names]  # fmt: skip
    for terminal in terminals:
        terminal.start()
        time.sleep(args.ramp / len(terminals))  # connect over the ramp, not all at once
    print(json.dumps({"event": "ready"}), flush=True)
    start = float(sys.stdin.readline())  # the orchestrator's common start time (time.time())
    rng = random.Random(args.seed)
    # one emitter thread: each terminal's next event time, 1 a second at a random phase
    schedule = {t.name: start + rng.random() for t in terminals}
    beats = {t.name: start + rng.random() * args.heartbeat for t in terminals}
    by_name = {t.name: t for t in terminals}
    end = start + args.seconds
    late = 0
    while True:
        now = time.time()
        if now >= end:
            break
        name = min(schedule, key=schedule.__getitem__)
        due = schedule[name]
        if due >= end:
            break
        if due > now:
            time.sleep(min(due - now, end - now))
            continue
        late += int(now - due > 0.5)
        by_name[name].emit(1)
        schedule[name] = due + 1.0
        for beat_name, at in beats.items():
            if at <= now:
                by_name[beat_name].heartbeat()
                beats[beat_name] = at + args.heartbeat
    drained = all(t.uplink.drain(max(1.0, end + args.drain - time.time())) for t in terminals)
    result: dict[str, Any] = {
        "made": {t.name: len(t.ids) for t in terminals},
        "left": {t.name: len(t.queue) for t in terminals if len(t.queue)},
        "latencies": [round(x, 5) for t in terminals for x in t.queue.latencies],
        "resent": sum(t.uplink.stats.resent for t in terminals),
        "connects": sum(t.uplink.stats.connects for t in terminals),
        "late": late, "drained": drained, "cpu": time.process_time(),
    }  # fmt: skip
    threads = [threading.Thread(target=t.stop) for t in terminals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    print(json.dumps(result), flush=True)
    return 0


# --- one run ---------------------------------------------------------------------------------------------


def run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-fleet-{n}-"))
    # each real terminal has a disk of its own; on one machine, N terminals' fsyncs would measure this
    # machine's disk, not the broker and the hub (bench/uplink.py measures a terminal's fsync'd append)
    queues = Path(tempfile.mkdtemp(prefix=f"bench-fleet-{n}-", dir=args.queue_root)) if args.queue_root else work
    names = [f"gate-{i:04d}" for i in range(n)]
    keys = work / "keys"
    keys.mkdir()
    for name in names:
        key = load_signing_key(queues / "t" / name / "terminal.key")
        (keys / f"{name}.pub").write_bytes(public_pem(key.public_key()))
    (queues / "hub.pub").write_bytes(public_pem(load_or_create_private_key(work / "hub.key").public_key()))
    broker = start_mosquitto(work / "broker", extra_conf="max_queued_messages 10000")
    hubs: list[subprocess.Popen[str]] = []
    workers: list[subprocess.Popen[str]] = []
    try:
        share = ["--share", "fleet"] if args.hub_workers > 1 else []
        for _ in range(args.hub_workers):
            hub = subprocess.Popen([sys.executable, "-m", "sim", "hub", "--broker", broker.url, "--db",
                                    str(work / "hub.db"), "--keys", str(keys), "--hub-key", str(work / "hub.key"),
                                    "--quiet", *share], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   cwd=ROOT)  # fmt: skip
            hubs.append(hub)
            assert hub.stdout is not None and "ready" in hub.stdout.readline()
        per = max(1, args.per_process)
        for i in range(0, n, per):
            worker = subprocess.Popen([sys.executable, __file__, "--worker", "--root", str(queues), "--broker",
                                       broker.url, "--names", ",".join(names[i : i + per]), "--seconds",
                                       str(args.seconds), "--heartbeat", str(args.heartbeat), "--seed", str(i),
                                       "--drain", str(args.drain), "--ramp", str(args.ramp)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True, cwd=ROOT)  # fmt: skip
            workers.append(worker)
        for worker in workers:
            assert worker.stdout is not None and "ready" in worker.stdout.readline()
        assert broker.process is not None
        cpu0 = {"broker": cpu_seconds(broker.process.pid), "hub": sum(cpu_seconds(h.pid) for h in hubs)}
        start = time.time() + 1.0
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(f"{start}\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            assert worker.stdout is not None
            results.append(json.loads(worker.stdout.readline()))
            worker.wait(60)
        elapsed = time.time() - start
        cpu = {"broker": cpu_seconds(broker.process.pid) - cpu0["broker"],
               "hub": sum(cpu_seconds(h.pid) for h in hubs) - cpu0["hub"]}  # fmt: skip
    finally:
        for proc in workers + hubs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        broker.stop()
        if queues != work:
            shutil.rmtree(queues, ignore_errors=True)
    made = {name: count for r in results for name, count in r["made"].items()}
    with sqlite3.connect(f"file:{work / 'hub.db'}?mode=ro", uri=True) as conn:
        stored = dict(conn.execute("SELECT terminal, COUNT(*) FROM events GROUP BY terminal").fetchall())
    lost = sum(max(0, made[name] - stored.get(name, 0)) for name in made)
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "n": n, "made": sum(made.values()), "stored": sum(stored.values()), "lost": lost,
        "left": sum(sum(r["left"].values()) for r in results), "resent": sum(r["resent"] for r in results),
        "p50": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) * 1000, "max": max(latencies, default=float("nan")) * 1000,
        "broker_cpu": cpu["broker"] / elapsed * 100, "hub_cpu": cpu["hub"] / elapsed * 100,
        "terminals_cpu": sum(r["cpu"] for r in results), "late": sum(r["late"] for r in results),
        "elapsed": elapsed, "processes": len(workers),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", default="50,200,500", help="comma-separated fleet sizes to run")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the terminals make events")
    parser.add_argument("--per-process", type=int, default=50, help="terminals per process (threads)")
    parser.add_argument("--hub-workers", type=int, default=1)
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds between status heartbeats")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds allowed to drain after the run")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which a process connects its terminals")
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    parser.add_argument("--queue-root", default=shm, help="where the terminals' queues live (default: a tmpfs, "
                        "as each real terminal fsyncs to its own disk; '' = the work directory)")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
    print(f"fleet: 1 event/s per terminal for {args.seconds:.0f} s, heartbeat every {args.heartbeat:.0f} s, "
          f"{args.per_process} terminals per process, {args.hub_workers} hub worker(s), one mosquitto; "
          f"terminals' queues on {args.queue_root or 'the work directory'}")  # fmt: skip
    print("     N  procs    made  stored  lost  left  resent  p50 ms  p99 ms  max ms  broker %CPU  hub %CPU  "
          "terminals CPU s")  # fmt: skip
    rows = []
    for n in (int(x) for x in args.terminals.split(",")):
        r = run(n, args)
        rows.append(r)
        print(f"{r['n']:6d} {r['processes']:6d} {r['made']:7d} {r['stored']:7d} {r['lost']:5d} {r['left']:5d} "
              f"{r['resent']:7d} {r['p50']:7.1f} {r['p99']:7.1f} {r['max']:7.1f} {r['broker_cpu']:12.1f} "
              f"{r['hub_cpu']:9.1f} {r['terminals_cpu']:16.1f}", flush=True)  # fmt: skip
        if r["made"] < n * int(args.seconds):
            missing = n * int(args.seconds) - r["made"]
            print(f"        ({missing} scheduled events not made before the end: the terminals' processes fell "
                  "behind, short of CPU)")  # fmt: skip
        if r["late"]:
            print(f"        ({r['late']} events made more than 0.5 s late: the terminals' processes were short of CPU)")
    if len(rows) > 1:  # how each figure grows with N, against the smallest fleet of this run
        base = rows[0]

        def per_event(r: dict[str, Any], key: str) -> float:
            return float(r[key]) / 100 * float(r["elapsed"]) / max(1, int(r["made"])) * 1e6

        print(f"ratios to N = {base['n']}:  N x    p50    p99   broker CPU/event   hub CPU/event   stored/made")
        for r in rows[1:]:
            print(f"  N = {r['n']:<5}        {r['n'] / base['n']:4.0f} {r['p50'] / base['p50']:6.2f} "
                  f"{r['p99'] / base['p99']:6.2f} {per_event(r, 'broker_cpu') / per_event(base, 'broker_cpu'):18.2f} "
                  f"{per_event(r, 'hub_cpu') / per_event(base, 'hub_cpu'):15.2f} "
                  f"{r['stored'] / max(1, r['made']):13.3f}")  # fmt: skip
        for r in rows:
            print(f"  N = {r['n']:<5} CPU per event: broker {per_event(r, 'broker_cpu'):.0f} us, "
                  f"hub {per_event(r, 'hub_cpu'):.0f} us")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
