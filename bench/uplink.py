"""Durable queue and uplink: append latency vs backlog, backlog drain rate vs raw paho, RSS while draining.

    .venv/bin/python bench/uplink.py [--backlog 100000]

Starts a private mosquitto on a free loopback port and the hub simulator in this process
(the hub's acks are part of the drain: an event leaves the queue only when acknowledged).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from agent.store import queue as q  # noqa: E402
from agent.uplink.client import Uplink, UplinkConfig  # noqa: E402
from agent.uplink.events import EventFactory, load_signing_key  # noqa: E402
from agent.uplink.hubmsg import HighWaterMark, HubVerifier, load_or_create_private_key  # noqa: E402
from sim.infra.mosquitto import start_mosquitto  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def append_latency(queue: q.EventQueue, factory: EventFactory, n: int) -> list[float]:
    out = []
    for _ in range(n):
        event = factory.envelope("checkin", queue.reserve(), {"id_number": "001090012345", "outcome": "admitted"})
        sealed = factory.seal(event)
        start = time.perf_counter()
        queue.append(event["id"], sealed, seq=event["seq"])
        out.append(time.perf_counter() - start)
    return out


def raw_paho_rate(port: int, n: int, payload: bytes) -> float:
    done = threading.Event()
    count = 0

    def on_publish(client: mqtt.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(20)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    for _ in range(n):
        client.publish("bench/raw", payload, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    factory = EventFactory("01001", "gate-1", load_signing_key(work / "terminal.key"))

    empty = q.EventQueue(work / "empty")
    at_zero = append_latency(empty, factory, args.samples)
    empty.close()
    full = q.EventQueue(work / "backlog", capacity=args.backlog + args.samples + 10)
    t0 = time.perf_counter()
    append_latency(full, factory, args.backlog)
    fill_seconds = time.perf_counter() - t0
    at_backlog = append_latency(full, factory, args.samples)
    p50_0, p99_0 = statistics.median(at_zero) * 1000, percentile(at_zero, 0.99) * 1000
    p50_b, p99_b = statistics.median(at_backlog) * 1000, percentile(at_backlog, 0.99) * 1000
    print(f"durable append (write + fsync), ms      p50      p99   ({args.samples} samples)")
    print(f"  empty queue                         {p50_0:7.3f}  {p99_0:7.3f}")
    print(f"  {args.backlog:>7} queued                      {p50_b:7.3f}  {p99_b:7.3f}")
    print(f"  ratio backlog/empty                 {p50_b / p50_0:7.2f}  {p99_b / p99_0:7.2f}")
    print(f"  (filling the backlog: {args.backlog / fill_seconds:,.0f} events/s)")

    broker = start_mosquitto(work / "broker", extra_conf="max_queued_messages 0\nmax_inflight_messages 20")
    sample = full.get(1)
    assert sample is not None
    raw = raw_paho_rate(broker.port, min(args.backlog, 50_000), sample.body)
    # the hub runs in its own process, as it would on its own machine (and out of this process's GIL)
    keys = work / "keys"
    keys.mkdir()
    (keys / "gate-1.pub").write_bytes((work / "terminal.pub").read_bytes())
    hub = subprocess.Popen([sys.executable, "-m", "sim", "hub", "--broker", broker.url, "--db", str(work / "hub.db"),
                            "--keys", str(keys), "--hub-key", str(work / "hub.key"), "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           cwd=ROOT)  # fmt: skip
    assert hub.stdout is not None and "ready" in hub.stdout.readline()
    table = {"broker_urls": [broker.url], "rate": 1e9, "inflight": 256, "allow_plaintext": True}
    config = UplinkConfig.from_table(table, "01001", "gate-1")
    hub_key = load_or_create_private_key(work / "hub.key").public_key()  # pinned, as at enrolment
    uplink = Uplink(config, full, verifier=HubVerifier(hub_key, "01001", "gate-1", HighWaterMark(work / "hub-ctr")))
    total = len(full)
    rss_before = rss_mb()
    peak = rss_before
    start = time.perf_counter()
    uplink.start()
    while len(full) and time.perf_counter() - start < 1800:
        time.sleep(0.5)
        peak = max(peak, rss_mb())
    drain_seconds = time.perf_counter() - start
    left = len(full)
    uplink.stop(0)
    hub.terminate()
    hub.wait(10)
    broker.stop()
    rate = (total - left) / drain_seconds
    print(f"\nbacklog drain with hub acknowledgements: {total - left:,} events in {drain_seconds:.1f} s "
          f"= {rate:,.0f} events/s ({left} left)")  # fmt: skip
    print(f"raw paho QoS 1 publish (no store, no acks): {raw:,.0f} messages/s")
    print(f"ratio drain/raw: {rate / raw:.2f}")
    print(f"RSS: {rss_before:.0f} MB before draining, {peak:.0f} MB peak while draining")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
