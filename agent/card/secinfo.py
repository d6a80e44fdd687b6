"""SecurityInfos (ICAO 9303-11, 9.2; BSI TR-03110-3, A.1): what EF.CardAccess and DG14 announce.

Parsed with the BER-TLV reader; unknown entries are kept raw (a chip may announce
protocols we do not run), malformed ones are a :class:`ParseError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.card import tlv
from agent.card.errors import ParseError
from agent.card.pace import ID_PACE, PaceParameters

ID_CA = "0.4.0.127.0.7.2.2.3"
ID_PK = "0.4.0.127.0.7.2.2.1"
ID_TA = "0.4.0.127.0.7.2.2.2"
ID_AA = "2.23.136.1.1.5"


def decode_oid(data: bytes, where: str = "OID") -> str:
    if not data:
        raise ParseError("empty OBJECT IDENTIFIER", where)
    first = data[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for i, byte in enumerate(data[1:], 1):
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
        elif i == len(data) - 1:
            raise ParseError("OBJECT IDENTIFIER ends inside a sub-identifier", where)
    return ".".join(str(p) for p in parts)


def _int(item: tlv.Tlv, where: str) -> int:
    if item.tag != 0x02 or not item.value:
        raise ParseError("expected an INTEGER", where)
    return int.from_bytes(item.value, "big", signed=True)


@dataclass(frozen=True)
class ChipAuthInfo:
    oid: str
    version: int
    key_id: int | None


@dataclass(frozen=True)
class ChipAuthPublicKey:
    oid: str
    subject_public_key_info: bytes = field(repr=False)  # DER SubjectPublicKeyInfo (domain parameters inside)
    key_id: int | None


@dataclass(frozen=True)
class ActiveAuthInfo:
    version: int
    signature_algorithm: str | None


@dataclass(frozen=True)
class SecurityInfos:
    pace: tuple[PaceParameters, ...] = ()
    chip_auth: tuple[ChipAuthInfo, ...] = ()
    chip_auth_keys: tuple[ChipAuthPublicKey, ...] = ()
    terminal_auth: tuple[int, ...] = ()  # TA versions
    active_auth: tuple[ActiveAuthInfo, ...] = ()
    other: tuple[str, ...] = ()  # OIDs we do not use

    def preferred_pace(self) -> PaceParameters | None:
        """The first PACE entry we can run (generic mapping, ECDH, a standard curve)."""
        return next((p for p in self.pace if p.supported), None)


def parse_security_infos(data: bytes, where: str = "SecurityInfos") -> SecurityInfos:
    """Parse a DER SET OF SecurityInfo (EF.CardAccess) or DG14 (tag 6E around it)."""
    outer = tlv.parse_single(data, None, where)
    if outer.tag == 0x6E:
        outer = tlv.parse_single(outer.value, 0x31, where)
    if outer.tag != 0x31:
        raise ParseError(f"expected a SET (31), found {outer.tag:02X}", where)
    pace: list[PaceParameters] = []
    ca: list[ChipAuthInfo] = []
    keys: list[ChipAuthPublicKey] = []
    ta: list[int] = []
    aa: list[ActiveAuthInfo] = []
    other: list[str] = []
    for info in outer.children(where):
        if info.tag != 0x30:
            raise ParseError("SecurityInfo is not a SEQUENCE", where)
        items = info.children(where)
        if not items or items[0].tag != 0x06:
            raise ParseError("SecurityInfo does not start with an OID", where)
        oid = decode_oid(items[0].value, where)
        rest = items[1:]
        if oid.startswith(ID_PACE + ".") and oid.count(".") == ID_PACE.count(".") + 2:
            if not rest:
                raise ParseError("PACEInfo without a version", where)
            version = _int(rest[0], where)
            param = _int(rest[1], where) if len(rest) > 1 else -1
            if version == 2:
                pace.append(PaceParameters(oid, param))
        elif oid.startswith(ID_CA + ".") and oid.count(".") == ID_CA.count(".") + 2:
            if not rest:
                raise ParseError("ChipAuthenticationInfo without a version", where)
            ca.append(ChipAuthInfo(oid, _int(rest[0], where), _int(rest[1], where) if len(rest) > 1 else None))
        elif oid.startswith(ID_PK + "."):
            if not rest or rest[0].tag != 0x30:
                raise ParseError("ChipAuthenticationPublicKeyInfo without a SubjectPublicKeyInfo", where)
            keys.append(ChipAuthPublicKey(oid, rest[0].to_bytes(), _int(rest[1], where) if len(rest) > 1 else None))
        elif oid == ID_TA:
            ta.append(_int(rest[0], where) if rest else 1)
        elif oid == ID_AA:
            alg = decode_oid(rest[1].value, where) if len(rest) > 1 and rest[1].tag == 0x06 else None
            aa.append(ActiveAuthInfo(_int(rest[0], where) if rest else 1, alg))
        else:
            other.append(oid)
    return SecurityInfos(tuple(pace), tuple(ca), tuple(keys), tuple(ta), tuple(aa), tuple(other))
