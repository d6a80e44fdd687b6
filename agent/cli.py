"""``gate-agent``: one console script, one subcommand per job.

Subcommands live in ``agent/commands/<name>.py``; each module defines
``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``.  Only the
chosen subcommand's module is imported, so ``gate-agent read`` does not pay for
the MQTT stack and ``gate-agent --help`` starts instantly.

Exit status: 0 success, 1 a check or verification failed, 2 usage or
configuration error, 3 a device or transport error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from agent import __version__
from agent.errors import GateAgentError
from agent.logs import setup_logging


def _discover(package: str) -> dict[str, str]:
    """Every module in ``package`` is a subcommand; ``queue_tool.py`` is ``queue-tool``."""
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    return {name.replace("_", "-"): name for name in names}


#: subcommand name -> module under agent.commands
COMMANDS: dict[str, str] = _discover("agent.commands")

log = logging.getLogger(__name__)


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"agent.commands.{COMMANDS[name]}")


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gate-agent",
        description="Clinic gate check-in agent (chip ID card, fingerprint, durable queue, MQTT uplink).",
    )
    parser.add_argument("--version", action="version", version=f"gate-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: wire level)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if name == selected:
            module = _load(name)
            sp = sub.add_parser(name, help=module.HELP, description=module.HELP)
            # -v after the subcommand too (its own dest: a subparser's default would reset the main one)
            sp.add_argument("-v", "--verbose", dest="sub_verbose", action="count", default=0,
                            help="more log output (-vv: wire level)")  # fmt: skip
            module.configure(sp)
            sp.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=_load(name).HELP if selected is None else None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(selected if selected in COMMANDS else None)
    args = parser.parse_args(args_list)
    setup_logging(args.verbose + getattr(args, "sub_verbose", 0))
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args))
    except GateAgentError as exc:
        log.debug("command failed", exc_info=True)
        if getattr(args, "json", False):  # a script reading --json gets an object on failure too
            print(json.dumps({"ok": False, "error": str(exc), "kind": type(exc).__name__, "exit_code": exc.exit_code}))
        print(f"gate-agent {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"gate-agent {args.command}: interrupted", file=sys.stderr)
        return 130
