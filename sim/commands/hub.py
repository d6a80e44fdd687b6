"""``python -m sim hub``: the facility hub on a broker (verify, deduplicate, store, acknowledge, answer)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from types import FrameType

HELP = "run the facility hub simulator on an MQTT broker"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, help="mqtt://host:port")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file for the events")
    parser.add_argument("--facility", default="01001")
    parser.add_argument("--keys", type=Path, required=True, help="directory of <terminal>.pub signing keys")
    parser.add_argument("--eligibility", type=Path, help="JSON list of insurance records to answer queries with")
    parser.add_argument("--push", action="store_true", help="push the eligibility data to every known terminal")
    parser.add_argument("--username")
    parser.add_argument("--password")


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from sim.hub.hub import Hub, load_keys

    records = json.loads(args.eligibility.read_text()) if args.eligibility else []
    hub = Hub(args.broker, args.facility, args.db, load_keys(args.keys), {r["id_number"]: r for r in records},
              args.username, args.password).start()  # fmt: skip
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not hub.connected.wait(30):
        print("python -m sim hub: error: cannot connect to the broker")
        return 3
    if args.push:
        for terminal in hub.keys:
            hub.push_eligibility(terminal, records, dt.datetime.now(dt.UTC).isoformat())
    print(json.dumps({"event": "ready", "facility": args.facility, "terminals": sorted(hub.keys)}), flush=True)
    stop.wait()
    print(json.dumps({"event": "stopped", "stored": hub.stats.stored, "duplicates": hub.stats.duplicates,
                      "rejected": hub.stats.rejected}), flush=True)  # fmt: skip
    hub.stop()
    return 0
