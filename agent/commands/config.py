"""``gate-agent config check``: validate the configuration file without starting anything.

It takes its verdict from the one schema (:mod:`agent.config`) that ``run`` and the
reload use, so a file it passes starts; it also prints the legal-but-unsafe choices.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config, plaintext_brokers, warnings

HELP = "check the configuration file (errors name the key); --json prints the effective configuration"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="what to do with the configuration")
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--json", action="store_true", help="print the effective configuration (defaults filled in)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")


def run(args: argparse.Namespace) -> int:
    from agent.app.effective_policy import policy_in_force, read_pushed

    cfg = load_config(args.config)
    _, table, source = policy_in_force(cfg)  # the policy as the daemon applies it, the hub's push included
    found = warnings(cfg, table)
    if source == "config" and read_pushed(cfg):
        found.insert(0, "policy: the policy the hub pushed last no longer validates: the daemon applies the "
                        "config's [policy] instead (the hub must push it again)")  # fmt: skip
    if args.json:
        effective = cfg.as_dict()
        effective["policy"] = table
        out = {"ok": True, "config": str(cfg.path), "facility_id": cfg.terminal.facility_id,
               "terminal_id": cfg.terminal.terminal_id, "warnings": found, "effective": effective,
               "plaintext_brokers": plaintext_brokers(cfg.uplink)}  # fmt: skip
        print(json.dumps(out, indent=2))
    else:
        print(f"{cfg.path}: ok (facility {cfg.terminal.facility_id}, terminal {cfg.terminal.terminal_id})")
    for text in found:  # on stderr, so --json stays one document on stdout
        print(f"warning: {text}", file=sys.stderr)
    return 1 if args.strict and found else 0
