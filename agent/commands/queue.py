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
    parser.add_argument("--out", type=Path, help="export: write JSON lines here, mode 0600 (default: stdout)")
    parser.add_argument("--unmasked", action="store_true", help="export: ID and card numbers in clear (personal data)")
    parser.add_argument("--json", action="store_true")


def _directory(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The queue directory and its key file (from the config's key source; beside the queue with --dir)."""
    if args.dir:
        return Path(args.dir), None
    from agent.config import load_config
    from agent.store.keysource import queue_key_file

    cfg = load_config(args.config)
    return cfg.state_dir / "queue", queue_key_file(cfg.state_dir, cfg.terminal.queue_key)[0]


#: fields that identify a person by number; masked in listings and exports unless --unmasked
NUMBER_FIELDS = ("id_number", "card_number", "old_id_number", "insurance_number")


def mask_number(value: object) -> str:
    text = str(value)
    return text[:3] + "*" * max(0, len(text) - 5) + text[-2:] if len(text) > 5 else "*" * len(text)


def masked(value: Any) -> Any:
    """A copy with every ID or card number masked (first three and last two digits kept), at any depth."""
    if isinstance(value, dict):
        return {k: mask_number(v) if k in NUMBER_FIELDS and v else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    from agent.store.queue import EventQueue
    from agent.uplink.events import EventError, open_sealed

    directory, key_file = _directory(args)
    if args.action == "purge-acked":
        queue = EventQueue(directory, key_file=key_file)
        rewritten = queue.purge_acked()
        out = {"rewritten_segments": rewritten, **queue.stats()}
        queue.close()
        print(json.dumps(out) if args.json else f"purged: {rewritten} segments rewritten, {out['pending']} pending")
        return 0
    queue = EventQueue(directory, key_file=key_file, read_only=True)
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
        number = mask_number(body.get("id_number", "")) if body.get("id_number") else ""
        return {"seq": entry.seq, "id": entry.event_id, "type": event["type"], "time": event["time"]["wall"],
                "outcome": body.get("outcome"), "reason": body.get("reason"), "id_number": number}  # fmt: skip

    if args.action == "list":
        rows = [summary(e) for e in queue.pending(limit=args.limit)]
        if args.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                print(f"{row['seq']:>8}  {row['id']}  {row.get('type', '?'):<12} {row.get('outcome') or ''}")
        return 0
    # export: full events, one JSON line each; ID and card numbers masked unless --unmasked; the file is 0600
    import os

    from tqdm import tqdm

    seqs = queue.pending_seqs()
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps no wider mode
        sink: TextIO = os.fdopen(fd, "w", encoding="utf-8")
    else:
        sink = sys.stdout
    try:
        for seq in tqdm(seqs, desc="export", unit="event", disable=not sys.stderr.isatty() or args.out is None):
            entry = queue.get(seq)
            if entry is not None:
                event = open_sealed(entry.body, None)
                sink.write(json.dumps(event if args.unmasked else masked(event), ensure_ascii=False) + "\n")
    finally:
        if args.out:
            sink.close()
    if args.out:
        print(f"exported {len(seqs)} events to {args.out}", file=sys.stderr)
    return 0
