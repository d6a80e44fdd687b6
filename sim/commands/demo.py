"""``python -m sim demo``: the main job on the simulator — a gate reads and verifies a simulated CCCD.

Starts a private pcscd with a virtual reader, plugs in a simulated chip ID card,
and runs ``gate-agent read`` on it the way a clinic gate would (keys derived from
the ID number and date of birth, Passive Authentication against the simulated
state PKI), then a tampered card to show a refusal.  Nothing on the machine is
touched: the pcscd runs in its own mount namespace.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HELP = "the main job on the simulator: a gate reads simulated cards, then a small clinic runs"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="which simulated person")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--terminals", type=int, default=2, help="gates of the clinic part")
    parser.add_argument("--patients", type=int, default=16, help="patients of the clinic part (0: skip it)")


def run(args: argparse.Namespace) -> int:
    from agent.transport.pcsc import wait_for_card
    from sim.card import build_card
    from sim.card.eac import eac_pki
    from sim.card.vpcd import VpcdPlug
    from sim.infra.pcscd import start_pcscd

    work = Path(tempfile.mkdtemp(prefix="gate-demo-"))
    daemon = start_pcscd(work / "pcscd")
    status = 0
    try:
        os.environ.update(daemon.env)  # libpcsclite reads the socket path once, at first use
        env = dict(os.environ)
        terminal = eac_pki(0).write_credentials(work / "terminal")
        cards = (
            ("genuine card, with Terminal Authentication and its fingerprint reference (DG3)", None),
            ("tampered card (data changed after signing)", "altered-dg"),
            ("cloned chip (a genuine card's files copied onto another chip)", "clone"),
        )
        for title, variant in cards:
            card = build_card("cccd", args.seed, variant=variant)
            trust = work / "trust"
            card.write_trust(str(trust))
            p = card.person
            print(f"\n=== {title}: {p.full_name}, ID {p.id_number[:3]}******{p.id_number[-3:]} ===", flush=True)
            plug = VpcdPlug(card, daemon.vpcd_ports[0]).start()
            try:
                plug.wait_connected(10)
                cmd = [
                    sys.executable, "-m", "agent", "read", "--reader", daemon.reader_names[0],
                    "--id-number", p.id_number, "--birth", p.birth.strftime("%d%m%Y"),
                    "--files", "com,dg1,dg2,dg3,dg13,dg14,dg15", "--trust", str(trust), "--wait", "10",
                    "--terminal", str(terminal),
                ]  # fmt: skip
                res = subprocess.run(cmd, env=env, timeout=120, check=False)
                expected = 0 if variant is None else 1
                if res.returncode != expected:
                    status = 1
                    print(f"demo: unexpected exit status {res.returncode} (expected {expected})", file=sys.stderr)
            finally:
                plug.stop()
                wait_for_card(daemon.reader_names[0], 10, present=False)
    finally:
        daemon.stop()
    try:
        if args.patients and status == 0:
            status = _clinic(args, work)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    print("\ndemo: " + ("ok" if status == 0 else "FAILED"))
    return status


def _clinic(args: argparse.Namespace, work: Path) -> int:
    from sim.clinic.run import Clinic, render

    print(f"\n=== a clinic: {args.terminals} gates (gate-agent daemons), {args.patients} patients ===", flush=True)
    out = work / "clinic"
    clinic = Clinic(args.terminals, args.patients, out, seed=args.seed)
    summary, codes = clinic.run_once()
    print(render(summary))
    if args.keep:
        print(f"outcomes: {out / 'outcomes.jsonl'}, summary: {out / 'summary.json'}")
    ok = not summary["unexpected"] and not summary["shown_missing_at_hub"] and all(c == 0 for c in codes.values())
    return 0 if ok else 1
