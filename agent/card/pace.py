"""PACE v2 with the ECDH generic mapping (ICAO 9303-11, section 4.4; BSI TR-03110-3).

Steps: MSE:Set AT names the protocol and the password (MRZ or CAN); General
Authenticate 1 gets the nonce encrypted under K_pi; step 2 maps the curve's
generator with an ephemeral ECDH (G' = s*G + H); step 3 agrees on the session
key K on G'; step 4 exchanges authentication tokens over the other side's key.
Curve arithmetic on the mapped generator is not something ``cryptography``
exposes, so it comes from ``ecdsa`` (which knows the Brainpool curves); the
symmetric parts come from :mod:`agent.card.crypto`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ecdsa import curves, ellipticcurve

from agent.card import crypto, tlv
from agent.card.apdu import ApduChannel, CommandApdu, check
from agent.card.errors import AuthenticationFailed, CardError, ParseError, SecureMessagingError, StatusError
from agent.card.keys import MrzKey
from agent.card.sm import SecureChannel

ID_PACE = "0.4.0.127.0.7.2.2.4"
#: protocol OID suffix -> (mapping, agreement, cipher)
PROTOCOLS: dict[str, tuple[str, str, str]] = {
    "1.1": ("GM", "DH", "3DES"),
    "1.2": ("GM", "DH", "AES-128"),
    "1.3": ("GM", "DH", "AES-192"),
    "1.4": ("GM", "DH", "AES-256"),
    "2.1": ("GM", "ECDH", "3DES"),
    "2.2": ("GM", "ECDH", "AES-128"),
    "2.3": ("GM", "ECDH", "AES-192"),
    "2.4": ("GM", "ECDH", "AES-256"),
    "3.1": ("IM", "DH", "3DES"),
    "3.2": ("IM", "DH", "AES-128"),
    "3.3": ("IM", "DH", "AES-192"),
    "3.4": ("IM", "DH", "AES-256"),
    "4.1": ("IM", "ECDH", "3DES"),
    "4.2": ("IM", "ECDH", "AES-128"),
    "4.3": ("IM", "ECDH", "AES-192"),
    "4.4": ("IM", "ECDH", "AES-256"),
    "6.2": ("CAM", "ECDH", "AES-128"),
    "6.3": ("CAM", "ECDH", "AES-192"),
    "6.4": ("CAM", "ECDH", "AES-256"),
}

#: standardized domain parameters (BSI TR-03110-3, table 4) we support -> ecdsa curve
CURVES: dict[int, curves.Curve] = {
    8: curves.NIST192p,
    9: curves.BRAINPOOLP192r1,
    10: curves.NIST224p,
    11: curves.BRAINPOOLP224r1,
    12: curves.NIST256p,
    13: curves.BRAINPOOLP256r1,
    14: curves.BRAINPOOLP320r1,
    15: curves.NIST384p,
    16: curves.BRAINPOOLP384r1,
    17: curves.BRAINPOOLP512r1,
    18: curves.NIST521p,
}
CURVE_NAMES = {
    8: "secp192r1",
    9: "brainpoolP192r1",
    10: "secp224r1",
    11: "brainpoolP224r1",
    12: "secp256r1",
    13: "brainpoolP256r1",
    14: "brainpoolP320r1",
    15: "secp384r1",
    16: "brainpoolP384r1",
    17: "brainpoolP512r1",
    18: "secp521r1",
}

MRZ_PASSWORD, CAN_PASSWORD = 1, 2


class PaceError(CardError):
    """PACE could not run (unsupported parameters, the chip refused, a protocol error)."""


@dataclass(frozen=True)
class PaceParameters:
    oid: str  # dotted, e.g. 0.4.0.127.0.7.2.2.4.2.2
    parameter_id: int

    @property
    def suffix(self) -> str:
        return self.oid.removeprefix(ID_PACE + ".")

    @property
    def supported(self) -> bool:
        spec = PROTOCOLS.get(self.suffix)
        return spec is not None and spec[:2] == ("GM", "ECDH") and self.parameter_id in CURVES

    @property
    def cipher(self) -> str:
        return PROTOCOLS[self.suffix][2]

    def describe(self) -> str:
        spec = PROTOCOLS.get(self.suffix, ("?", "?", "?"))
        return f"PACE-{spec[1]}-{spec[0]}-{spec[2]} on {CURVE_NAMES.get(self.parameter_id, self.parameter_id)}"


def encode_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for value in parts[2:]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    return body


def password_key(password: MrzKey | str, cipher: str) -> tuple[bytes, int]:
    """K_pi and the password reference (9303-11 4.4.3.1: MRZ -> SHA-1 of the MRZ information; CAN as is)."""
    if isinstance(password, MrzKey):
        secret = hashlib.sha1(password.mrz_information.encode("ascii")).digest()  # noqa: S324 - 9303-11
        return crypto.kdf(secret, crypto.PACE_PI, cipher), MRZ_PASSWORD
    return crypto.kdf(password.encode("ascii"), crypto.PACE_PI, cipher), CAN_PASSWORD


def _point_bytes(point: ellipticcurve.Point | ellipticcurve.PointJacobi, size: int) -> bytes:
    return b"\x04" + int(point.x()).to_bytes(size, "big") + int(point.y()).to_bytes(size, "big")


def _parse_point(curve: curves.Curve, data: bytes, size: int) -> ellipticcurve.Point:
    if len(data) != 1 + 2 * size or data[0] != 0x04:
        raise PaceError("the chip sent a malformed public key (expected an uncompressed point)")
    x, y = int.from_bytes(data[1 : 1 + size], "big"), int.from_bytes(data[1 + size :], "big")
    if not curve.curve.contains_point(x, y):
        raise PaceError("the chip's public key is not on the curve")
    return ellipticcurve.Point(curve.curve, x, y, curve.order)


def _ga(channel: ApduChannel, tag: int, value: bytes, last: bool, step: str) -> bytes:
    data = tlv.encode(0x7C, tlv.encode(tag, value) if tag else b"")
    command = CommandApdu(0x00 if last else 0x10, 0x86, 0x00, 0x00, data, le=256)
    try:
        answer = check(channel.transceive(command), f"PACE {step}")
        inner = tlv.parse_single(answer, 0x7C, f"PACE {step}")
        return inner.children(f"PACE {step}")[0].value if inner.value else b""
    except (ParseError, IndexError) as exc:
        raise PaceError(f"malformed answer to PACE {step}: {exc}") from exc


def _mac(cipher: str, key: bytes, data: bytes) -> bytes:
    if cipher == "3DES":
        return crypto.retail_mac(key, crypto.pad(data, 8))
    return crypto.aes_cmac(key, data)[:8]


def auth_token(cipher: str, ks_mac: bytes, oid: str, public_key: bytes) -> bytes:
    """9303-11 4.4.3.4: MAC over 7F49 { 06 OID, 86 public point }."""
    body = tlv.encode(0x06, encode_oid(oid)) + tlv.encode(0x86, public_key)
    return _mac(cipher, ks_mac, tlv.encode(0x7F49, body))


def authenticate(
    channel: ApduChannel,
    params: PaceParameters,
    password: MrzKey | str,
    random_scalar: Callable[[int], int] | None = None,
) -> SecureChannel:
    """Run PACE; return the secure channel (SSC 0).

    A wrong password shows as :class:`AuthenticationFailed` at the token exchange.
    """
    if not params.supported:
        raise PaceError(f"{params.describe()} is not supported (ECDH generic mapping on a standard curve only)")
    curve = CURVES[params.parameter_id]
    size = curve.baselen
    cipher = params.cipher
    k_pi, ref = password_key(password, cipher)
    draw = random_scalar or (lambda order: secrets.randbelow(order - 1) + 1)

    mse = tlv.encode(0x80, encode_oid(params.oid)) + tlv.encode(0x83, bytes([ref]))
    if params.parameter_id >= 0:
        mse += tlv.encode(0x84, bytes([params.parameter_id]))
    try:
        check(channel.transceive(CommandApdu(0x00, 0x22, 0xC1, 0xA4, mse)), "PACE MSE:Set AT")
    except StatusError as exc:
        raise PaceError(f"the chip refused PACE ({exc})") from exc

    z = _ga(channel, 0, b"", False, "step 1 (nonce)")
    block = 8 if cipher == "3DES" else 16
    if not z or len(z) % block:
        raise PaceError("the encrypted nonce has a bad length")
    if cipher == "3DES":
        s = crypto.des3_cbc_decrypt(k_pi, z)
    else:
        s = crypto.aes_cbc_decrypt(k_pi, z)

    g = curve.generator
    sk_map = draw(curve.order)
    pk_map = g * sk_map
    pk_map_ic = _parse_point(curve, _ga(channel, 0x81, _point_bytes(pk_map, size), False, "step 2 (mapping)"), size)
    h = pk_map_ic * sk_map
    if h == ellipticcurve.INFINITY:
        raise PaceError("mapping produced the point at infinity")
    g_mapped = g * int.from_bytes(s, "big") + h

    sk_eph = draw(curve.order)
    pk_eph = g_mapped * sk_eph
    pk_eph_bytes = _point_bytes(pk_eph, size)
    pk_eph_ic_bytes = _ga(channel, 0x83, pk_eph_bytes, False, "step 3 (key agreement)")
    pk_eph_ic = _parse_point(curve, pk_eph_ic_bytes, size)
    if pk_eph_ic_bytes == pk_eph_bytes:
        raise PaceError("the chip echoed our ephemeral key")
    shared = pk_eph_ic * sk_eph
    k = int(shared.x()).to_bytes(size, "big")
    ks_enc, ks_mac = crypto.kdf(k, crypto.ENC, cipher), crypto.kdf(k, crypto.MAC, cipher)

    t_ifd = auth_token(cipher, ks_mac, params.oid, pk_eph_ic_bytes)
    try:
        t_ic = _ga(channel, 0x85, t_ifd, True, "step 4 (mutual authentication)")
    except StatusError as exc:
        raise AuthenticationFailed(exc.sw, "PACE mutual authentication (wrong MRZ or CAN?)") from exc
    if not hmac.compare_digest(t_ic, auth_token(cipher, ks_mac, params.oid, pk_eph_bytes)):
        raise SecureMessagingError("the chip's PACE authentication token does not verify")
    return SecureChannel(channel, ks_enc, ks_mac, 0, cipher, pace_chip_key=pk_eph_ic_bytes)
