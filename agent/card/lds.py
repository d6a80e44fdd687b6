"""The Logical Data Structure (ICAO 9303-10): file table and parsers of the files a gate reads.

Every parser takes the file's bytes exactly as read and either returns a typed
object or raises :class:`ParseError` naming the file; no other exception escapes.
DG13 (the Vietnamese personal data) is parsed by field *number*, never by offset:
a field the card lacks is reported in ``missing``, not as an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from agent.card import tlv
from agent.card.errors import MrzError, ParseError
from agent.card.mrz import Mrz, parse_mrz
from agent.card.trust import SignatureError, load_public_key


@dataclass(frozen=True)
class LdsFileSpec:
    name: str
    fid: int
    sfi: int
    tag: int


_DG_TAGS = (0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70)
FILES: dict[str, LdsFileSpec] = {
    "cardaccess": LdsFileSpec("cardaccess", 0x011C, 0x1C, 0x31),
    "com": LdsFileSpec("com", 0x011E, 0x1E, 0x60),
    "sod": LdsFileSpec("sod", 0x011D, 0x1D, 0x77),
    **{f"dg{n}": LdsFileSpec(f"dg{n}", 0x0100 + n, n, tag) for n, tag in enumerate(_DG_TAGS, 1)},
}
TAG_TO_FILE = {spec.tag: name for name, spec in FILES.items() if name.startswith("dg")}


def file_spec(name: str) -> LdsFileSpec:
    try:
        return FILES[name.lower()]
    except KeyError:
        raise ParseError(f"unknown file {name!r} (known: {', '.join(FILES)})") from None


# --- EF.COM ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Com:
    lds_version: str
    unicode_version: str
    files: tuple[str, ...]


def parse_com(data: bytes) -> Com:
    outer = tlv.parse_single(data, 0x60, "EF.COM")
    items = {item.tag: item.value for item in outer.children("EF.COM")}
    if 0x5C not in items:
        raise ParseError("tag list (5C) missing", "EF.COM")
    names = []
    for tag in items[0x5C]:
        if tag not in TAG_TO_FILE:
            raise ParseError(f"unknown data group tag {tag:02X} in the tag list", "EF.COM")
        names.append(TAG_TO_FILE[tag])
    version = items.get(0x5F01, b"").decode("ascii", "replace")
    unicode = items.get(0x5F36, b"").decode("ascii", "replace")
    return Com(version, unicode, tuple(names))


# --- DG1 -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dg1:
    mrz: Mrz = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        m = self.mrz
        return {
            "document_code": m.document_code,
            "document_number": m.document_number,
            "surname": m.surname,
            "given_names": m.given_names,
            "nationality": m.nationality,
            "issuing_state": m.issuing_state,
            "birth": m.birth,
            "expiry": m.expiry,
            "sex": m.sex,
            "optional_data": m.optional_data,
        }


def parse_dg1(data: bytes) -> Dg1:
    outer = tlv.parse_single(data, 0x61, "DG1")
    text = outer.child(0x5F1F, "DG1").value
    try:
        return Dg1(parse_mrz(text.decode("ascii")))
    except (UnicodeDecodeError, MrzError) as exc:
        raise ParseError(f"MRZ: {exc}", "DG1") from exc


# --- DG2 -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceImage:
    format: str  # "jpeg" | "jpeg2000" | "unknown"
    width: int
    height: int
    data: bytes = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "width": self.width, "height": self.height, "bytes": len(self.data)}


@dataclass(frozen=True)
class Dg2:
    faces: tuple[FaceImage, ...]


def _sniff(image: bytes) -> str:
    if image.startswith(b"\xff\xd8"):
        return "jpeg"
    if image.startswith(b"\x00\x00\x00\x0cjP  ") or image.startswith(b"\xff\x4f\xff\x51"):
        return "jpeg2000"
    return "unknown"


def _facial_record(block: bytes) -> list[FaceImage]:
    """ISO/IEC 19794-5 (2005): 'FAC\\0' header, then facial records with one image each."""
    if len(block) < 14 or block[:4] != b"FAC\x00":
        raise ParseError("biometric data block is not an ISO/IEC 19794-5 facial record", "DG2")
    count = int.from_bytes(block[12:14], "big")
    offset, faces = 14, []
    for _ in range(count):
        if offset + 20 > len(block):
            raise ParseError("facial record header runs past the end", "DG2")
        length = int.from_bytes(block[offset : offset + 4], "big")
        landmarks = int.from_bytes(block[offset + 4 : offset + 6], "big")
        info = offset + 20 + 8 * landmarks
        end = offset + length
        if length < 32 or end > len(block) or info + 12 > end:
            raise ParseError("facial record length is inconsistent", "DG2")
        data_type = block[info + 1]
        width = int.from_bytes(block[info + 2 : info + 4], "big")
        height = int.from_bytes(block[info + 4 : info + 6], "big")
        image = block[info + 12 : end]
        fmt = {0: "jpeg", 1: "jpeg2000"}.get(data_type, _sniff(image))
        faces.append(FaceImage(fmt, width, height, image))
        offset = end
    return faces


def parse_dg2(data: bytes) -> Dg2:
    outer = tlv.parse_single(data, 0x75, "DG2")
    group = outer.child(0x7F61, "DG2")
    faces: list[FaceImage] = []
    for item in group.children("DG2"):
        if item.tag != 0x7F60:
            continue
        block = item.find(0x5F2E, "DG2") or item.find(0x7F2E, "DG2")
        if block is None:
            raise ParseError("biometric information template without biometric data (5F2E)", "DG2")
        faces.extend(_facial_record(block.value))
    return Dg2(tuple(faces))


# --- DG13: Vietnamese personal data ----------------------------------------------------------------------

DG13_FIELDS = {
    1: "id_number",
    2: "full_name",
    3: "birth",
    4: "sex",
    5: "nationality",
    6: "ethnicity",
    7: "religion",
    8: "hometown",
    9: "residence",
    10: "marks",
    11: "issued",
    12: "expiry",
    13: "parents",
    14: "spouse",
    15: "old_id",
    16: "field_16",
}
_STRING_TAGS = (0x0C, 0x13, 0x16, 0x1E, 0x04)


def _strings(item: tlv.Tlv, depth: int = 0) -> list[str]:
    if depth > 8:
        raise ParseError("nesting too deep", "DG13")
    if item.tag in _STRING_TAGS:
        if item.tag == 0x1E:
            return [item.value.decode("utf-16-be", "replace")]
        try:
            return [item.value.decode("utf-8")]
        except UnicodeDecodeError as exc:
            raise ParseError(f"string is not UTF-8: {exc}", "DG13") from exc
    if item.constructed:
        return [s for child in item.children("DG13") for s in _strings(child, depth + 1)]
    return []


@dataclass(frozen=True)
class Dg13:
    """The numbered fields found (number -> strings) and what they mean."""

    fields: dict[int, tuple[str, ...]] = field(repr=False)

    def text(self, number: int) -> str | None:
        values = self.fields.get(number)
        return values[0] if values else None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(name for n, name in DG13_FIELDS.items() if n not in self.fields and n != 16)

    @property
    def id_number(self) -> str | None:
        return self.text(1)

    @property
    def full_name(self) -> str | None:
        return self.text(2)

    @property
    def birth(self) -> dt.date | None:
        return _date(self.text(3))

    @property
    def sex(self) -> str | None:
        value = (self.text(4) or "").strip().casefold()
        return {"nam": "M", "nữ": "F", "nu": "F", "male": "M", "female": "F"}.get(value)

    @property
    def nationality(self) -> str | None:
        return self.text(5)

    @property
    def ethnicity(self) -> str | None:
        return self.text(6)

    @property
    def religion(self) -> str | None:
        return self.text(7)

    @property
    def hometown(self) -> str | None:
        return self.text(8)

    @property
    def residence(self) -> str | None:
        return self.text(9)

    @property
    def marks(self) -> str | None:
        return self.text(10)

    @property
    def issued(self) -> dt.date | None:
        return _date(self.text(11))

    @property
    def expiry(self) -> dt.date | None:
        """The expiry date; ``None`` when absent or when the card has none (see :attr:`no_expiry`)."""
        return _date(self.text(12))

    @property
    def no_expiry(self) -> bool:
        """Field 12 is present but holds no date ("Không thời hạn": holders over 60)."""
        text = self.text(12)
        return text is not None and _date(text) is None

    @property
    def father(self) -> str | None:
        values = self.fields.get(13, ())
        return values[0] if values else None

    @property
    def mother(self) -> str | None:
        values = self.fields.get(13, ())
        return values[1] if len(values) > 1 else None

    @property
    def spouse(self) -> str | None:
        return self.text(14)

    @property
    def old_id(self) -> str | None:
        return self.text(15)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n, name in DG13_FIELDS.items():
            values = self.fields.get(n)
            if values is None:
                continue
            if n == 13:
                out["father"] = values[0] if values else None
                out["mother"] = values[1] if len(values) > 1 else None
            else:
                out[name] = values[0] if len(values) == 1 else list(values)
        out["missing"] = list(self.missing)
        return out


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    for fmt in ("%d/%m/%Y", "%d%m%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def parse_dg13(data: bytes) -> Dg13:
    outer = tlv.parse_single(data, 0x6D, "DG13")
    found: dict[int, tuple[str, ...]] = {}

    def walk(item: tlv.Tlv, depth: int) -> None:
        if depth > 8 or not item.constructed:
            return
        children = item.children("DG13")
        if (
            item.tag == 0x30
            and len(children) >= 2
            and children[0].tag == 0x02
            and len(children[0].value) == 1
            and children[1].tag in (*_STRING_TAGS, 0x30, 0x31)
        ):
            number = children[0].value[0]
            if number in DG13_FIELDS and number not in found:
                found[number] = tuple(s for child in children[1:] for s in _strings(child))
                return
        for child in children:
            walk(child, depth + 1)

    walk(outer, 0)
    return Dg13(found)


# --- DG15 ------------------------------------------------------------------------------------------------


def parse_dg15(data: bytes) -> bytes:
    """The Active Authentication public key as DER SubjectPublicKeyInfo."""
    outer = tlv.parse_single(data, 0x6F, "DG15")
    spki = tlv.parse_single(outer.value, 0x30, "DG15")
    return spki.to_bytes()


def dg15_public_key(data: bytes) -> PublicKeyTypes:
    """The Active Authentication public key of DG15 as a ``cryptography`` key (RSA, or EC also with explicit
    domain parameters); a key we cannot load is a :class:`ParseError`."""
    spki = parse_dg15(data)
    try:
        return load_public_key(spki)
    except SignatureError as exc:
        raise ParseError(f"public key: {exc}", "DG15") from exc
