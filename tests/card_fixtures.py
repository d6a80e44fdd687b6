"""Serve a simulated card to the agent over both transports: in-process and through a real pcscd."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from agent.card.keys import AccessKeys, MrzKey
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
