"""``python -m sim scanner``: an MRZ or QR scanner on a pseudo-terminal.

Commands, one a line, one JSON answer line each: ``SEED`` (or ``scan SEED``) sends the
scan of the card of the simulated person of that seed (the person of ``python -m sim
card --seed SEED``) on the pty, as the real scanner would when the card is held to
it; ``text LINE`` sends LINE as it is (a typed ID number, a damaged code); ``vneid SEED
[VARIANT]`` sends the VNeID app QR of that person (variants: valid, expired, revoked,
wrong-level, forged; tokens of the simulated national identity service, sim/hub/vneid.py,
which ``python -m sim hub`` verifies); ``quit``.
They arrive on stdin (end of input does not stop the scanner), a Unix socket
(``--control PATH``) or a FIFO (``--fifo PATH``: ``echo 12 > PATH``).
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

HELP = "an MRZ or QR scanner on a pty (commands: a person seed per line; stdin, --control or --fifo)"


class ScannerControl:
    def __init__(self, scanner: Any, kind: str, profile: str) -> None:
        self.scanner = scanner
        self.kind = kind
        self.profile = profile
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def command(self, line: str) -> dict[str, Any]:
        from sim.population import make_person
        from sim.scanner import scan_text

        word, _, rest = line.strip().partition(" ")
        if word == "quit":
            self.stop.set()
            return {"event": "ok", "ok": True}
        if word == "text" and rest:
            with self._lock:
                self.scanner.emit(rest)
            return {"event": "scanned", "ok": True, "text": True}
        if word == "vneid":
            from sim.hub.vneid import VARIANTS, token_for_seed

            parts = rest.split()
            variant = parts[1] if len(parts) > 1 else "valid"
            if not parts or not parts[0].isdigit() or variant not in VARIANTS:
                return {"event": "error", "ok": False,
                        "error": f"usage: vneid SEED [{'|'.join(VARIANTS)}]"}  # fmt: skip
            with self._lock:
                self.scanner.emit(token_for_seed(int(parts[0]), variant))
            return {"event": "scanned", "ok": True, "seed": int(parts[0]), "vneid": variant}
        seed_text = rest.strip() if word == "scan" else word
        try:
            seed = int(seed_text)
        except ValueError:
            return {"event": "error", "ok": False, "error": f"not a seed: {line.strip()!r} (SEED, text LINE, quit)"}
        with self._lock:
            self.scanner.emit(scan_text(make_person(seed), self.kind, self.profile))
        return {"event": "scanned", "ok": True, "seed": seed}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=["mrz", "qr"], required=True)
    parser.add_argument("--pty-link", type=Path, required=True, help="symlink to create for the pty")
    parser.add_argument("--profile", choices=["cccd", "passport"], default="cccd")
    parser.add_argument("--control", type=Path, help="Unix socket to take commands on")
    parser.add_argument("--fifo", type=Path, help="FIFO to take commands on (created if missing; answers on stdout)")


def run(args: argparse.Namespace) -> int:
    from sim.infra.control import serve_until_stopped, stop_on_signals
    from sim.scanner import PtyScanner

    scanner = PtyScanner(args.pty_link)
    control = ScannerControl(scanner, args.kind, args.profile)
    stop_on_signals(control.stop)
    try:
        ready = {"event": "ready", "pty": str(args.pty_link)}
        return serve_until_stopped(control, "python -m sim scanner", args.control, args.fifo, ready)
    finally:
        scanner.close()
