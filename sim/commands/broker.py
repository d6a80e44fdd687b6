"""``python -m sim broker``: a private mosquitto on a loopback port, in the foreground.

Plain MQTT by default; ``--pki DIR`` (of ``python -m sim pki``) runs it with the shipped
facility configuration (docs/deploy/mosquitto/facility.conf: TLS, client certificates,
the ACL).  Prints the broker's URL (``export GATE_SIM_BROKER=...``, or one JSON object
with ``--json``), stops the broker (by its PID) on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

from sim.infra.control import stop_on_signals

HELP = "run a private mosquitto broker on a loopback port (plain, or TLS as the shipped facility config)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--pki", type=Path, help="`python -m sim pki` directory: TLS with client certificates and ACL")
    parser.add_argument("--workdir", type=Path, help="configuration, persistence and log (default: a temporary dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from sim.infra.mosquitto import BrokerError, Mosquitto, facility_conf
    from sim.infra.net import free_port

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gate-sim-broker-"))
    port = args.port or free_port()
    stop = threading.Event()

    stop_on_signals(stop)
    if args.pki is not None:
        broker = Mosquitto(workdir, port, extra_conf=facility_conf(args.pki, port), anonymous=False, tls=True)
    else:
        broker = Mosquitto(workdir, port)
    try:
        broker.start()
    except (BrokerError, TimeoutError) as exc:
        print(f"python -m sim broker: error: {exc}", file=sys.stderr)
        return 3
    try:
        info = {"event": "ready", "url": broker.url, "port": port, "tls": broker.tls, "log": str(workdir)}
        print(json.dumps(info) if args.json else f"export GATE_SIM_BROKER={broker.url}", flush=True)
        while not stop.wait(0.5):
            if broker.process is not None and broker.process.poll() is not None:
                print(f"python -m sim broker: error: mosquitto exited (see {workdir})", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    return 0
