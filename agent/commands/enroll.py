"""``gate-agent enroll``: make this terminal's keys and a request for the hub; install what the hub signed."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config

HELP = "enrol the terminal: keys born here, public parts for the hub; --install the hub's answer and pin the hub"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--out", type=Path, help="where to write the request (default STATE_DIR/enrol-request)")
    parser.add_argument("--renew", action="store_true", help="new TLS and EAC keys (the event-signing key stays)")
    parser.add_argument("--country", default="VN", help="country code of the CV certificate holder reference")
    parser.add_argument("--install", type=Path, metavar="DIR", help="install the hub's answer from DIR")
    parser.add_argument("--repin", action="store_true", help="with --install: replace a different pinned hub key")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from agent.app import enrol

    cfg = load_config(args.config)
    started = time.perf_counter()
    if args.install:
        result = enrol.install(cfg, args.install, repin=args.repin)
    else:
        result = enrol.request(cfg, args.out or cfg.state_dir / "enrol-request", renew=args.renew,
                               country=args.country)  # fmt: skip
    result["seconds"] = round(time.perf_counter() - started, 4)
    if args.json:
        print(json.dumps(result))
        return 0
    if args.install:
        print(f"installed for {result['terminal_id']}: TLS until {result['tls_valid_until']}, "
              f"EAC {result['eac_terminal']} until {result['eac_valid_until']}")  # fmt: skip
        print(f"hub key fingerprint ({result['hub_key_pinned']}):  {result['hub_key_fingerprint']}")
        print(f"master-list root ({result['ml_root_pinned']}): {result['ml_root']}")
        print(f"  fingerprint: {result['ml_root_fingerprint']}")
        print("compare both fingerprints with what the hub printed before putting the gate in service")
    else:
        print(f"request for {result['terminal_id']} in {result['out']}: {', '.join(result['files'])}")
        print(f"event-signing key fingerprint: {result['signing_key_fingerprint']}")
        print(
            "hand these files to the hub (python -m sim hub enroll, or the facility's hub); no private key is in them"
        )
    return 0
