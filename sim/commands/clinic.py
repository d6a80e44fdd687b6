"""``python -m sim clinic``: a whole clinic — hub, broker, T real gate daemons and N patients."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "run a whole clinic: hub, broker, T gates (real gate-agent daemons) and N patients"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--terminals", type=int, default=2)
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--broker", help="mqtt://host:port (default: a private mosquitto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--province", help="draw patients from this province's figures (default: national)")
    parser.add_argument("--faults", help="broker-down=SECONDS@K, power-cut@K, card-pull=P (comma separated); "
                        "the summary counts the faults that happened and lists them with time and gate")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="writes outcomes.jsonl and summary.json here")
    parser.add_argument("--real-times", action="store_true",
                        help="model device times (424 kbit/s chip link, fingerprint UART and processing)")  # fmt: skip
    parser.add_argument("--attacks", action="store_true",
                        help="the adversarial corpus: copied and hostile chips, borrowed cards, withheld fingers, "
                        "with genuine patients as a control group; exit 1 if any attack is admitted")  # fmt: skip
    parser.add_argument("--sensor", choices=["module", "usb"], default="module",
                        help="module: a ZhianTec module on a pty, matched on the module; usb: libfprint's virtual "
                        "image sensor, matched on the host")  # fmt: skip
    parser.add_argument("--slow-uart", action="store_true", help="module: stay at 57,600 baud and 128-byte packets")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from sim.clinic.run import Clinic, parse_clinic_faults, render

    try:
        faults = parse_clinic_faults(args.faults)
    except ValueError as exc:
        print(f"python -m sim clinic: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    clinic = Clinic(args.terminals, args.patients, args.out, seed=args.seed, province=args.province,
                    broker=args.broker, faults=faults, real_times=args.real_times, attacks=args.attacks,
                    sensor=args.sensor, fast_uart=not args.slow_uart)  # fmt: skip
    summary, codes = clinic.run_once()
    summary["daemon_exit_codes"] = codes
    print(json.dumps(summary, ensure_ascii=False) if args.json else render(summary))
    return exit_status(summary, codes)


def exit_status(summary: dict[str, Any], codes: dict[str, int]) -> int:
    """0 when every outcome was the expected one, reached the hub, no attack got in and every daemon stopped cleanly."""
    ok = not summary["unexpected"] and not summary["shown_missing_at_hub"] and all(c == 0 for c in codes.values())
    ok = ok and not summary.get("attacks_admitted")
    return 0 if ok else 1
