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
    from urllib.parse import urlsplit

    from agent.uplink.config import UplinkConfig

    cfg = load_config(args.config)
    plaintext: list[str] = []
    if cfg.uplink:
        uplink = UplinkConfig.from_table(cfg.uplink, cfg.terminal.facility_id, cfg.terminal.terminal_id)
        plaintext = [u for u in uplink.broker_urls if urlsplit(u).scheme in ("mqtt", "tcp")]
    if args.json:
        out = {
            "config": str(cfg.path),
            "ok": True,
            "facility_id": cfg.terminal.facility_id,
            "terminal_id": cfg.terminal.terminal_id,
            "plaintext_brokers": plaintext,
        }
        print(json.dumps(out))
    else:
        print(f"{cfg.path}: ok (facility {cfg.terminal.facility_id}, terminal {cfg.terminal.terminal_id})")
        if plaintext:
            print(f"warning: uplink.allow_plaintext = true; {', '.join(plaintext)} carries check-ins without TLS")
    return 0
