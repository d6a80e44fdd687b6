"""Serve a simulated card to the agent over both transports: in-process and through a real pcscd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from agent.card.keys import AccessKeys, MrzKey
from agent.card.trust import TrustStore
from agent.transport import pcsc
from agent.transport.base import CardTransport
from sim.card import SimulatedCard
from sim.card.vpcd import VpcdPlug
from sim.infra.pcscd import Pcscd


def keys_of(card: SimulatedCard, *, can: bool = True, mrz: bool = True) -> AccessKeys:
    k = card.keys
    mrz_keys = (MrzKey(str(k["document_number"]), str(k["birth"]), str(k["expiry"])),) if mrz else ()
    return AccessKeys(can=str(k["can"]) if can and k.get("can") else None, mrz_keys=mrz_keys)


def wait_for_card(reader: str, present: bool = True, timeout: float = 10.0) -> None:
    pcsc.wait_for_card(reader, timeout, present)


@contextmanager
def pcscd_card(pcscd: Pcscd, card: SimulatedCard, reinsert_delay: float | None = None) -> Iterator[VpcdPlug]:
    plug = VpcdPlug(card, pcscd.vpcd_ports[0], reinsert_delay=reinsert_delay).start()
    try:
        assert plug.wait_connected(10), "pcscd's vpcd port never accepted the card"
        wait_for_card(pcscd.reader_names[0])
        yield plug
    finally:
        plug.stop()
        wait_for_card(pcscd.reader_names[0], present=False)


Opener = Callable[[SimulatedCard], CardTransport]

#: puts a card on a reader and yields the agent's transport to it (the ``serve`` fixture in conftest)
Serve = Callable[[SimulatedCard], AbstractContextManager[CardTransport]]


def trust_of(card: SimulatedCard, tmp_path: Path) -> TrustStore:
    """The card issuer's trust anchors, written under ``tmp_path/trust`` and loaded as the gate loads them."""
    card.write_trust(str(tmp_path / "trust"))
    return TrustStore.from_directory(tmp_path / "trust")


def id_keys(card: SimulatedCard) -> list[str]:
    """``gate-agent read`` options for the card holder's ID number, birth and issue dates (the CCCD's PACE key)."""
    p = card.person
    return ["--id-number", p.id_number, "--birth", p.birth.strftime("%d%m%Y"), "--issued", p.issued.strftime("%d%m%Y")]


def read_cli(pcscd: Pcscd, *args: str) -> tuple[int, dict[str, Any], str]:
    """``gate-agent read --json`` on the private pcscd's reader: exit code, the one JSON document it printed, stderr."""
    res = subprocess.run([sys.executable, "-m", "agent", "read", "--reader", pcscd.reader_names[0][:8], *args,
                          "--json"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **pcscd.env})  # fmt: skip
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, (res.stdout, res.stderr)
    return res.returncode, json.loads(lines[0]), res.stderr
