"""The symmetric primitives of ICAO 9303-11 built on ``cryptography`` (no cipher of our own).

* KDF (9.7.1): ``H(K || c)`` with c = 1 (encryption), 2 (MAC), 3 (PACE password key).
* 3DES: two-key 3DES in CBC with a zero IV; ISO/IEC 9797-1 MAC algorithm 3 (the
  "retail MAC": single-DES CBC-MAC, final block through two-key 3DES).
* AES: CBC with IV = E(K, SSC) for secure messaging; CMAC truncated to 8 bytes.
* Padding: ISO/IEC 9797-1 method 2 (``80 00 ..``).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent.card.errors import SecureMessagingError

ENC, MAC, PACE_PI = 1, 2, 3


def pad(data: bytes, block: int) -> bytes:
    """ISO/IEC 9797-1 padding method 2."""
    data += b"\x80"
    return data + b"\x00" * (-len(data) % block)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise SecureMessagingError("bad padding in decrypted secure messaging data")
    return stripped[:-1]


def adjust_parity(key: bytes) -> bytes:
    """DES odd parity in the low bit of each byte (9303-11 9.7.1: KEnc/KMac of BAC are parity-adjusted)."""
    return bytes((b & 0xFE) | ((bin(b & 0xFE).count("1") + 1) % 2) for b in key)


def kdf(secret: bytes, counter: int, cipher: str) -> bytes:
    """9303-11 9.7.1: the key of ``cipher`` ("3DES", "AES-128", "AES-192", "AES-256") for ``counter``."""
    data = secret + counter.to_bytes(4, "big")
    if cipher == "3DES":
        return adjust_parity(hashlib.sha1(data).digest()[:16])  # noqa: S324 - mandated by ICAO 9303-11
    if cipher == "AES-128":
        return hashlib.sha1(data).digest()[:16]  # noqa: S324 - mandated by ICAO 9303-11
    if cipher == "AES-192":
        return hashlib.sha256(data).digest()[:24]
    if cipher == "AES-256":
        return hashlib.sha256(data).digest()
    raise ValueError(f"unknown cipher {cipher}")


def _des3(key: bytes) -> TripleDES:
    return TripleDES(key if len(key) != 16 else key + key[:8])


def des3_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    enc = Cipher(_des3(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def des3_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    dec = Cipher(_des3(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES; ``data`` must already be padded to 8 bytes."""
    if len(data) % 8:
        raise ValueError("retail MAC input must be padded")
    ka, kb = key[:8], key[8:16]
    h = bytes(8)
    if len(data) > 8:
        h = Cipher(TripleDES(ka * 3), modes.CBC(bytes(8))).encryptor().update(data[:-8])[-8:]
    last = bytes(x ^ y for x, y in zip(h, data[-8:], strict=True))
    enc = Cipher(TripleDES(ka + kb + ka), modes.ECB()).encryptor()  # noqa: S305 - one block, as the standard says
    return enc.update(last) + enc.finalize()


def aes_encrypt_block(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - IV derivation of one block
    return enc.update(block) + enc.finalize()


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()
