"""``python -m sim card``: plug a simulated chip ID card or passport into a running pcscd (vpcd).

Prints one JSON line when pcscd serves the card: the person's data and the access
keys a gate needs, then serves until stopped (SIGTERM / Ctrl-C).  Exit status 2 for
bad options or a vpcd port that already has a card, 3 when nothing listens there.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from sim.infra.control import stop_on_signals

HELP = "plug a simulated chip card into pcscd through the vpcd driver"
FAULTS_HELP = (
    "comma-separated faults: remove@K pulls the card at the K-th APDU of every session (each insertion "
    "counts from 1; the default), 'remove@K,once' only the first time; rf-error@K[,once], random-rf=P,seed=N, "
    "pace-refused[=ga]"
)


def _variant_names() -> list[str]:
    from sim.card.variants import REGISTRY

    return [*REGISTRY, "help"]


#: the option that takes the vpcd port (``python -m sim reader`` prints it in its instructions)
PORT_FLAG = "--vpcd-port"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=["cccd", "passport"], default="cccd")
    parser.add_argument("--seed", type=int, default=0, help="which simulated person (reproducible)")
    parser.add_argument(PORT_FLAG, type=int, default=35963, help="vpcd port of the reader (default 35963)")
    parser.add_argument("--variant", choices=_variant_names(), metavar="VARIANT",
                        help="a tampered, cloned or hostile card; '--variant help' lists them")  # fmt: skip
    parser.add_argument("--faults", help=FAULTS_HELP)
    parser.add_argument("--no-pace", action="store_true", help="a chip without PACE (BAC only)")
    parser.add_argument("--no-extended-length", action="store_true", help="a chip that refuses extended length")
    parser.add_argument("--dg2-size", type=int, default=20_000, help="face image size in bytes")
    parser.add_argument("--aa", choices=["ecdsa", "rsa"], default="ecdsa", help="Active Authentication key type")
    parser.add_argument("--ca", choices=["ECDH", "DH"], default="ECDH", help="Chip Authentication key type")
    parser.add_argument("--pki-seed", type=int, default=0,
                        help="issuer and EAC PKI seed (the same seed gives the same CSCA, byte for byte)")  # fmt: skip
    parser.add_argument("--pki", type=Path, metavar="DIR",
                        help="keep the issuer and EAC PKI in DIR: made there on first use, reused after; "
                             "DIR/trust holds the gate's anchors")  # fmt: skip
    parser.add_argument("--trust-out", type=Path, help="write the CSCA, CRL and master list here")
    parser.add_argument("--reinsert-delay", type=float, default=1.0, help="seconds before a pulled card returns")


def _error(message: str, status: int = 2) -> int:
    print(f"python -m sim card: error: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    from sim.card import build_card
    from sim.card.faults import FaultSpecError
    from sim.card.pki import PkiDirectoryError
    from sim.card.pkidir import open_pki_directory
    from sim.card.variants import describe
    from sim.card.vpcd import SERVED_TIMEOUT, VpcdPlug

    if args.variant == "help":
        print(describe())
        return 0
    try:
        directory = open_pki_directory(args.pki, args.pki_seed) if args.pki else None
        card = build_card(
            args.profile, args.seed, variant=args.variant, faults=args.faults, pace=not args.no_pace,
            extended_length=not args.no_extended_length, dg2_size=args.dg2_size, aa_algorithm=args.aa,
            ca_kind=args.ca, pki_seed=args.pki_seed, pki=directory.issuer if directory else None,
            eac_trust=directory.eac().trust_point if directory else None, eac_seed=args.pki_seed,
        )  # fmt: skip
    except (FaultSpecError, PkiDirectoryError, ValueError) as exc:
        return _error(str(exc))
    if args.trust_out:
        card.write_trust(str(args.trust_out))
    stop = threading.Event()

    stop_on_signals(stop)
    plug = VpcdPlug(card, args.vpcd_port, reinsert_delay=args.reinsert_delay).start()
    try:
        if not plug.wait_connected(30):
            return _error(f"nothing listens on vpcd port {args.vpcd_port} (is pcscd running?)", 3)
        if not plug.wait_served(SERVED_TIMEOUT):
            return _error(
                f"vpcd port {args.vpcd_port} already has a card: pcscd did not talk to this one within "
                f"{SERVED_TIMEOUT:.0f} s (the vpcd driver serves one card per reader slot)"
            )
        ready = {
            "event": "ready",
            "profile": args.profile,
            "variant": args.variant,
            "port": args.vpcd_port,
            "atr": card.atr.hex().upper(),
            "keys": card.keys,
            "person": card.person.to_json(),
            "trust": str(args.trust_out) if args.trust_out else None,
            "pki": {"directory": str(directory.path), "created": directory.created, "trust": str(directory.trust),
                    "seed": directory.issuer.seed} if directory else {"seed": args.pki_seed},
        }  # fmt: skip
        print(json.dumps(ready, ensure_ascii=False), flush=True)
        stop.wait()
    finally:
        plug.stop()
    return 0
