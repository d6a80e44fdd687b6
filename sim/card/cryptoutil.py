"""The card's own symmetric crypto for ICAO 9303-11 (written for the simulator, not shared with the agent).

Keeping the card's implementation apart from the reader's means a misreading of
the standard on one side shows up as a failure against the other, and both are
checked against the published worked examples.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def iso_pad(data: bytes, block: int) -> bytes:
    n = block - (len(data) + 1) % block
    return data + b"\x80" + b"\x00" * (n % block)


def iso_unpad(data: bytes) -> bytes | None:
    i = len(data) - 1
    while i >= 0 and data[i] == 0:
        i -= 1
    if i < 0 or data[i] != 0x80:
        return None
    return data[:i]


def derive(secret: bytes, counter: int, cipher: str) -> bytes:
    material = secret + bytes((0, 0, 0, counter))
    if cipher == "3DES":
        raw = hashlib.sha1(material).digest()[:16]  # noqa: S324 - ICAO 9303-11 9.7.1
        return bytes(_odd(b) for b in raw)
    if cipher == "AES-128":
        return hashlib.sha1(material).digest()[:16]  # noqa: S324 - ICAO 9303-11 9.7.1
    size = 24 if cipher == "AES-192" else 32
    return hashlib.sha256(material).digest()[:size]


def _odd(b: int) -> int:
    b &= 0xFE
    return b | (0 if bin(b).count("1") % 2 else 1)


def _tdes(key: bytes) -> TripleDES:
    return TripleDES(key + key[:8] if len(key) == 16 else key)


def cbc(cipher: str, key: bytes, data: bytes, iv: bytes, encrypt: bool) -> bytes:
    algo = _tdes(key) if cipher == "3DES" else algorithms.AES(key)
    ctx = Cipher(algo, modes.CBC(iv))
    op = ctx.encryptor() if encrypt else ctx.decryptor()
    return op.update(data) + op.finalize()


def mac8(cipher: str, key: bytes, padded: bytes) -> bytes:
    """Retail MAC (ISO 9797-1 alg. 3) for 3DES, AES-CMAC truncated to 8 bytes otherwise; input padded."""
    if cipher != "3DES":
        c = cmac.CMAC(algorithms.AES(key))
        c.update(padded)
        return c.finalize()[:8]
    k1, k2 = key[:8], key[8:16]
    state = bytes(8)
    single = Cipher(TripleDES(k1 + k1 + k1), modes.ECB())  # noqa: S305 - block-wise CBC-MAC
    for i in range(0, len(padded), 8):
        block = bytes(a ^ b for a, b in zip(state, padded[i : i + 8], strict=True))
        state = single.encryptor().update(block)
    dec = Cipher(TripleDES(k2 + k2 + k2), modes.ECB()).decryptor().update(state)  # noqa: S305
    return single.encryptor().update(dec)


def aes_block(key: bytes, block: bytes) -> bytes:
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)  # noqa: S305 - SM IV
