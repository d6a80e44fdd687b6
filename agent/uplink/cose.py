"""COSE_Sign1 (RFC 9052, section 4.2), small and strict: EdDSA (Ed25519) and ES256.

pycose 2.2 cannot decode messages with cbor2 6.x (cbor2 returns tagged arrays as
tuples, pycose expects lists), so the few lines of COSE_Sign1 live here, tested
against the RFC's example (Appendix C.2.1).

    COSE_Sign1 = 18([protected: bstr .cbor header_map, unprotected: header_map,
                      payload: bstr, signature: bstr])
    Sig_structure = ["Signature1", protected, external_aad, payload]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from agent.codec.cbor import CborError, decode_cbor
from agent.errors import GateAgentError

TAG_SIGN1 = 18
ALG, KID = 1, 4
EDDSA, ES256 = -8, -7

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class CoseError(GateAgentError):
    """A COSE_Sign1 message is malformed, uses an unsupported algorithm, or its signature does not verify."""


def _alg_of(key: PrivateKey | PublicKey) -> int:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return EDDSA
    if isinstance(key.curve, ec.SECP256R1):
        return ES256
    raise CoseError(f"unsupported key type for COSE: {type(key).__name__}")


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    return cbor2.dumps(["Signature1", protected, external_aad, payload])


def sign1(payload: bytes, key: PrivateKey, kid: bytes, external_aad: bytes = b"") -> bytes:
    alg = _alg_of(key)
    protected = cbor2.dumps({ALG: alg})
    to_sign = sig_structure(protected, payload, external_aad)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(to_sign)
    else:
        r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [protected, {KID: kid}, payload, signature]))


@dataclass(frozen=True)
class Sign1:
    protected: dict[int, object]
    unprotected: dict[int, object]
    payload: bytes
    signature: bytes
    protected_raw: bytes

    @property
    def kid(self) -> bytes | None:
        value = self.unprotected.get(KID, self.protected.get(KID))
        return value if isinstance(value, bytes) else None

    @property
    def alg(self) -> object:
        return self.protected.get(ALG)


def decode_sign1(data: bytes, limit: int = 64 * 1024) -> Sign1:
    """Parse (strict CBOR, size-limited) without verifying."""
    try:
        item = decode_cbor(data, limit)
    except CborError as exc:
        raise CoseError(f"not a COSE_Sign1 message: {exc}") from exc
    if not isinstance(item, cbor2.CBORTag) or item.tag != TAG_SIGN1:
        raise CoseError("not a COSE_Sign1 message (CBOR tag 18 expected)")
    value = item.value
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise CoseError("COSE_Sign1 must be an array of four items")
    protected_raw, unprotected, payload, signature = value
    if not all(isinstance(v, bytes) for v in (protected_raw, payload, signature)) or not isinstance(
        unprotected, Mapping
    ):
        raise CoseError("COSE_Sign1 items have the wrong types")
    try:
        protected = decode_cbor(protected_raw, 1024) if protected_raw else {}
    except CborError as exc:
        raise CoseError(f"protected header is not CBOR: {exc}") from exc
    if not isinstance(protected, Mapping):
        raise CoseError("protected header is not a map")
    return Sign1(dict(protected), dict(unprotected), payload, signature, protected_raw)


def verify1(message: Sign1, key: PublicKey, external_aad: bytes = b"") -> bytes:
    """The payload when the signature verifies with ``key``; CoseError otherwise."""
    alg = message.alg
    if alg != _alg_of(key):
        raise CoseError(f"algorithm {alg} does not match the signer's key")
    to_verify = sig_structure(message.protected_raw, message.payload, external_aad)
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(message.signature, to_verify)
        else:
            if len(message.signature) != 64:
                raise CoseError("ES256 signature must be 64 bytes")
            r = int.from_bytes(message.signature[:32], "big")
            s = int.from_bytes(message.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), to_verify, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CoseError("COSE signature does not verify") from None
    return message.payload
