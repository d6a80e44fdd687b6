"""``gate-agent desk passwd NAME``: add an attendant to the desk page, or change their password."""

from __future__ import annotations

import argparse
import getpass
import os
import pwd
import sys
from pathlib import Path

from agent.config import DEFAULT_PATH, load_config
from agent.desk.users import Users
from agent.errors import ConfigError

HELP = "manage the attendants who may log in to the desk page (passwd NAME)"
SERVICE_USER = "gate-agent"  # the system user of the Debian package's unit


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    pw = sub.add_parser("passwd", help="set an attendant's password (read twice from the terminal, or once from stdin)")
    pw.add_argument("name", help="the attendant's login name")
    pw.add_argument("--users", type=Path, help="the users file (default: [desk] users_file of the config)")
    pw.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    pw.add_argument("--owner", default=SERVICE_USER,
                    help=f"run as root: give the file to this user, who runs the daemon (default {SERVICE_USER}; "
                         "'' keeps root's)")  # fmt: skip


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
    owner = _owner(args.owner)  # before anything is written: a wrong --owner changes nothing
    Users(path).set_password(args.name, password)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    print(f"{path}: password set for {args.name}" + (f" (owned by {owner.pw_name})" if owner else ""))
    return 0


def _owner(user: str) -> pwd.struct_passwd | None:
    """As root, the daemon's user to hand the file (0600) to: a root-owned one is unreadable to the service."""
    if not user or os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(user)
    except KeyError:
        if user == SERVICE_USER:  # the package is not installed here (a developer's machine): nothing to hand over
            return None
        raise ConfigError(f"--owner: no user {user!r} on this system") from None
