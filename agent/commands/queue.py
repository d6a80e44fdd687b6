"""``gate-agent queue``: look into the terminal's event queue (stats, list, export) and purge acknowledged data.

``stats``, ``list`` and ``export`` open the queue read-only, beside a running daemon.
``purge-acked`` rewrites the files so no acknowledged event remains on disk; it needs
the daemon stopped (the queue allows one writer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from agent.config import DEFAULT_PATH

HELP = "event queue: stats | list | export | purge-acked"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["stats", "list", "export", "purge-acked"])
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--dir", type=Path, help="queue directory (default: <state_dir>/queue)")
    parser.add_argument("--limit", type=int, default=50, help="list: at most this many events")
    parser.add_argument("--out", type=Path, help="export: write JSON lines here (default: stdout)")
    parser.add_argument("--json", action="store_true")


def _directory(args: argparse.Namespace) -> Path:
    if args.dir:
        return Path(args.dir)
    from agent.config import load_config

    return load_config(args.config).state_dir / "queue"


def run(args: argparse.Namespace) -> int:
    from agent.store.queue import EventQueue
    from agent.uplink.events import EventError, open_sealed

    directory = _directory(args)
    if args.action == "purge-acked":
        queue = EventQueue(directory)
        rewritten = queue.purge_acked()
        out = {"rewritten_segments": rewritten, **queue.stats()}
        queue.close()
        print(json.dumps(out) if args.json else f"purged: {rewritten} segments rewritten, {out['pending']} pending")
        return 0
    queue = EventQueue(directory, read_only=True)
    if args.action == "stats":
        stats = queue.stats()
        if args.json:
            print(json.dumps(stats))
        else:
            for key, value in stats.items():
                print(f"{key:<20} {value}")
        return 0

    def summary(entry: Any) -> dict[str, Any]:
        try:
            event = open_sealed(entry.body, None)
        except EventError as exc:
            return {"seq": entry.seq, "id": entry.event_id, "error": str(exc)}
        body = event.get("body", {})
        # no personal data in listings: the ID number is masked
        masked = str(body.get("id_number", ""))[:3] + "*******" + str(body.get("id_number", ""))[-2:]
        return {"seq": entry.seq, "id": entry.event_id, "type": event["type"], "time": event["time"]["wall"],
                "outcome": body.get("outcome"), "reason": body.get("reason"), "id_number": masked}  # fmt: skip

    if args.action == "list":
        rows = [summary(e) for e in queue.pending(limit=args.limit)]
        if args.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                print(f"{row['seq']:>8}  {row['id']}  {row.get('type', '?'):<12} {row.get('outcome') or ''}")
        return 0
    # export: full events (personal data included: the operator asked for it), one JSON line each
    from tqdm import tqdm

    seqs = queue.pending_seqs()
    sink: TextIO = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    try:
        for seq in tqdm(seqs, desc="export", unit="event", disable=not sys.stderr.isatty() or args.out is None):
            entry = queue.get(seq)
            if entry is not None:
                sink.write(json.dumps(open_sealed(entry.body, None), ensure_ascii=False) + "\n")
    finally:
        if args.out:
            sink.close()
    if args.out:
        print(f"exported {len(seqs)} events to {args.out}", file=sys.stderr)
    return 0
