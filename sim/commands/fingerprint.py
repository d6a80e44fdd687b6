"""``python -m sim fingerprint``: a fingerprint module on a pty.

The model (capacity, packet and template size, baud, address, password) comes from
``firmware_profiles/<profile>.toml``.  Commands, one a line, one JSON answer line
each: ``place IDENTITY``, ``lift``, ``status``, ``quit`` — on stdin, on a Unix socket
(``--control PATH``) and/or a FIFO (``--fifo PATH``).  End of stdin does not stop the
module (it can run in the background or under a service manager); SIGTERM, SIGINT or
``quit`` do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "a simulated fingerprint module (R307, R503, AS608, ZFM-20) on a pty"

EPILOG = """\
finger identities: ID_NUMBER:POSITION is the finger whose reference the simulated card of that
ID number holds in DG3 (position 2 = right index, the one the card stores), e.g. 001090012345:2;
person:SEED is the right index finger of the person of `python -m sim card --seed SEED`; any other
text is a finger matching nothing on a card.

example (a finger that matches the card of `python -m sim card --seed 12`):
  python -m sim fingerprint --pty-link /tmp/finger --fifo /tmp/finger.in --finger person:12 </dev/null &
  gate-agent finger probe --port /tmp/finger
  echo lift > /tmp/finger.in                   # the finger leaves the sensor
  echo "place person:12" > /tmp/finger.in      # and comes back
with --control PATH, a program connects to the Unix socket, writes `place ID` and reads one JSON line.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--pty-link", type=Path, required=True)
    parser.add_argument("--profile", default="r307", help="firmware_profiles/<name>.toml (r307, r503, as608, zfm20)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--finger", help="identity of the finger on the sensor at start (see below)")
    group.add_argument("--no-finger", action="store_true")
    parser.add_argument("--control", type=Path, help="Unix socket to take commands on")
    parser.add_argument("--fifo", type=Path, help="FIFO to take commands on (created if missing; answers on stdout)")
    parser.add_argument("--enrolled", type=int, default=0, help="synthetic templates in the library at start")
    parser.add_argument("--password", type=int, help="module password (default: the profile's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--faults", help="garbage=P, power-up, checksum=P, drop=P, hang=N")
    parser.add_argument("--speed", type=float, default=1.0, help="scale of the modelled delays (0: none)")


def run(args: argparse.Namespace) -> int:
    from agent.errors import ConfigError
    from sim.finger.control import Controller, resolve_identity
    from sim.finger.module import PtyModule, SimModule, load_profile, parse_sim_faults
    from sim.infra.control import serve_until_stopped, stop_on_signals

    try:
        faults = parse_sim_faults(args.faults)
        profile = load_profile(args.profile)
    except (ValueError, ConfigError) as exc:
        print(f"python -m sim fingerprint: error: {exc}", file=sys.stderr)
        return 2
    faults.seed = faults.seed or args.seed
    finger = resolve_identity(args.finger) if args.finger else None
    module = SimModule(profile, faults, password=args.password, speed=args.speed, finger=finger)
    module.enroll_synthetic(args.enrolled)
    controller = Controller(module)
    stop_on_signals(controller.stop)
    served = PtyModule(module, args.pty_link).start()
    try:
        ready = {"event": "ready", "pty": str(args.pty_link), "profile": args.profile, "finger": module.finger,
                 "control": str(args.control) if args.control else None,
                 "fifo": str(args.fifo) if args.fifo else None}  # fmt: skip
        return serve_until_stopped(controller, "python -m sim fingerprint", args.control, args.fifo, ready)
    finally:
        served.stop()
