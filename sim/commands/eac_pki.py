"""``python -m sim eac-pki``: terminal credentials for Terminal Authentication against simulated cards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a gate's EAC credentials (CVCA, document verifier and terminal CV certificates, terminal key)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="credentials directory to write")
    parser.add_argument("--seed", type=int, default=0,
                        help="EAC PKI seed; cards trust the CVCA of their --pki-seed (default 0)")  # fmt: skip
    parser.add_argument("--pki", type=Path, metavar="DIR",
                        help="use the EAC keys kept in this PKI directory (made with --seed if none)")  # fmt: skip
    parser.add_argument("--no-fingerprint-right", action="store_true",
                        help="a terminal certificate without the right to read DG3")  # fmt: skip
    parser.add_argument("--expired", action="store_true", help="a terminal certificate that has expired")


def run(args: argparse.Namespace) -> int:
    from sim.card.eac import READ_DG3, READ_DG4, eac_pki
    from sim.card.pki import PkiDirectoryError
    from sim.card.pkidir import open_pki_directory

    rights = READ_DG4 if args.no_fingerprint_right else READ_DG3 | READ_DG4
    days = (-60, -1) if args.expired else (-1, 30)
    try:
        keys = open_pki_directory(args.pki, args.seed).eac_keys if args.pki else None
        pki = eac_pki(args.seed, rights=rights, terminal_days=days, keys=keys)
    except PkiDirectoryError as exc:
        print(f"python -m sim eac-pki: error: {exc}", file=sys.stderr)
        return 2
    pki.write_credentials(args.out)
    print(f"wrote CVCA {pki.cvca_chr}, document verifier and terminal certificates and terminal.key to {args.out}")
    return 0
