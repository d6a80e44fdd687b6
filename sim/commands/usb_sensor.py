"""``python -m sim usb-sensor``: a USB fingerprint sensor for a gate whose ``[finger] url`` is libfprint's
``fprint://virtual_image?socket=PATH``.

The agent's libfprint listens on PATH; this connects there (waiting until it
listens, and again after the agent restarts) and plays the sensor.  Commands, one a
line, one JSON answer line each: ``place IDENTITY`` (the next impression of that
finger goes to the sensor), ``retry [CODE]`` and ``error [CODE]`` (libfprint's retry
and error reports), ``status``, ``quit`` — on stdin, a Unix socket (``--control
PATH``) and/or a FIFO (``--fifo PATH``).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

HELP = "a simulated USB fingerprint sensor on libfprint's virtual_image socket"

EPILOG = """\
finger identities as for `python -m sim fingerprint`: ID_NUMBER:POSITION (the finger whose impression the
simulated card of that ID number holds in DG3), person:SEED, or any other text (a finger matching no card).

example (a gate with [finger] url = "fprint://virtual_image?socket=/tmp/gate/fprint.sock"):
  python -m sim usb-sensor --socket /tmp/gate/fprint.sock --fifo /tmp/usb.in </dev/null &
  echo "place person:12" > /tmp/usb.in
"""


class UsbController:
    """Applies commands to the simulated sensor; thread safe."""

    def __init__(self, sensor: Any) -> None:
        self.sensor = sensor
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.placed: str | None = None

    def command(self, line: str) -> dict[str, Any]:
        from sim.finger.control import IDENTITY_EXAMPLE, resolve_identity
        from sim.finger.usb import ERROR, RETRY

        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        with self._lock:
            try:
                if word == "place":
                    if not rest:
                        return {"ok": False, "error": f"place needs an identity, e.g. place {IDENTITY_EXAMPLE}"}
                    self.placed = resolve_identity(rest)
                    self.sensor.present_finger(self.placed)
                elif word in ("retry", "error"):
                    self.sensor.command(RETRY if word == "retry" else ERROR, int(rest or 0))
                elif word == "quit":
                    self.stop.set()
                elif word != "status":
                    return {"ok": False, "error": f"unknown command {word!r} (place, retry, error, status, quit)"}
            except (OSError, TimeoutError, ValueError) as exc:
                return {"ok": False, "error": str(exc)}
            return {"ok": True, "finger": self.placed, "images_sent": self.sensor.captures}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--socket", type=Path, required=True, help="the socket libfprint listens on")
    parser.add_argument("--control", type=Path, help="Unix socket to take commands on")
    parser.add_argument("--fifo", type=Path, help="FIFO to take commands on (created if missing; answers on stdout)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for libfprint to listen")
    parser.add_argument("--speed", type=float, default=1.0, help="scale of the modelled read-out time (0: none)")


def run(args: argparse.Namespace) -> int:
    from sim.finger.usb import VirtualImageSensor
    from sim.infra.control import serve_until_stopped, stop_on_signals

    sensor = VirtualImageSensor(args.socket, speed=args.speed)
    try:
        sensor.connect(args.wait)
    except TimeoutError as exc:
        print(f"python -m sim usb-sensor: error: {exc}", file=sys.stderr)
        return 2
    controller = UsbController(sensor)
    stop_on_signals(controller.stop)
    try:
        ready = {"event": "ready", "socket": str(args.socket), "control": str(args.control) if args.control else None,
                 "fifo": str(args.fifo) if args.fifo else None}  # fmt: skip
        return serve_until_stopped(controller, "python -m sim usb-sensor", args.control, args.fifo, ready)
    finally:
        sensor.close()
