"""``gate-agent doctor``: check the terminal (devices, broker, certificates, clock, disk, queue), with fixes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config

HELP = "check devices, broker, certificates, clock, disk and queue; exit 1 when something is wrong"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--json", action="store_true", help="one JSON object with every check and its fix")
    parser.add_argument("--lang", choices=["en", "vi", "both"], default="en",
                        help="language of the fixes in the table (default en)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from agent.app.doctor import FAIL, render_table, run_checks

    cfg = load_config(args.config)
    checks = run_checks(cfg)
    failed = any(c.status == FAIL for c in checks)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}))
    else:
        print(render_table(checks, args.lang))
    return 1 if failed else 0
