"""Chip Authentication version 1 (ICAO 9303-11, 6.2; BSI TR-03110-1/-3): ephemeral-static key agreement.

The terminal sends an ephemeral public key on the chip's domain parameters (from
DG14: an elliptic curve, or a finite-field DH group p, g, q); both sides derive new
secure-messaging keys from the shared secret, and the session restarts with SSC 0.
Only the original chip holds the private key whose public half DG14 carries, so a
copy of the files cannot continue the session: the first response under the new
keys does not verify.  3DES uses MSE:Set KAT
(``00 22 41 A6``, DO91 ephemeral key); AES uses MSE:Set AT (``00 22 41 A4``, DO80
protocol OID) then GENERAL AUTHENTICATE with the key in DO80 of a 7C template.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field

from asn1crypto import keys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from agent.card import crypto, tlv
from agent.card.apdu import CommandApdu, check
from agent.card.authresult import AuthResult
from agent.card.errors import CardError, ParseError
from agent.card.pace import encode_oid
from agent.card.secinfo import ID_CA, ID_PK, ChipAuthInfo, ChipAuthPublicKey, SecurityInfos
from agent.card.sm import SecureChannel
from agent.card.trust import SignatureError, load_public_key

log = logging.getLogger(__name__)

CIPHERS = {1: "3DES", 2: "AES-128", 3: "AES-192", 4: "AES-256"}
KINDS = {1: "DH", 2: "ECDH"}


class ChipAuthError(CardError):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"Chip Authentication {step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass(frozen=True)
class CaChoice:
    oid: str
    kind: str  # "DH" / "ECDH"
    cipher: str
    key_id: int | None
    public_key: PublicKeyTypes | DhPublicKey = field(repr=False)

    def describe(self) -> str:
        return f"CA-{self.kind}-{self.cipher}"


@dataclass(frozen=True)
class DhPublicKey:
    """A finite-field Diffie-Hellman key of DG14 (X9.42 ``dhpublicnumber``: p, g, q and y)."""

    p: int
    g: int
    q: int | None
    y: int

    @property
    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8


def parse_dh_key(spki: bytes) -> DhPublicKey:
    """The DH key in a SubjectPublicKeyInfo, checked: 1 < y < p - 1 and, with q, y in the order-q subgroup."""
    try:
        info = keys.PublicKeyInfo.load(spki, strict=True)
        if info["algorithm"]["algorithm"].native != "dh":
            raise ParseError(f"not a DH key: {info['algorithm']['algorithm'].native}", "DG14")
        params = info["algorithm"]["parameters"]
        p, g = int(params["p"].native), int(params["g"].native)
        q = params["q"].native
        y = int(info["public_key"].parsed.native)
    except (ValueError, TypeError, KeyError) as exc:
        raise ParseError(f"malformed DH public key: {exc}", "DG14") from None
    if p.bit_length() < 1024 or not 1 < g < p - 1 or not 1 < y < p - 1:
        raise ParseError("DH domain parameters or public value out of range (p of 1024 bits at least)", "DG14")
    if q is not None and pow(y, int(q), p) != 1:
        raise ParseError("the DH public value is not in the subgroup of order q", "DG14")
    return DhPublicKey(p, g, None if q is None else int(q), y)


def _split(oid: str, prefix: str) -> tuple[int, int] | None:
    rest = oid.removeprefix(prefix + ".").split(".")
    if not oid.startswith(prefix + ".") or not all(p.isdigit() for p in rest):
        return None
    return int(rest[0]), int(rest[1]) if len(rest) > 1 else 0


def choose(infos: SecurityInfos) -> CaChoice | None:
    """The protocol and key DG14 announces; None when it announces no Chip Authentication key.

    A key without a ChipAuthenticationInfo means the 3DES variant (9303-11, 9.2.5).
    """
    if not infos.chip_auth_keys:
        return None
    errors: list[str] = []
    candidates: list[tuple[ChipAuthInfo | None, ChipAuthPublicKey]] = []
    for announced in infos.chip_auth:
        keys = [k for k in infos.chip_auth_keys if announced.key_id is None or k.key_id in (None, announced.key_id)]
        candidates += [(announced, k) for k in keys]
    if not infos.chip_auth:
        candidates = [(None, k) for k in infos.chip_auth_keys]
    for info, key in candidates:
        pk = _split(key.oid, ID_PK)
        kind = KINDS.get(pk[0]) if pk else None
        if info is None:
            cipher, oid = "3DES", f"{ID_CA}.{pk[0] if pk else 0}.1"
        else:
            ca = _split(info.oid, ID_CA)
            if ca is None or ca[1] not in CIPHERS or KINDS.get(ca[0]) != kind or info.version != 1:
                errors.append(f"unsupported {info.oid} version {info.version} for key {key.oid}")
                continue
            cipher, oid = CIPHERS[ca[1]], info.oid
        if kind is None:
            errors.append(f"unsupported key type {key.oid}")
            continue
        public: PublicKeyTypes | DhPublicKey
        try:
            public = parse_dh_key(key.subject_public_key_info) if kind == "DH" else \
                load_public_key(key.subject_public_key_info)  # fmt: skip
        except (SignatureError, ParseError) as exc:
            errors.append(f"DG14 key unusable: {exc}")
            continue
        if kind == "DH":
            return CaChoice(oid, kind, cipher, info.key_id if info else key.key_id, public)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            errors.append(f"DG14 announces {kind} but its key is a {type(public).__name__}")
            continue
        return CaChoice(oid, kind, cipher, info.key_id if info else key.key_id, public)
    raise ChipAuthError("algorithm", "; ".join(errors) or "no usable Chip Authentication entry in DG14")


@dataclass(frozen=True)
class CaOutcome:
    channel: SecureChannel
    ephemeral_compressed: bytes = field(repr=False)  # Comp(PK_IFD), signed in Terminal Authentication
    choice: CaChoice


def _ephemeral(choice: CaChoice) -> tuple[bytes, bytes, bytes]:
    """(our public key as sent, its compressed form, the shared secret K)."""
    chip = choice.public_key
    if isinstance(chip, DhPublicKey):
        # finite-field DH as TR-03110 specifies it: the modular exponentiations are Python's, the key
        # and the secret are length-of-p octet strings; Comp() of a DH key is its SHA-1
        x = secrets.randbelow((chip.q or chip.p - 1) - 2) + 2
        public = pow(chip.g, x, chip.p).to_bytes(chip.size, "big")
        shared = pow(chip.y, x, chip.p).to_bytes(chip.size, "big")
        return public, hashlib.sha1(public).digest(), shared  # noqa: S324 - TR-03110-3 A.2.2.3
    assert isinstance(chip, ec.EllipticCurvePublicKey)
    sk = ec.generate_private_key(chip.curve)
    pub = sk.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    size = (chip.curve.key_size + 7) // 8
    return pub, pub[1 : 1 + size], sk.exchange(ec.ECDH(), chip)


def chip_authentication(sm: SecureChannel, choice: CaChoice) -> CaOutcome:
    """Run CA under the current session ``sm``; the returned channel carries the new keys.

    :class:`ChipAuthError` when the chip refuses; the caller proves the new keys with a command.
    """
    public, compressed, shared = _ephemeral(choice)
    key_ref = tlv.encode(0x84, choice.key_id.to_bytes(max(1, (choice.key_id.bit_length() + 7) // 8), "big")) \
        if choice.key_id is not None else b""  # fmt: skip
    try:
        if choice.cipher == "3DES":
            check(sm.transceive(CommandApdu(0x00, 0x22, 0x41, 0xA6, tlv.encode(0x91, public) + key_ref)),
                  "CA MSE:Set KAT")  # fmt: skip
        else:
            at = tlv.encode(0x80, encode_oid(choice.oid)) + key_ref
            check(sm.transceive(CommandApdu(0x00, 0x22, 0x41, 0xA4, at)), "CA MSE:Set AT")
            answer = check(sm.transceive(CommandApdu(0x00, 0x86, 0x00, 0x00, tlv.encode(0x7C, tlv.encode(0x80, public)),
                                                     le=256)), "CA GENERAL AUTHENTICATE")  # fmt: skip
            if answer:
                tlv.parse_single(answer, 0x7C, "CA GENERAL AUTHENTICATE")
    except ParseError as exc:
        raise ChipAuthError("command", str(exc)) from exc
    except CardError as exc:
        raise ChipAuthError("command", f"the chip refused: {exc}") from exc
    channel = SecureChannel(sm.channel, crypto.kdf(shared, crypto.ENC, choice.cipher),
                            crypto.kdf(shared, crypto.MAC, choice.cipher), 0, choice.cipher)  # fmt: skip
    return CaOutcome(channel, compressed, choice)


def describe_failure(exc: Exception) -> AuthResult:
    if isinstance(exc, ChipAuthError):
        return AuthResult.failed(exc.step, exc.detail)
    return AuthResult.failed("keys", f"the chip cannot continue under the agreed keys: {exc}")
