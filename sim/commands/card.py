"""``python -m sim card``: plug a simulated chip ID card or passport into a running pcscd (vpcd).

Prints one JSON line when the card is in the reader: the person's data and the
access keys a gate needs, then serves until stopped (SIGTERM / Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

VARIANTS = ["altered-dg", "bad-signature", "unknown-csca", "expired-signer", "revoked-signer"]
HELP = "plug a simulated chip card into pcscd through the vpcd driver"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=["cccd", "passport"], default="cccd")
    parser.add_argument("--seed", type=int, default=0, help="which simulated person (reproducible)")
    parser.add_argument("--vpcd-port", type=int, default=35963, help="vpcd port of the reader (default 35963)")
    parser.add_argument("--variant", choices=VARIANTS, help="a tampered or cloned card (see sim.card.VARIANT_EXPECT)")
    parser.add_argument("--faults", help="e.g. remove@7, rf-error@9, random-rf=0.05,seed=1, pace-refused")
    parser.add_argument("--no-pace", action="store_true", help="a chip without PACE (BAC only)")
    parser.add_argument("--no-extended-length", action="store_true", help="a chip that refuses extended length")
    parser.add_argument("--dg2-size", type=int, default=20_000, help="face image size in bytes")
    parser.add_argument("--aa", choices=["ecdsa", "rsa"], default="ecdsa", help="Active Authentication key type")
    parser.add_argument("--ca", choices=["ECDH", "DH"], default="ECDH", help="Chip Authentication key type")
    parser.add_argument("--trust-out", type=Path, help="write the CSCA, CRL and master list here")
    parser.add_argument("--reinsert-delay", type=float, default=1.0, help="seconds before a pulled card returns")


def run(args: argparse.Namespace) -> int:
    from sim.card import build_card
    from sim.card.faults import FaultSpecError
    from sim.card.vpcd import VpcdPlug

    try:
        card = build_card(
            args.profile, args.seed, variant=args.variant, faults=args.faults, pace=not args.no_pace,
            extended_length=not args.no_extended_length, dg2_size=args.dg2_size, aa_algorithm=args.aa,
            ca_kind=args.ca,
        )  # fmt: skip
    except (FaultSpecError, ValueError) as exc:
        print(f"python -m sim card: error: {exc}", file=sys.stderr)
        return 2
    if args.trust_out:
        card.write_trust(str(args.trust_out))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    plug = VpcdPlug(card, args.vpcd_port, reinsert_delay=args.reinsert_delay).start()
    try:
        if not plug.wait_connected(30):
            print(f"python -m sim card: error: nothing listens on vpcd port {args.vpcd_port} (is pcscd running?)",
                  file=sys.stderr)  # fmt: skip
            return 3
        ready = {
            "event": "ready",
            "profile": args.profile,
            "port": args.vpcd_port,
            "atr": card.atr.hex().upper(),
            "keys": card.keys,
            "person": card.person.to_json(),
            "trust": str(args.trust_out) if args.trust_out else None,
        }
        print(json.dumps(ready, ensure_ascii=False), flush=True)
        stop.wait()
    finally:
        plug.stop()
    return 0
