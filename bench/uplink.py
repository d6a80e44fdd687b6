"""Durable queue and uplink: append latency vs backlog, backlog drain rate vs raw paho, agent RSS, live latency.

    .venv/bin/python bench/uplink.py [--backlog 100000] [--hub-workers 1]

Three processes, as on real machines: this one (fills the queue, then measures raw paho
QoS 1 publishing on the same broker, same payload, same in-flight limit), the hub
simulator (``python -m sim hub``: verify, store in batches, acknowledge in batches) and
the agent (this file with ``--agent``: the real queue and uplink, nothing else) whose
RSS is the agent's own.  While the backlog drains the agent makes a live check-in
event every ``--live-every`` seconds; its latency (made -> hub stored -> ack back ->
out of the queue) is compared with the same measurement on an empty queue afterwards.
The agent packs backlog events into batches (``[uplink] batch``, 64 events signed once)
while raw paho publishes one event a message: the ratio compares events drained with
messages published, which is the point of batching (the hub checks one signature a
message).  ``--inflight`` is the delivery window (512 here; the shipped default is 64).
Goals (issue 16): drain/raw >= 0.5, agent RSS <= 60 MB, live latency during the drain
about the idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from agent.store import queue as q  # noqa: E402
from agent.uplink.client import set_nodelay  # noqa: E402
from agent.uplink.events import EventFactory, load_signing_key  # noqa: E402
from bench.measure import cpu_seconds, percentile, proc_status  # noqa: E402
from sim.infra.mosquitto import start_mosquitto  # noqa: E402

FACILITY, TERMINAL = "01001", "gate-1"
BODY = {"id_number": "001090012345", "outcome": "admitted", "assurance": "chip+finger"}


def append_latency(queue: q.EventQueue, factory: EventFactory, n: int) -> list[float]:
    out = []
    for _ in range(n):
        event = factory.envelope("checkin", queue.reserve(), BODY)
        sealed = factory.seal(event)
        start = time.perf_counter()
        queue.append(event["id"], sealed, seq=event["seq"])
        out.append(time.perf_counter() - start)
    return out


def raw_paho_rate(port: int, n: int, payload: bytes, inflight: int) -> tuple[float, int, float]:
    """QoS 1 publishes per second of a bare paho client (no queue, no hub), the broker's Receive Maximum,
    and the client's CPU seconds per message."""
    done = threading.Event()
    count = 0
    receive_max = [inflight]

    def on_publish(client: mqtt.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: Any) -> None:
        receive_max[0] = int(getattr(props, "ReceiveMaximum", 65535))
        set_nodelay(client)  # as the agent does
        client._max_inflight_messages = min(inflight, receive_max[0])  # as the agent does (paho refuses the setter)
        connected.set()

    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw", protocol=mqtt.MQTTv5)
    client.on_publish = on_publish
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(10)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        client.publish("bench/raw", payload, qos=1)
    done.wait(600)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    client.loop_stop()
    client.disconnect()
    return n / elapsed, receive_max[0], cpu / n


# --- the agent process ---------------------------------------------------------------------------------


def agent_main(args: argparse.Namespace) -> int:
    """The terminal's side alone: open the queue, drain it through the uplink, make live events meanwhile."""
    from agent.uplink.hubmsg import load_public_key
    from sim.fleet import terminal_uplink

    work = Path(args.work)
    queue = q.EventQueue(work / args.queue_dir, capacity=args.capacity)
    factory = EventFactory(FACILITY, TERMINAL, load_signing_key(work / "terminal.key"))
    table = {"broker_urls": [args.broker], "rate": 1e9, "inflight": args.inflight, "allow_plaintext": True}
    uplink = terminal_uplink(queue, factory, load_public_key(work / "hub.pub"), work / "hub-ctr", table)
    made: dict[int, float] = {}
    latency: list[tuple[str, float]] = []
    phase = ["drain"]
    real_ack = queue.ack

    def ack(seqs: list[int] | set[int]) -> int:  # note when a live event leaves the queue
        n = real_ack(seqs)
        now = time.perf_counter()
        for seq in seqs:
            t = made.pop(seq, None)
            if t is not None:
                latency.append((phase[0], now - t))
        return n

    queue.ack = ack  # type: ignore[method-assign]

    def live() -> None:
        event = factory.envelope("checkin", queue.reserve(), BODY)
        sealed = factory.seal(event)
        made[event["seq"]] = time.perf_counter()
        queue.append(event["id"], sealed, seq=event["seq"])
        uplink.notify()

    total = len(queue)
    rss_peak = proc_status("VmRSS")
    uplink.start()
    start = time.perf_counter()
    next_live = start + args.live_every
    while len(queue) - len(made) > 0 and time.perf_counter() - start < 1800:
        time.sleep(0.05)
        if time.perf_counter() >= next_live:
            live()
            next_live += args.live_every
        rss_peak = max(rss_peak, proc_status("VmRSS"))
    drain_seconds = time.perf_counter() - start
    left = len(queue) - len(made)
    uplink.drain(10)
    phase[0] = "idle"
    for _ in range(args.idle_samples):
        live()
        time.sleep(args.live_every)
    uplink.drain(10)
    uplink.stop(0)
    during = [t for p, t in latency if p == "drain"]
    idle = [t for p, t in latency if p == "idle"]
    print(json.dumps({
        "drained": total - left, "seconds": drain_seconds, "left": left, "rss_peak": rss_peak,
        "hwm": proc_status("VmHWM"), "live_during": during, "live_idle": idle, "lost_live": len(made),
        "cpu": time.process_time(), "published": uplink.stats.published, "resent": uplink.stats.resent,
        "receive_max": uplink.receive_maximum,
    }), flush=True)  # fmt: skip
    return 0


# --- a hub stand-in: acknowledges without verifying or storing (the agent's side alone) -----------------


def standin_main(args: argparse.Namespace) -> int:
    """Ack every event id at once (batched every 10 ms, signed as the hub signs); no verification, no storage.

    Not a hub: it measures what the agent's side can drain when the hub is not the limit.
    """
    from agent.uplink.events import open_message
    from agent.uplink.hubmsg import HubSigner, load_or_create_private_key

    signer = HubSigner(load_or_create_private_key(Path(args.work) / "hub.key"), FACILITY)
    pending: dict[str, list[str]] = {}
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        events = open_message(bytes(message.payload), None)  # an event or a batch, not verified
        with lock:
            pending.setdefault(str(events[0]["terminal"]), []).extend(str(event["id"]) for event in events)

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        set_nodelay(client)
        client.subscribe(f"gate/{FACILITY}/+/events", qos=1)
        ready.set()

    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="standin", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = on_connect
    port = int(args.broker.rsplit(":", 1)[1])
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.wait(10)
    print(json.dumps({"event": "ready"}), flush=True)
    while True:
        time.sleep(0.01)
        with lock:
            batch = dict(pending)
            pending.clear()
        for terminal, ids in batch.items():
            client.publish(f"gate/{FACILITY}/{terminal}/ack", signer.seal(terminal, "ack", {"ids": ids}), qos=1)


# --- the orchestrating process -------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--inflight", type=int, default=512, help="the agent's delivery window (uplink.inflight)")
    parser.add_argument("--hub-workers", type=int, default=1, help="hub processes sharing the subscription")
    parser.add_argument("--live-every", type=float, default=0.25)
    parser.add_argument("--idle-samples", type=int, default=20)
    parser.add_argument("--agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--standin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--capacity", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--queue-dir", default="backlog", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent:
        return agent_main(args)
    if args.standin:
        return standin_main(args)

    work = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    factory = EventFactory(FACILITY, TERMINAL, load_signing_key(work / "terminal.key"))
    empty = q.EventQueue(work / "empty")
    at_zero = append_latency(empty, factory, args.samples)
    empty.close()
    capacity = args.backlog + args.samples + 10_000
    full = q.EventQueue(work / "backlog", capacity=capacity)
    t0 = time.perf_counter()
    real_fsync = os.fsync
    os.fsync = lambda fd: None  # filling only: the fsync'd append is measured above and below, not 100,000 times
    try:
        append_latency(full, factory, args.backlog)
    finally:
        os.fsync = real_fsync
    os.sync()
    fill_seconds = time.perf_counter() - t0
    at_backlog = append_latency(full, factory, args.samples)
    sample = full.get(1)
    assert sample is not None
    total = len(full)
    full.close()
    p50_0, p99_0 = statistics.median(at_zero) * 1000, percentile(at_zero, 0.99) * 1000
    p50_b, p99_b = statistics.median(at_backlog) * 1000, percentile(at_backlog, 0.99) * 1000
    print(f"durable append (write + fsync), ms      p50      p99   ({args.samples} samples)")
    print(f"  empty queue                         {p50_0:7.3f}  {p99_0:7.3f}")
    print(f"  {args.backlog:>7} queued                      {p50_b:7.3f}  {p99_b:7.3f}")
    print(f"  ratio backlog/empty                 {p50_b / p50_0:7.2f}  {p99_b / p99_0:7.2f}")
    print(f"  (filling the backlog without fsync per event: {args.backlog / fill_seconds:,.0f} events/s)")

    shutil.copytree(work / "backlog", work / "backlog-standin")  # the same backlog, drained twice
    broker = start_mosquitto(work / "broker", extra_conf="max_queued_messages 0")
    try:
        raw, receive_max, raw_cpu = raw_paho_rate(broker.port, min(total, 50_000), sample.body, args.inflight)
        keys = work / "keys"
        keys.mkdir()
        (keys / f"{TERMINAL}.pub").write_bytes((work / "terminal.pub").read_bytes())
        from agent.uplink.hubmsg import load_or_create_private_key, public_pem

        hub_key = load_or_create_private_key(work / "hub.key")
        (work / "hub.pub").write_bytes(public_pem(hub_key.public_key()))  # pinned by the agent, as at enrolment
        print(f"\nraw paho QoS 1 publish (no queue, no hub), same broker and payload, in-flight "
              f"{min(args.inflight, receive_max)} (the broker's Receive Maximum): {raw:,.0f} messages/s, "
              f"client CPU {raw_cpu * 1e6:.0f} us/message")  # fmt: skip
        standin = [sys.executable, __file__, "--standin", "--work", str(work), "--broker", broker.url]
        report(args, "the agent's side alone: a hub stand-in acknowledges at once, no verification, no storage",
               drain(args, work, "backlog-standin", broker, [standin], capacity), raw)  # fmt: skip
        share = ["--share", "bench"] if args.hub_workers > 1 else []
        hub = [sys.executable, "-m", "sim", "hub", "--broker", broker.url, "--db", str(work / "hub.db"), "--keys",
               str(keys), "--hub-key", str(work / "hub.key"), "--quiet", *share]  # fmt: skip
        report(args, f"end to end: the hub simulator, {args.hub_workers} worker process(es) (verify, store, ack)",
               drain(args, work, "backlog", broker, [hub] * args.hub_workers, capacity), raw)  # fmt: skip
    finally:
        broker.stop()
    return 0


def drain(args: argparse.Namespace, work: Path, queue_dir: str, broker: Any, hub_argv: list[list[str]],
          capacity: int) -> dict[str, Any]:  # fmt: skip
    """Start the hub processes, run the agent process on ``queue_dir`` until drained; its report and CPU figures."""
    hubs: list[subprocess.Popen[str]] = []
    try:
        for argv in hub_argv:
            hub = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
            hubs.append(hub)
            assert hub.stdout is not None and "ready" in hub.stdout.readline()
        hub_cpu0 = sum(cpu_seconds(h.pid) for h in hubs)
        broker_cpu0 = cpu_seconds(broker.process.pid)
        agent = subprocess.run([sys.executable, __file__, "--agent", "--work", str(work), "--queue-dir", queue_dir,
                                "--broker", broker.url, "--inflight", str(args.inflight), "--capacity", str(capacity),
                                "--live-every", str(args.live_every), "--idle-samples", str(args.idle_samples)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, check=True)  # fmt: skip
        result: dict[str, Any] = json.loads(agent.stdout.strip().splitlines()[-1])
        result["hub_cpu"] = sum(cpu_seconds(h.pid) for h in hubs) - hub_cpu0
        result["broker_cpu"] = cpu_seconds(broker.process.pid) - broker_cpu0
        return result
    finally:
        for hub in hubs:
            hub.terminate()
            hub.wait(10)


def report(args: argparse.Namespace, title: str, result: dict[str, Any], raw: float) -> None:
    rate = result["drained"] / result["seconds"]
    during = [t * 1000 for t in result["live_during"]]
    idle = [t * 1000 for t in result["live_idle"]]
    print(f"\nbacklog drain, {title}; agent in its own process, window {args.inflight}:")
    print(f"  {result['drained']:,} events in {result['seconds']:.1f} s = {rate:,.0f} events/s "
          f"({result['left']} left, {result['resent']} resent)")  # fmt: skip
    print(f"  ratio drain/raw paho: {rate / raw:.2f}   (goal >= 0.5)")
    print(f"  agent RSS: {result['rss_peak']:.0f} MB peak while draining (VmHWM {result['hwm']:.0f} MB; goal <= 60)")
    per = 1e6 / max(1, result["drained"])
    print(f"  CPU: agent {result['cpu']:.1f} s ({result['cpu'] * per:.0f} us/event), hub {result['hub_cpu']:.1f} s "
          f"({result['hub_cpu'] * per:.0f} us/event), broker {result['broker_cpu']:.1f} s")  # fmt: skip
    print("  live check-in events, made -> hub stored -> ack back, ms    n     p50     p99     max")
    for name, values in (("during the drain", during), ("queue empty", idle)):
        if values:
            print(f"    {name:<20}                            {len(values):4d} {statistics.median(values):7.1f} "
                  f"{percentile(values, 0.99):7.1f} {max(values):7.1f}")  # fmt: skip
    if during and idle:
        print(f"    ratio during/idle (p50): {statistics.median(during) / statistics.median(idle):.2f}; "
              f"live events not acknowledged: {result['lost_live']}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
