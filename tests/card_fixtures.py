"""Serve a simulated card to the agent over both transports: in-process and through a real pcscd."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from agent.card.keys import AccessKeys, MrzKey
from agent.transport.base import CardTransport
from sim.card import SimulatedCard
from sim.card.vpcd import VpcdPlug
from sim.infra.pcscd import Pcscd


def keys_of(card: SimulatedCard, *, can: bool = True, mrz: bool = True) -> AccessKeys:
    k = card.keys
    mrz_keys = (MrzKey(str(k["document_number"]), str(k["birth"]), str(k["expiry"])),) if mrz else ()
    return AccessKeys(can=str(k["can"]) if can and k.get("can") else None, mrz_keys=mrz_keys)


def wait_for_card(reader: str, present: bool = True, timeout: float = 10.0) -> None:
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        deadline = time.monotonic() + timeout
        state = scard.SCARD_STATE_UNAWARE
        while time.monotonic() < deadline:
            hresult, states = scard.SCardGetStatusChange(context, 200, [(reader, state)])
            if hresult == scard.SCARD_S_SUCCESS:
                event = states[0][1]
                state = event & ~scard.SCARD_STATE_CHANGED
                if bool(event & scard.SCARD_STATE_PRESENT) == present:
                    return
        raise AssertionError(f"card {'never arrived' if present else 'never left'} in {reader}")
    finally:
        scard.SCardReleaseContext(context)


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
