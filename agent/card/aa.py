"""Active Authentication (ICAO 9303-11, 6.1): the chip signs a fresh challenge with the key of DG15.

RSA keys sign with ISO/IEC 9796-2 digital signature scheme 1 (message recovery;
the trailer names the hash: ``BC`` is SHA-1, ``xx CC`` names SHA-224/256/384/512);
ECDSA keys sign with the plain ``r || s`` format and the hash DG14's
ActiveAuthenticationInfo announces.  The RSA public operation is
``cryptography``'s key numbers raised with Python's modular exponentiation; the
ISO/IEC 9796-2 *encoding* checks on the recovered block are written here, since no
maintained Python library verifies that scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.card import tlv
from agent.card.apdu import CommandApdu, ResponseApdu
from agent.card.authresult import AuthResult
from agent.card.errors import CardError, ParseError
from agent.card.secinfo import SecurityInfos
from agent.card.trust import SignatureError, der_ecdsa, load_public_key

log = logging.getLogger(__name__)

#: BSI TR-03111 ecdsa-plain-signatures OIDs -> hash
ECDSA_PLAIN: dict[str, str] = {
    "0.4.0.127.0.7.1.1.4.1.1": "sha1",
    "0.4.0.127.0.7.1.1.4.1.2": "sha224",
    "0.4.0.127.0.7.1.1.4.1.3": "sha256",
    "0.4.0.127.0.7.1.1.4.1.4": "sha384",
    "0.4.0.127.0.7.1.1.4.1.5": "sha512",
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}  # fmt: skip
#: ISO/IEC 10118-3 hash identifiers used in the two-byte 9796-2 trailer ``xx CC``
TRAILER_HASHES: dict[int, str] = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384", 0x38: "sha224"}


def parse_dg15(data: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo inside DG15 (tag 6F)."""
    return tlv.parse_single(data, 0x6F, "DG15").value


def recover_9796_2(signature: bytes, key: rsa.RSAPublicKey) -> tuple[bytes, str, bytes]:
    """Open an ISO/IEC 9796-2 scheme 1 signature: (recovered message M1, hash name, hash in the block).

    :class:`SignatureError` when the block is not a well-formed scheme 1 representative.
    """
    numbers = key.public_numbers()
    n, e = numbers.n, numbers.e
    k = (n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    if not 0 < s < n or len(signature) != k:
        raise SignatureError("the signature is not an integer below the modulus")
    j = pow(s, e, n)
    if j & 0x0F != 0x0C:  # 9796-2 with an odd exponent: the representative is J or n - J, whichever ends in C
        j = n - j
    if j & 0x0F != 0x0C:
        raise SignatureError("the recovered block does not end in a 9796-2 trailer")
    block = j.to_bytes(k, "big")
    if block[0] & 0xC0 != 0x40:
        raise SignatureError("the recovered block does not start with the 9796-2 header bits 01")
    if block[-1] == 0xBC:
        hash_name, trailer = "sha1", 1
    elif block[-1] == 0xCC and block[-2] in TRAILER_HASHES:
        hash_name, trailer = TRAILER_HASHES[block[-2]], 2
    else:
        raise SignatureError(f"unknown 9796-2 trailer {block[-2:].hex()}", unsupported=True)
    digest_size = hashlib.new(hash_name).digest_size
    # padding: nibbles B... ending with A, the last one in the low nibble of the byte before M1
    start = next((i for i, b in enumerate(block) if b & 0x0F == 0x0A), None)
    if start is None or start + 1 > k - trailer - digest_size:
        raise SignatureError("the recovered block has no 9796-2 padding border")
    m1 = block[start + 1 : k - trailer - digest_size]
    digest = block[k - trailer - digest_size : k - trailer]
    return m1, hash_name, digest


def verify_rsa(key: rsa.RSAPublicKey, signature: bytes, challenge: bytes) -> str:
    """Check a 9796-2 scheme 1 signature over M1 || challenge; return the hash name used."""
    m1, hash_name, digest = recover_9796_2(signature, key)
    if not hmac.compare_digest(hashlib.new(hash_name, m1 + challenge).digest(), digest):
        raise SignatureError("the hash in the signature does not match the challenge")
    return hash_name


def verify_ecdsa(key: ec.EllipticCurvePublicKey, signature: bytes, challenge: bytes, oid: str) -> str:
    hash_name = ECDSA_PLAIN.get(oid)
    if hash_name is None:
        raise SignatureError(f"unsupported Active Authentication algorithm {oid}", unsupported=True)
    try:
        key.verify(der_ecdsa(signature), challenge, ec.ECDSA(_HASHES[hash_name]()))
    except InvalidSignature:
        raise SignatureError("the ECDSA signature does not verify") from None
    return hash_name


Send = Callable[[CommandApdu], ResponseApdu]


def active_authentication(
    send: Send,
    dg15: bytes,
    infos: SecurityInfos | None,
    *,
    challenge: bytes | None = None,
) -> AuthResult:
    """Run AA over ``send`` (the open secure channel) and judge the answer."""
    try:
        spki = parse_dg15(dg15)
        key = load_public_key(spki)
    except (ParseError, SignatureError) as exc:
        return AuthResult.skipped("dg15", f"DG15 holds no usable public key: {exc}")
    announced = infos.active_auth[0].signature_algorithm if infos and infos.active_auth else None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if announced is None:
            return AuthResult.skipped("algorithm", "an ECDSA key but DG14 announces no AA algorithm", "ECDSA")
        if announced not in ECDSA_PLAIN:
            return AuthResult.skipped("algorithm", f"unsupported AA algorithm {announced}", announced)
        algorithm = "ECDSA-" + ECDSA_PLAIN[announced].upper()
    elif isinstance(key, rsa.RSAPublicKey):
        algorithm = "RSA-9796-2"
    else:
        return AuthResult.skipped("algorithm", f"unsupported AA key type {type(key).__name__}")
    nonce = challenge if challenge is not None else secrets.token_bytes(8)
    try:
        response = send(CommandApdu(0x00, 0x88, 0x00, 0x00, nonce, le=256))
    except CardError as exc:
        return AuthResult.failed("command", f"INTERNAL AUTHENTICATE failed: {exc}", algorithm)
    if response.sw != 0x9000 or not response.data:
        return AuthResult.failed("command", f"the chip refused INTERNAL AUTHENTICATE ({response.sw:04X})", algorithm)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            assert announced is not None
            verify_ecdsa(key, response.data, nonce, announced)
        else:
            algorithm = "RSA-9796-2-" + verify_rsa(key, response.data, nonce).upper()
    except SignatureError as exc:
        if exc.unsupported:
            return AuthResult.skipped("algorithm", str(exc), algorithm)
        return AuthResult.failed("signature", f"the chip's signature does not verify with DG15's key: {exc}",
                                 algorithm)  # fmt: skip
    except (ValueError, UnsupportedAlgorithm) as exc:
        return AuthResult.failed("signature", f"malformed signature: {exc}", algorithm)
    return AuthResult.passed(algorithm)
