"""The control channel of a simulated fingerprint module: one text command a line, one JSON answer a line.

Commands::

    place IDENTITY      a finger of IDENTITY on the sensor (see :func:`resolve_identity`)
    lift                take it off (``remove`` is the same)
    status              what is on the sensor, templates in the library, commands served
    quit                stop the simulated module

The same commands arrive on stdin (interactive use; end of input is not an end of
the module), on a Unix stream socket (:mod:`sim.infra.control`) (``--control PATH``: connect, write a line, read
the answer line) or on a FIFO (``--fifo PATH``; answers go to stdout).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from sim.finger.module import SimModule

log = logging.getLogger(__name__)

#: a finger identity as the simulated card's DG3 derives it: the holder's ID number and the finger position
#: (ISO/IEC 19794-4: 1 right thumb, 2 right index, ..., 6 left thumb, ..., 10 left little)
IDENTITY_EXAMPLE = "001090012345:2"
_PERSON = re.compile(r"^person:(\d+)(?::(\d+))?$")


def resolve_identity(text: str) -> str:
    """``person:SEED[:POS]`` -> the identity of that simulated person's finger (the person of ``sim card --seed``);
    anything else is taken literally (``ID_NUMBER:POS`` matches that card's DG3 reference)."""
    match = _PERSON.match(text)
    if match is None:
        return text
    from sim.card.eac import finger_identity
    from sim.population import make_person

    return finger_identity(make_person(int(match.group(1))).id_number, int(match.group(2) or 2))


class Controller:
    """Applies commands to a module; thread safe (stdin, socket and FIFO threads share it)."""

    def __init__(self, module: SimModule) -> None:
        self.module = module
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def command(self, line: str) -> dict[str, Any]:
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        with self._lock:
            if word == "place":
                if not rest:
                    return {"ok": False, "error": f"place needs an identity, e.g. place {IDENTITY_EXAMPLE}"}
                self.module.place(resolve_identity(rest))
            elif word in ("lift", "remove"):
                self.module.remove()
            elif word == "status":
                pass
            elif word == "quit":
                self.stop.set()
            else:
                return {"ok": False, "error": f"unknown command {word!r} (place ID, lift, status, quit)"}
            return {"ok": True, "finger": self.module.finger, "templates": len(self.module.library),
                    "commands": self.module.commands}  # fmt: skip
