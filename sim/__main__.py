"""``python -m sim COMMAND``: run a simulated device, a hub, or a whole clinic.

Subcommands live in ``sim/commands/<name>.py`` with ``HELP``, ``configure(parser)``
and ``run(args) -> int``, the same shape as the agent's CLI.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType


def _discover(package: str) -> dict[str, str]:
    """Every module in ``package`` is a subcommand; ``load_gen.py`` is ``load-gen``."""
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    return {name.replace("_", "-"): name for name in names}


#: subcommand name -> module under sim.commands
COMMANDS: dict[str, str] = _discover("sim.commands")


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"sim.commands.{COMMANDS[name]}")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in args_list if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="python -m sim", description="Hardware and hub simulator.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if name == selected:
            module = _load(name)
            sp = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.configure(sp)
            sp.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=_load(name).HELP if selected not in COMMANDS else None)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
