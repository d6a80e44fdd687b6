"""Finite-field Diffie-Hellman keys for the simulated chip's Chip Authentication (TR-03110 DH variant)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sim.card.der import integer, oid, tlv


@dataclass(frozen=True)
class DhKey:
    """A finite-field Diffie-Hellman private key on a group (p, g, q) with a subgroup of prime order q."""

    p: int
    g: int
    q: int
    x: int = field(repr=False)

    @property
    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8

    @property
    def y(self) -> int:
        return pow(self.g, self.x, self.p)

    def spki(self) -> bytes:
        """X9.42 ``dhpublicnumber`` SubjectPublicKeyInfo: AlgorithmIdentifier(p, g, q), BIT STRING(INTEGER y)."""
        algorithm = tlv(0x30, oid("1.2.840.10046.2.1") + tlv(0x30, integer(self.p) + integer(self.g) + integer(self.q)))
        return tlv(0x30, algorithm + tlv(0x03, b"\x00" + integer(self.y)))

    def public_key(self) -> DhKey:  # the same call as for an EC key; the public half is in the object
        return self


_DH_GROUP: tuple[int, int, int] | None = None


def dh_key() -> DhKey:
    """A fresh key on the simulator's 2048-bit group (generated once per process: DSA-style p, q, g)."""
    global _DH_GROUP
    if _DH_GROUP is None:
        from cryptography.hazmat.primitives.asymmetric import dsa

        numbers = dsa.generate_parameters(2048).parameter_numbers()
        _DH_GROUP = (numbers.p, numbers.g, numbers.q)
    p, g, q = _DH_GROUP
    return DhKey(p, g, q, secrets.randbelow(q - 2) + 2)
