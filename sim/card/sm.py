"""The card side of secure messaging (ICAO 9303-11 9.8): unwrap protected commands, wrap answers.

Kept apart from the agent's implementation on purpose (see :mod:`sim.card.cryptoutil`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from sim.card import cryptoutil as cu
from sim.card.apdu import SW_OK, Command, sw
from sim.card.der import read_tlvs, tlv


@dataclass
class Session:
    """An open secure messaging session: cipher, keys and send sequence counter."""

    cipher: str
    k_enc: bytes = field(repr=False)
    k_mac: bytes = field(repr=False)
    ssc: int
    via: str  # "BAC" / "PACE" / "CA"

    @property
    def block(self) -> int:
        return 8 if self.cipher == "3DES" else 16

    def ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.block, "big")

    def iv(self) -> bytes:
        return bytes(8) if self.cipher == "3DES" else cu.aes_block(self.k_enc, self.ssc_bytes())


def unwrap(s: Session, cmd: Command, extended_length: bool) -> Command | None:
    """The plain command inside a protected one; None when its MAC, padding or objects are wrong."""
    try:
        objs = read_tlvs(cmd.data)
    except ValueError:
        return None
    found = dict(objs)
    if 0x8E not in found:
        return None
    s.ssc += 1
    header = cu.iso_pad(bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2)), s.block)
    covered = b"".join(tlv(t, v) for t, v in objs if t in (0x85, 0x87, 0x97))
    if not hmac.compare_digest(
        cu.mac8(s.cipher, s.k_mac, cu.iso_pad(s.ssc_bytes() + header + covered, s.block)), found[0x8E]
    ):
        return None
    data = b""
    if 0x87 in found or 0x85 in found:
        payload = found[0x87][1:] if 0x87 in found else found[0x85]
        if 0x87 in found and found[0x87][:1] != b"\x01":
            return None
        if not payload or len(payload) % s.block:
            return None
        plain = cu.iso_unpad(cu.cbc(s.cipher, s.k_enc, payload, s.iv(), False))
        if plain is None:
            return None
        data = plain
    le = None
    if 0x97 in found:
        raw = found[0x97]
        le = int.from_bytes(raw, "big") or (256 if len(raw) == 1 else 65536)
    extended = cmd.extended or (le is not None and le > 256)
    if extended and not extended_length:
        return None
    return Command(cmd.cla & ~0x0C & 0xFF, cmd.ins, cmd.p1, cmd.p2, data, le, extended)


def wrap(s: Session, data: bytes, status: int) -> bytes:
    """The protected answer: DO87 (encrypted data), DO99 (status), DO8E (MAC), then 9000."""
    s.ssc += 1
    do87 = b""
    if data:
        do87 = tlv(0x87, b"\x01" + cu.cbc(s.cipher, s.k_enc, cu.iso_pad(data, s.block), s.iv(), True))
    do99 = tlv(0x99, sw(status))
    mac = cu.mac8(s.cipher, s.k_mac, cu.iso_pad(s.ssc_bytes() + do87 + do99, s.block))
    return do87 + do99 + tlv(0x8E, mac) + SW_OK
