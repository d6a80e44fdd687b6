"""``gate-agent config check``: validate the configuration file without starting anything."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config

HELP = "check the configuration file (errors name the key)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="what to do with the configuration")
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--json", action="store_true", help="print the validated configuration as JSON")


def run(args: argparse.Namespace) -> int:
    import sys

    from agent.app.policy import relaxations

    cfg = load_config(args.config)
    warnings = relaxations(dict(cfg.policy))
    for warning in warnings:
        print(f"{cfg.path}: warning: {warning}", file=sys.stderr)
    if args.json:
        out = {
            "config": str(cfg.path),
            "ok": True,
            "facility_id": cfg.terminal.facility_id,
            "terminal_id": cfg.terminal.terminal_id,
            "warnings": warnings,
        }
        print(json.dumps(out))
    else:
        print(f"{cfg.path}: ok (facility {cfg.terminal.facility_id}, terminal {cfg.terminal.terminal_id})")
    return 0
