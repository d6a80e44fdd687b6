"""``python -m sim pki``: a development PKI and ACL for a facility broker, or (``--card``) a card issuer PKI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "make a test PKI (CA, broker, hub and terminal certificates) and the broker ACL, or a card issuer PKI"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--facility", default="01001")
    parser.add_argument("--terminals", default="gate-1", help="comma-separated terminal ids")
    parser.add_argument("--broker-host", action="append", help="names/addresses in the broker certificate")
    parser.add_argument("--card", action="store_true",
                        help="instead: the simulated cards' issuer PKI (CSCA, document signers, CRL) and EAC keys, "
                             "for 'python -m sim card --pki OUT'; OUT/trust holds the gate's anchors")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="with --card: the PKI seed (same seed, same CSCA)")
    parser.add_argument("--ds-algorithm", choices=["ecdsa", "rsa-pss"], default="ecdsa",
                        help="with --card: the document signers' key type")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.card:
        from sim.card.pki import PkiDirectoryError
        from sim.card.pkidir import open_pki_directory

        try:
            directory = open_pki_directory(args.out, args.seed, args.ds_algorithm)
        except PkiDirectoryError as exc:
            print(f"python -m sim pki: error: {exc}", file=sys.stderr)
            return 2
        verb = "wrote" if directory.created else "kept the existing"
        print(f"{verb} card issuer PKI (seed {directory.issuer.seed}) in {args.out}; gate anchors in {directory.trust}")
        return 0
    from sim.pki import make_pki

    terminals = [t.strip() for t in args.terminals.split(",") if t.strip()]
    make_pki(args.out, args.facility, terminals, args.broker_host)
    print(f"wrote CA, broker, hub and {len(terminals)} terminal certificates and the ACL to {args.out}")
    return 0
