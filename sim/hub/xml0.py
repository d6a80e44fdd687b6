"""XML0 for the hospital information system: one check-in row per stored check-in, a day's file, a validator.

Decision 130/QĐ-BYT (amended by QĐ 4750/QĐ-BYT) adds a check-in table, XML0, that the
hospital system sends when a patient arrives.  The gate supplies what it knows at
arrival -- the time, the identity and the insurance lookup's snapshot -- and the hub
turns each stored check-in into a row; the HIS adds the rest (services, drugs,
orders) later.  Fields and formats (``docs/national-systems.md``):

MA_LK, STT, MA_BN, HO_TEN, SO_CCCD (or the VNeID account), NGAY_SINH (yyyymmddHHMM,
unknown parts 0000), GIOI_TINH (1 male, 2 female, 3 unknown), MA_THE_BHYT, MA_DKBD
(5 characters), GT_THE_TU / GT_THE_DEN (yyyymmdd), MA_DOITUONG_KCB, NGAY_VAO,
NGAY_VAO_NOI_TRU, LY_DO_VNT, MA_LY_DO_VNT, MA_LOAI_KCB (01-09), MA_CSKCB,
MA_DICH_VU, TEN_DICH_VU, MA_THUOC, TEN_THUOC, MA_VAT_TU, TEN_VAT_TU, NGAY_YL, DU_PHONG.

Simulator choices, marked as such: maximum lengths are this validator's reading of
the table; MA_DOITUONG_KCB uses ``1`` (insured, registered here), ``2`` (insured,
registered elsewhere) and ``3`` (not insured) in place of the national category list;
the file's wrapper elements are ours.  Rows are made for check-ins that let the
patient in (admitted, provisional) and that carry an identity.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VN = dt.timezone(dt.timedelta(hours=7))  # the HIS's local time


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "str" | "int"
    max_len: int
    required: bool = False
    pattern: str | None = None  # a full-match regex for non-empty values


_STAMP = r"[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])([01][0-9]|2[0-3])[0-5][0-9]"
_BIRTH = r"[0-9]{4}(0[0-9]|1[0-2])([0-2][0-9]|3[01])0000"  # unknown month or day: 00
_DAY = r"[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"

FIELDS: tuple[Field, ...] = (
    Field("MA_LK", "str", 100, True),
    Field("STT", "int", 10, True, r"[1-9][0-9]*"),
    Field("MA_BN", "str", 100, True),
    Field("HO_TEN", "str", 255, True),
    Field("SO_CCCD", "str", 15, True, r"[0-9]{12}"),
    Field("NGAY_SINH", "str", 12, True, _BIRTH),
    Field("GIOI_TINH", "int", 1, True, r"[123]"),
    Field("MA_THE_BHYT", "str", 15, False, r"[A-Z]{2}[1-5][0-9]{12}"),
    Field("MA_DKBD", "str", 5, False, r"[0-9]{5}"),
    Field("GT_THE_TU", "str", 8, False, _DAY),
    Field("GT_THE_DEN", "str", 8, False, _DAY),
    Field("MA_DOITUONG_KCB", "str", 4, True, r"[0-9.]{1,4}"),
    Field("NGAY_VAO", "str", 12, True, _STAMP),
    Field("NGAY_VAO_NOI_TRU", "str", 12, False, _STAMP),
    Field("LY_DO_VNT", "str", 1024),
    Field("MA_LY_DO_VNT", "str", 5),
    Field("MA_LOAI_KCB", "str", 2, True, r"0[1-9]"),
    Field("MA_CSKCB", "str", 5, True, r"[0-9]{5}"),
    Field("MA_DICH_VU", "str", 50),
    Field("TEN_DICH_VU", "str", 1024),
    Field("MA_THUOC", "str", 255),
    Field("TEN_THUOC", "str", 1024),
    Field("MA_VAT_TU", "str", 255),
    Field("TEN_VAT_TU", "str", 1024),
    Field("NGAY_YL", "str", 12, False, _STAMP),
    Field("DU_PHONG", "str", 1024),
)
NAMES = tuple(f.name for f in FIELDS)


class Xml0Error(ValueError):
    """A row that does not follow the table; the message names the field."""


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(VN).strftime("%Y%m%d%H%M")


def _yyyymmdd(iso: str | None) -> str:
    return "" if not iso else dt.date.fromisoformat(iso).strftime("%Y%m%d")


def row_for(
    event: Mapping[str, Any],
    stt: int,
    person: Mapping[str, Any] | None,
    record: Mapping[str, Any] | None,
    facility: str,
) -> dict[str, str] | None:
    """The XML0 row of one stored check-in event; None when it let no one in or carries no identity.

    ``person``: the verified identity the hub holds for that ID number (full_name, birth ISO, sex M/F);
    ``record``: the insurer's record as the lookup answered it (card_number, facility_code, valid_from/to).
    """
    body = event.get("body") or {}
    id_number = body.get("id_number")
    if event.get("type") != "checkin" or not id_number or body.get("outcome") not in (
        "admitted", "admitted_provisional"
    ) or person is None or not person.get("full_name"):  # fmt: skip
        return None
    birth = person.get("birth")
    sex = {"M": "1", "F": "2"}.get(str(person.get("sex")), "3")
    insured = record is not None and body.get("eligibility", {}).get("card_number") is not None
    arrived = dt.datetime.fromtimestamp(float(event["time"]["wall"]), dt.UTC)
    row = dict.fromkeys(NAMES, "")
    row.update(
        MA_LK=str(event["id"]),
        STT=str(stt),
        MA_BN=str(id_number),
        HO_TEN=str(person["full_name"]),
        SO_CCCD=str(id_number),
        NGAY_SINH=(dt.date.fromisoformat(birth).strftime("%Y%m%d") if birth else "00000000") + "0000",
        GIOI_TINH=sex,
        MA_DOITUONG_KCB="3",
        NGAY_VAO=_stamp(arrived),
        MA_LOAI_KCB="01",  # outpatient examination
        MA_CSKCB=facility,
    )
    if insured and record is not None:
        card = str(body["eligibility"]["card_number"])
        row.update(
            MA_THE_BHYT=card,
            MA_DKBD=str(record["facility_code"]),
            GT_THE_TU=_yyyymmdd(str(record["valid_from"])),
            GT_THE_DEN=_yyyymmdd(str(record["valid_to"])),
            MA_DOITUONG_KCB="1" if record["facility_code"] == facility else "2",
        )
    return row


def validate_row(row: Mapping[str, str]) -> None:
    """Every field of the table: present, type, length, required, format.  Raises :class:`Xml0Error`."""
    extra = set(row) - set(NAMES)
    if extra:
        raise Xml0Error(f"unknown field {sorted(extra)[0]}")
    for f in FIELDS:
        if f.name not in row:
            raise Xml0Error(f"{f.name}: missing")
        value = row[f.name]
        if not isinstance(value, str):
            raise Xml0Error(f"{f.name}: not text")
        if not value:
            if f.required:
                raise Xml0Error(f"{f.name}: required")
            continue
        if len(value) > f.max_len:
            raise Xml0Error(f"{f.name}: longer than {f.max_len}")
        if f.kind == "int" and not value.isdigit():
            raise Xml0Error(f"{f.name}: not a number")
        if f.pattern is not None and not re.fullmatch(f.pattern, value):
            raise Xml0Error(f"{f.name}: wrong format")
    if row["GT_THE_TU"] and row["GT_THE_DEN"] and row["GT_THE_TU"] > row["GT_THE_DEN"]:
        raise Xml0Error("GT_THE_TU: after GT_THE_DEN")
    if bool(row["MA_THE_BHYT"]) != bool(row["GT_THE_DEN"]):
        raise Xml0Error("MA_THE_BHYT: card and its validity go together")


def export_day(rows: Iterable[Mapping[str, str]], path: Path) -> int:
    """Write a day's rows as one XML file (UTF-8); every row is validated first.  The count written."""
    root = ET.Element("XML0")
    items = ET.SubElement(root, "DSACH_CHECKIN")
    count = 0
    for row in rows:
        validate_row(row)
        item = ET.SubElement(items, "CHECKIN")
        for name in NAMES:
            ET.SubElement(item, name).text = row[name]
        count += 1
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return count


def read_file(path: Path) -> list[dict[str, str]]:
    """A day's file back into rows (for the validator and the HIS side of tests)."""
    root = ET.parse(path).getroot()  # noqa: S314 -- our own file, written by export_day
    return [{child.tag: child.text or "" for child in item} for item in root.iter("CHECKIN")]
