"""Terminal Authentication version 1 (BSI TR-03110-1, as ICAO eMRTDs use it after Chip Authentication).

The terminal proves its authority to the chip: it sends its certificate chain from
the CVCA the chip trusts down to its own inspection-system certificate (for each:
MSE:Set DST naming the issuer, ``00 22 81 B6 83 <CAR>``, then PSO:Verify
Certificate ``00 2A 00 BE`` with the body and signature), selects its key (MSE:Set
AT ``00 22 81 A4 83 <CHR>``), asks for a challenge (GET CHALLENGE) and signs
``ID_PICC || r_PICC || Comp(PK_IFD)`` (EXTERNAL AUTHENTICATE): ID_PICC is the
compressed PACE ephemeral key of the chip after PACE, the document number with its
check digit after BAC; PK_IFD is the terminal's ephemeral Chip Authentication key.
The chip then grants the rights of the chain's CHATs, e.g. DG3.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.card import tlv
from agent.card.apdu import CommandApdu, ResponseApdu, check
from agent.card.cvc import CvcError, TerminalCredentials, sign_ta
from agent.card.errors import CardError

log = logging.getLogger(__name__)

Send = Callable[[CommandApdu], ResponseApdu]


class TerminalAuthError(CardError):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"Terminal Authentication {step}: {detail}")
        self.step = step
        self.detail = detail


def terminal_authentication(send: Send, credentials: TerminalCredentials, id_picc: bytes, comp_pk_ifd: bytes) -> None:
    """Run TA v1 over ``send`` (the session after Chip Authentication); :class:`TerminalAuthError` on refusal."""
    for cert in credentials.to_send:
        step = f"certificate {cert.chr}"
        try:
            check(send(CommandApdu(0x00, 0x22, 0x81, 0xB6, tlv.encode(0x83, cert.car.encode()))), "MSE:Set DST")
            check(send(CommandApdu(0x00, 0x2A, 0x00, 0xBE, cert.body + tlv.encode(0x5F37, cert.signature))),
                  "PSO:Verify Certificate")  # fmt: skip
        except CardError as exc:
            raise TerminalAuthError(step, f"the chip did not accept it: {exc}") from exc
    terminal = credentials.terminal
    try:
        check(send(CommandApdu(0x00, 0x22, 0x81, 0xA4, tlv.encode(0x83, terminal.chr.encode()))), "MSE:Set AT")
        challenge = check(send(CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)), "GET CHALLENGE")
    except CardError as exc:
        raise TerminalAuthError("challenge", str(exc)) from exc
    if len(challenge) != 8:
        raise TerminalAuthError("challenge", f"expected an 8-byte challenge, got {len(challenge)} bytes")
    try:
        signature = sign_ta(credentials.key, terminal.public_key.oid, id_picc + challenge + comp_pk_ifd)
    except CvcError as exc:
        raise TerminalAuthError("signature", str(exc)) from exc
    try:
        check(send(CommandApdu(0x00, 0x82, 0x00, 0x00, signature)), "EXTERNAL AUTHENTICATE")
    except CardError as exc:
        raise TerminalAuthError("signature", f"the chip rejected the terminal's signature: {exc}") from exc
