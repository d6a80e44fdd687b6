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


def _location(args: argparse.Namespace) -> tuple[Path, int]:
    """The queue directory, and its capacity when the config says it (``--dir`` alone: the default)."""
    from agent.config import TerminalConfig, load_config

    if args.dir:
        return Path(args.dir), TerminalConfig.queue_capacity

    cfg = load_config(args.config)
    return cfg.state_dir / "queue", cfg.terminal.queue_capacity


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _utc(wall: object) -> str:
    import datetime as dt

    if not isinstance(wall, int | float):
        return "?"
    return dt.datetime.fromtimestamp(wall, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_stats(stats: dict[str, Any]) -> str:
    """The queue at a glance, in units an operator reads (``--json`` has the raw numbers)."""
    pending, capacity = stats["pending"], stats["capacity"]
    rows = [
        ("pending events", f"{pending} of {capacity} ({100 * pending / capacity:.1f} % full)"),
        ("oldest pending", human_age(stats["oldest_pending_age"])),
        ("on disk", f"{human_bytes(stats['bytes'])} in {stats['segments']} segment(s)"),
        ("next sequence", str(stats["next_seq"])),
        ("damaged", f"{stats['unreadable_records']} unreadable record(s), "
                    f"{human_bytes(stats['dropped_tail_bytes'])} torn tail dropped"),
    ]  # fmt: skip
    return "\n".join(f"{name:<16} {value}" for name, value in rows)


def run(args: argparse.Namespace) -> int:
    from agent.store.queue import EventQueue
    from agent.uplink.events import EventError, open_sealed

    directory, capacity = _location(args)
    if args.action == "purge-acked":
        queue = EventQueue(directory, capacity=capacity)
        rewritten = queue.purge_acked()
        out = {"rewritten_segments": rewritten, **queue.stats()}
        queue.close()
        print(json.dumps(out) if args.json else f"purged: {rewritten} segments rewritten, {out['pending']} pending")
        return 0
    queue = EventQueue(directory, read_only=True, capacity=capacity)
    if args.action == "stats":
        stats = queue.stats()
        if args.json:
            print(json.dumps(stats))
        else:
            print(render_stats(stats))
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
            print(f"{'SEQ':>8}  {'EVENT ID':<36}  {'TYPE':<12} {'TIME (UTC)':<19}  OUTCOME")
            for row in rows:
                when = _utc(row.get("time"))
                print(f"{row['seq']:>8}  {row['id']:<36}  {row.get('type', '?'):<12} {when:<19}  "
                      f"{row.get('outcome') or row.get('error') or ''}")  # fmt: skip
            total = queue.stats()["pending"]
            print(f"{len(rows)} of {total} pending events" + (f" (--limit {args.limit})" if total > len(rows) else ""))
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
