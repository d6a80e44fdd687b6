"""``gate-agent desk passwd NAME``: add an attendant to the desk page, or change their password."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config
from agent.desk.users import Users
from agent.errors import ConfigError

HELP = "manage the attendants who may log in to the desk page (passwd NAME)"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    pw = sub.add_parser("passwd", help="set an attendant's password (read twice from the terminal, or once from stdin)")
    pw.add_argument("name", help="the attendant's login name")
    pw.add_argument("--users", type=Path, help="the users file (default: [desk] users_file of the config)")
    pw.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")


def run(args: argparse.Namespace) -> int:
    path = args.users
    if path is None:
        cfg = load_config(args.config)
        if not cfg.desk.users_file:
            raise ConfigError("desk.users_file is not set in the config; pass --users FILE")
        path = Path(cfg.desk.users_file)
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ; nothing changed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    Users(path).set_password(args.name, password)
    print(f"{path}: password set for {args.name}")
    return 0
