"""``gate-agent config check``: validate the configuration file without starting anything.

It takes its verdict from the one schema (:mod:`agent.config`) that ``run`` and the
reload use, so a file it passes starts; it also prints the legal-but-unsafe choices.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config, warnings

HELP = "check the configuration file (errors name the key); --json prints the effective configuration"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="what to do with the configuration")
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--json", action="store_true", help="print the effective configuration (defaults filled in)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")


def run(args: argparse.Namespace) -> int:
    import sys

    from agent.app.effective_policy import effective_table
    from agent.app.policy import relaxations

    cfg = load_config(args.config)
    relaxed = relaxations(dict(cfg.policy))  # fail-closed rules relaxed: first, and on stderr as well
    keys = {text.split(" = ")[0] for text in relaxed}
    found = relaxed + [text for text in warnings(cfg) if text.split(":")[0] not in keys]
    for text in relaxed:
        print(f"{cfg.path}: warning: {text}", file=sys.stderr)
    if args.json:
        effective = cfg.as_dict()
        effective["policy"] = effective_table(cfg)  # with the hub's last push, as the daemon applies it
        out = {"ok": True, "config": str(cfg.path), "facility_id": cfg.terminal.facility_id,
               "terminal_id": cfg.terminal.terminal_id, "warnings": found, "effective": effective}  # fmt: skip
        print(json.dumps(out, indent=2))
    else:
        print(f"{cfg.path}: ok (facility {cfg.terminal.facility_id}, terminal {cfg.terminal.terminal_id})")
        for text in found:
            print(f"warning: {text}")
    return 1 if args.strict and found else 0
