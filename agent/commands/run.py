"""``gate-agent run``: the check-in daemon (what the systemd unit starts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.config import DEFAULT_PATH

HELP = "run the check-in daemon"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")


def run(args: argparse.Namespace) -> int:
    from agent.daemon import Daemon

    daemon = Daemon(args.config)
    daemon.install_signals()
    return daemon.run()
