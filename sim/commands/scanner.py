"""``python -m sim scanner``: an MRZ or QR scanner on a pseudo-terminal.

Reads simulated person seeds (one per line) on stdin and sends the scan of that
person's card on the pty, as the real scanner would when the card is held to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "an MRZ or QR scanner on a pty (stdin: one person seed per line)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=["mrz", "qr"], required=True)
    parser.add_argument("--pty-link", type=Path, required=True, help="symlink to create for the pty")
    parser.add_argument("--profile", choices=["cccd", "passport"], default="cccd")


def run(args: argparse.Namespace) -> int:
    from sim.population import make_person
    from sim.scanner import PtyScanner, scan_text

    scanner = PtyScanner(args.pty_link)
    print(json.dumps({"event": "ready", "pty": str(args.pty_link)}), flush=True)
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                seed = int(line)
            except ValueError:
                print(json.dumps({"event": "error", "error": f"not a seed: {line!r}"}), flush=True)
                continue
            scanner.emit(scan_text(make_person(seed), args.kind, args.profile))
            print(json.dumps({"event": "scanned", "seed": seed}), flush=True)
    finally:
        scanner.close()
    return 0
