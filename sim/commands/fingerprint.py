"""``python -m sim fingerprint``: a fingerprint module on a pty.

Control on stdin, one command per line: ``place ID`` (a finger of identity ID on the
sensor), ``remove``, ``quit``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "a simulated fingerprint module (R307, R503, AS608, ZFM-20) on a pty"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pty-link", type=Path, required=True)
    parser.add_argument("--profile", default="r307", choices=["r307", "r503", "as608", "zfm20"])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--finger", help="identity of the finger on the sensor at start")
    group.add_argument("--no-finger", action="store_true")
    parser.add_argument("--enrolled", type=int, default=0, help="synthetic templates in the library at start")
    parser.add_argument("--password", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", help="garbage=P, power-up, checksum=P, drop=P, hang=N")
    parser.add_argument("--speed", type=float, default=1.0, help="scale of the modelled delays (0: none)")


def run(args: argparse.Namespace) -> int:
    from sim.finger.module import PROFILES, PtyModule, SimModule, parse_sim_faults

    try:
        faults = parse_sim_faults(args.faults)
    except ValueError as exc:
        print(f"python -m sim fingerprint: error: {exc}", file=sys.stderr)
        return 2
    faults.seed = faults.seed or args.seed
    module = SimModule(PROFILES[args.profile], faults, password=args.password, speed=args.speed, finger=args.finger)
    module.enroll_synthetic(args.enrolled)
    served = PtyModule(module, args.pty_link).start()
    print(json.dumps({"event": "ready", "pty": str(args.pty_link), "profile": args.profile}), flush=True)
    try:
        for line in sys.stdin:
            word, _, rest = line.strip().partition(" ")
            if word == "place" and rest:
                module.place(rest)
            elif word == "remove":
                module.remove()
            elif word == "quit":
                break
            elif word:
                print(json.dumps({"event": "error", "error": f"unknown command {word!r}"}), flush=True)
                continue
            print(json.dumps({"event": "ok", "finger": module.finger}), flush=True)
    finally:
        served.stop()
    return 0
