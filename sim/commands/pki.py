"""``python -m sim pki``: a development PKI and ACL for a facility broker with TLS client certificates."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "make a test PKI (CA, broker, hub and terminal certificates) and the broker ACL"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--facility", default="01001")
    parser.add_argument("--terminals", default="gate-1", help="comma-separated terminal ids")
    parser.add_argument("--broker-host", action="append", help="names/addresses in the broker certificate")


def run(args: argparse.Namespace) -> int:
    from sim.pki import make_pki

    terminals = [t.strip() for t in args.terminals.split(",") if t.strip()]
    make_pki(args.out, args.facility, terminals, args.broker_host)
    print(f"wrote CA, broker, hub and {len(terminals)} terminal certificates and the ACL to {args.out}")
    return 0
