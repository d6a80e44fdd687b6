"""``python -m sim reader``: a private pcscd with two virtual (vpcd) readers, for developers.

Prints the environment a PC/SC client (``gate-agent read``, ``gate-agent run``,
pyscard) needs to use this daemon and the vpcd ports ``python -m sim card``
plugs a card into, then stays in the foreground until SIGINT/SIGTERM and stops
its pcscd (by its PID).  ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from sim.commands.card import PORT_FLAG
from sim.infra.control import stop_on_signals

HELP = "start a private pcscd with two virtual card readers and print how to use it"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, help="directory for the daemon's socket, config and log "
                        "(default: a new temporary directory)")  # fmt: skip
    parser.add_argument("--port", type=int, help="first vpcd port (the second reader is PORT+1; default: free ports)")
    parser.add_argument("--name", default="Gate Sim Reader", help="reader name (pcscd appends ' 00 00', ' 00 01')")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of shell lines")
    parser.add_argument("--env-file", type=Path, help="also write the shell lines here once the readers are up "
                        "(for `. FILE` in other shells); removed on exit")  # fmt: skip


def describe(daemon: Any) -> dict[str, Any]:
    """What a client needs: environment, reader names, vpcd ports, the daemon's PID."""
    return {
        "event": "ready",
        "env": dict(daemon.env),
        "readers": list(daemon.reader_names),
        "vpcd_ports": list(daemon.vpcd_ports),
        "pid": daemon.pid,
        "private": daemon.private,
        "log": str(daemon.workdir / "pcscd.log") if daemon.workdir else None,
        "card_port_flag": PORT_FLAG,
    }


def render(info: dict[str, Any]) -> str:
    lines = [f"export {name}={shlex.quote(value)}" for name, value in info["env"].items()]
    for i, (reader, port) in enumerate(zip(info["readers"], info["vpcd_ports"], strict=True)):
        lines.append(f"export GATE_SIM_READER{i}={shlex.quote(reader)}")
        lines.append(f"export GATE_SIM_VPCD_PORT{i}={port}")
    lines.append(f"# plug a card:   python -m sim card {PORT_FLAG} {info['vpcd_ports'][0]}")
    lines.append(f"# read it:       gate-agent read --reader {shlex.quote(info['readers'][0])} ...")
    lines.append("# stop with Ctrl-C (or SIGTERM)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from sim.infra.pcscd import PcscdError, start_pcscd

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gate-sim-reader-"))
    stop = threading.Event()

    stop_on_signals(stop)
    try:
        daemon = start_pcscd(workdir, reader_name=args.name, port=args.port)
    except (PcscdError, TimeoutError) as exc:
        print(f"python -m sim reader: error: {exc}", file=sys.stderr)
        return 3
    try:
        info = describe(daemon)
        print(json.dumps(info) if args.json else render(info), flush=True)
        if args.env_file:
            tmp = args.env_file.with_name(args.env_file.name + ".tmp")
            tmp.write_text(render(info) + "\n")
            tmp.replace(args.env_file)
        while not stop.wait(0.5):
            if daemon.process is not None and not daemon.alive():
                print(f"python -m sim reader: error: pcscd exited (see {info['log']})", file=sys.stderr)
                return 1
    finally:
        daemon.stop()
        if args.env_file:
            args.env_file.unlink(missing_ok=True)
    return 0
