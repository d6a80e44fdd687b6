"""``gate-agent attendant``: enter a patient's ID number at the desk (keys for the chip, or no card)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agent.app.attendant import send
from agent.config import DEFAULT_PATH, load_config

HELP = "enter an ID number and date of birth for the patient at the gate (or --no-card)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--id-number", required=True, help="12-digit personal ID number")
    parser.add_argument("--birth", help="date of birth DDMMYYYY (opens the chip)")
    parser.add_argument("--issued", help="card issue date DDMMYYYY, when printed on the card")
    parser.add_argument("--no-card", action="store_true", help="no chip card (children under 6): lower assurance")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    request: dict[str, Any] = {"id_number": args.id_number}
    if args.no_card:
        request["no_card"] = True
    else:
        request["birth"] = args.birth
        if args.issued:
            request["issued"] = args.issued
    answer = send(cfg.state_dir / "attendant.sock", request)
    if args.json:
        print(json.dumps(answer))
    else:
        print("sent to the gate" if answer.get("ok") else f"refused: {answer.get('error')}")
    return 0 if answer.get("ok") else 1
