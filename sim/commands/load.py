"""``python -m sim load``: drive the real agent store and uplink with N synthetic check-in events.

The hardware path is replaced by generated events; everything after the decision
(sealing, the durable queue, the uplink, hub acknowledgements) is production code.
Exits when all N events are acknowledged.  Restarted with the same ``--state``
after a kill, it resumes: events already made are not made again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HELP = "push N synthetic check-in events through the real queue and uplink"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--terminal", required=True)
    parser.add_argument("--facility", default="01001")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--broker", required=True, action="append", help="mqtt://host:port (repeat for failover)")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=0, help="events made per second (0: as fast as possible)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--hub-key", type=Path, help="the hub's public key (PEM); default STATE/hub.pub")


def run(args: argparse.Namespace) -> int:
    from agent.store.queue import EventQueue
    from agent.uplink.events import EventFactory, load_signing_key
    from agent.uplink.hubmsg import load_public_key
    from sim.fleet import terminal_uplink

    args.state.mkdir(parents=True, exist_ok=True)
    factory = EventFactory(args.facility, args.terminal, load_signing_key(args.state / "terminal.key"))
    queue = EventQueue(args.state / "queue", capacity=max(100_000, args.events))
    table = {"broker_urls": args.broker, "backoff_min": 0.2, "backoff_max": 2.0, "allow_plaintext": True}
    hub_key = load_public_key(args.hub_key or args.state / "hub.pub")
    uplink = terminal_uplink(queue, factory, hub_key, args.state / "hub-counter.json", table)
    uplink.start()
    made = queue.next_seq - 1  # the sequence number is persistent: it counts what was made before a kill
    start = time.monotonic()
    while made < args.events:
        event = factory.envelope("checkin", queue.reserve(), {"id_number": f"{made % 10**12:012d}", "synthetic": True})
        queue.append(event["id"], factory.seal(event), seq=event["seq"])
        made += 1
        uplink.notify()
        if args.rate:
            time.sleep(max(0.0, start + made / args.rate - time.monotonic()))
    ok = uplink.drain(args.timeout)
    uplink.stop(0)
    stats = {"event": "done" if ok else "timeout", "made": made, "pending": len(queue),
             "published": uplink.stats.published, "seconds": round(time.monotonic() - start, 2)}  # fmt: skip
    print(json.dumps(stats), flush=True)
    queue.close()
    if not ok:
        print("python -m sim load: not all events were acknowledged in time", file=sys.stderr)
    return 0 if ok else 1
