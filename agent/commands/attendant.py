"""``gate-agent attendant``: enter a patient's ID number at the desk (keys for the chip, or no card).

It waits for the gate's decision and prints it (``--no-wait``: only that the gate took the input).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.app.attendant import send
from agent.config import DEFAULT_PATH, load_config

HELP = "enter an ID number and date of birth for the patient at the gate (or --no-card); prints the outcome"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    parser.add_argument("--id-number", required=True, help="12-digit personal ID number")
    parser.add_argument("--birth", help="date of birth DDMMYYYY (opens the chip)")
    parser.add_argument("--issued", help="card issue date DDMMYYYY, when printed on the card")
    parser.add_argument("--no-card", action="store_true", help="no chip card (children under 6): lower assurance")
    parser.add_argument("--no-wait", action="store_true", help="return when the gate took the input")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the outcome (default 120)")
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
    wait = not args.no_wait
    if wait:
        request["wait"] = True
        if not args.json:
            print("sent to the gate; waiting for the outcome (place the card on the reader) ...", file=sys.stderr)
    answer = send(cfg.state_dir / "attendant.sock", request, timeout=args.timeout if wait else 5.0)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
    elif not answer.get("ok"):
        if answer.get("prompt"):
            print(f"no outcome: {answer.get('message_en')} / {answer.get('message_vi')}")
        else:
            print(f"refused: {answer.get('error')}")
    elif "outcome" in answer:
        provisional = " (provisional)" if answer.get("provisional") else ""
        print(f"{answer['outcome']}{provisional}: {answer.get('message_en')} / {answer.get('message_vi')}")
        print(f"reason {answer.get('reason')}, event {answer.get('event_id') or 'not stored'}")
    else:
        print("sent to the gate")
    return 0 if answer.get("ok") else 1
