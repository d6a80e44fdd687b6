"""The card side of PACE with Generic Mapping on elliptic curves (ICAO 9303-11 4.4, G.1).

An object the chip holds: MSE:Set AT starts a run, four GENERAL AUTHENTICATE
steps follow (nonce, mapping, key agreement, tokens); the last one hands the chip
the keys of its new secure messaging session.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from ecdsa import curves, ellipticcurve

from sim.card import apdu
from sim.card import cryptoutil as cu
from sim.card.apdu import Command
from sim.card.der import read_tlvs, tlv, tlv_dict

CURVES = {12: curves.NIST256p, 13: curves.BRAINPOOLP256r1, 15: curves.NIST384p, 16: curves.BRAINPOOLP384r1}
PACE_CIPHERS = {"1": "3DES", "2": "AES-128", "3": "AES-192", "4": "AES-256"}


@dataclass(frozen=True)
class PaceResult:
    """What a finished PACE run gives the chip."""

    cipher: str
    k_enc: bytes = field(repr=False)
    k_mac: bytes = field(repr=False)
    id_picc: bytes  # x of the chip's ephemeral key: TA's ID_PICC after PACE


def _point(curve: curves.Curve, data: bytes) -> ellipticcurve.Point:
    size = curve.baselen
    if len(data) != 1 + 2 * size or data[0] != 4:
        raise ValueError("bad point")
    x, y = int.from_bytes(data[1 : 1 + size], "big"), int.from_bytes(data[1 + size :], "big")
    if not curve.curve.contains_point(x, y):
        raise ValueError("point not on curve")
    return ellipticcurve.Point(curve.curve, x, y, curve.order)


def _bytes(point: ellipticcurve.Point | ellipticcurve.PointJacobi, size: int) -> bytes:
    return b"\x04" + int(point.x()).to_bytes(size, "big") + int(point.y()).to_bytes(size, "big")


def _token(cipher: str, k_mac: bytes, oid_value: bytes, point: bytes) -> bytes:
    data = tlv(0x7F49, tlv(0x06, oid_value) + tlv(0x86, point))
    return cu.mac8(cipher, k_mac, cu.iso_pad(data, 8) if cipher == "3DES" else data)


class Pace:
    """One chip's PACE: the passwords it knows, and the state of the run under way."""

    def __init__(
        self,
        mrz_information: str,
        can: str | None,
        random: Callable[[int], bytes],
        *,
        enabled: bool = True,
        refused: str | None = None,
    ) -> None:
        self.mrz_information = mrz_information
        self.can = can
        self.random = random
        self.enabled = enabled
        self.refused = refused  # None | "mse" | "ga"
        self.state: dict[str, object] = {}

    def reset(self) -> None:
        self.state = {}

    @property
    def running(self) -> bool:
        return bool(self.state)

    def mse_set_at(self, cmd: Command, card_access: bytes) -> int:
        """MSE:Set AT (C1 A4): protocol OID (80) and password reference (83: 01 MRZ, 02 CAN)."""
        if not self.enabled or self.refused == "mse":
            return apdu.WRONG_DATA
        try:
            objs = tlv_dict(cmd.data)
        except ValueError:
            return apdu.WRONG_DATA
        proto = objs.get(0x80, b"")
        ref = objs.get(0x83, b"")
        if not proto or proto not in card_access or ref not in (b"\x01", b"\x02"):
            return apdu.WRONG_DATA
        if ref == b"\x02" and self.can is None:
            return apdu.REFERENCE_NOT_FOUND
        # the OID ends in the cipher number; the curve comes from EF.CardAccess
        cipher = PACE_CIPHERS.get(str(proto[-1]))
        param = objs.get(0x84)
        at = card_access.index(proto) + len(proto) + 5
        curve_id = param[0] if param else (card_access[at] if at < len(card_access) else -1)
        if cipher is None or curve_id not in CURVES:
            return apdu.WRONG_DATA
        self.state = {"oid": proto, "ref": ref[0], "cipher": cipher, "curve": CURVES[curve_id], "step": 1}
        return apdu.OK

    def general_authenticate(self, cmd: Command) -> tuple[bytes, int, PaceResult | None]:
        st = self.state
        if not st:
            return b"", apdu.CONDITIONS_NOT_SATISFIED, None
        if self.refused == "ga":
            self.state = {}
            return b"", apdu.CONDITIONS_NOT_SATISFIED, None
        try:
            (tag, body), *_ = read_tlvs(cmd.data)
            inner = tlv_dict(body) if tag == 0x7C else None
        except ValueError:
            inner = None
        if inner is None:
            self.state = {}
            return b"", apdu.WRONG_DATA, None
        try:
            return self._step(st, inner)
        except (KeyError, ValueError):
            self.state = {}
            return b"", apdu.WRONG_DATA, None

    def _step(self, st: dict[str, object], inner: dict[int, bytes]) -> tuple[bytes, int, PaceResult | None]:
        cipher = str(st["cipher"])
        curve = st["curve"]
        assert isinstance(curve, curves.Curve)
        size = curve.baselen
        step = st["step"]
        if step == 1:
            secret = self.mrz_information.encode() if st["ref"] == 1 else str(self.can).encode()
            if st["ref"] == 1:
                secret = hashlib.sha1(secret).digest()  # noqa: S324 - 9303-11
            k_pi = cu.derive(secret, 3, cipher)
            nonce = self.random(16)
            st["s"] = int.from_bytes(nonce, "big")
            z = cu.cbc(cipher, k_pi, nonce, bytes(8 if cipher == "3DES" else 16), True)
            st["step"] = 2
            return tlv(0x7C, tlv(0x80, z)), apdu.OK, None
        if step == 2:
            pk_map_ifd = _point(curve, inner[0x81])
            sk = int.from_bytes(self.random(size), "big") % (curve.order - 1) + 1
            h = pk_map_ifd * sk
            st["g"] = curve.generator * int(st["s"]) + h  # type: ignore[call-overload]
            st["step"] = 3
            return tlv(0x7C, tlv(0x82, _bytes(curve.generator * sk, size))), apdu.OK, None
        if step == 3:
            pk_ifd_bytes = inner[0x83]
            pk_ifd = _point(curve, pk_ifd_bytes)
            g = st["g"]
            sk = int.from_bytes(self.random(size), "big") % (curve.order - 1) + 1
            pk_ic_bytes = _bytes(g * sk, size)
            k = int((pk_ifd * sk).x()).to_bytes(size, "big")
            st.update(k_enc=cu.derive(k, 1, cipher), k_mac=cu.derive(k, 2, cipher))
            st.update(pk_ifd=pk_ifd_bytes, pk_ic=pk_ic_bytes)
            st["step"] = 4
            return tlv(0x7C, tlv(0x84, pk_ic_bytes)), apdu.OK, None
        if step == 4:
            k_mac, k_enc, oid_value = st["k_mac"], st["k_enc"], st["oid"]
            pk_ic, pk_ifd = st["pk_ic"], st["pk_ifd"]
            assert isinstance(k_mac, bytes) and isinstance(k_enc, bytes) and isinstance(oid_value, bytes)
            assert isinstance(pk_ic, bytes) and isinstance(pk_ifd, bytes)
            self.state = {}
            if not hmac.compare_digest(inner.get(0x85, b""), _token(cipher, k_mac, oid_value, pk_ic)):
                return b"", apdu.VERIFICATION_FAILED, None
            t_ic = _token(cipher, k_mac, oid_value, pk_ifd)
            result = PaceResult(cipher, k_enc, k_mac, pk_ic[1 : 1 + size])
            return tlv(0x7C, tlv(0x86, t_ic)), apdu.OK, result
        return b"", apdu.CONDITIONS_NOT_SATISFIED, None
