"""Machine readable zones (ICAO 9303 Part 3, Part 4 for TD3, Part 5 for TD1).

Parses and validates TD1 (ID cards: 3 lines of 30) and TD3 (passports: 2 lines of
44), checking every check digit, and yields the access keys of the chip
(:class:`agent.card.keys.MrzKey`).  Errors name the field that is wrong, so an
attendant can re-scan or correct exactly that field.

Scanner input is tolerated the way OCR readers send it: lines separated by CR,
LF or both, surrounding whitespace, lower-case letters; or the whole zone as one
string of 90 (TD1) or 88 (TD3) characters.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

from agent.card.errors import MrzError
from agent.card.keys import MrzKey, check_digit

_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")

Format = Literal["TD1", "TD3"]


@dataclass(frozen=True)
class Mrz:
    """A validated MRZ.  Personal fields are hidden from ``repr`` (logs)."""

    format: Format
    document_code: str
    issuing_state: str
    document_number: str = field(repr=False)
    birth: str = field(repr=False)  # YYMMDD as printed
    sex: str = field(repr=False)  # "M", "F" or "<" (unspecified)
    expiry: str = field(repr=False)  # YYMMDD, or "<<<<<<" for a card without expiry
    nationality: str = field(repr=False)
    surname: str = field(repr=False)
    given_names: str = field(repr=False)
    optional_data: str = field(repr=False)  # TD1 line 1 optional data; TD3 personal number
    optional_data_2: str = field(repr=False)  # TD1 line 2 optional data; empty for TD3
    lines: tuple[str, ...] = field(repr=False)

    @property
    def key(self) -> MrzKey:
        """BAC / PACE-with-MRZ access key of the chip."""
        return MrzKey(self.document_number, self.birth, self.expiry)


#: an MRZ date field left empty (a card without expiry)
NO_DATE = "<<<<<<"


def yymmdd_from_date(day: dt.date | None) -> str:
    """A date as the MRZ prints it (``YYMMDD``); :data:`NO_DATE` for none."""
    return NO_DATE if day is None else day.strftime("%y%m%d")


def date_from_yymmdd(value: str, *, future: bool, today: dt.date | None = None) -> dt.date | None:
    """An MRZ date (``YYMMDD``) as a date; None when the field holds no date (``<<<<<<``, not a calendar day).

    The century is a guess: a birth date (``future=False``) is never after today; an
    expiry (``future=True``) may be up to 50 years ahead.
    """
    if not value.isdigit() or len(value) != 6:
        return None
    year = int(value[:2])
    today = today or dt.date.today()
    century = 2000 if (year + 2000 <= today.year + (50 if future else 0)) else 1900
    try:
        return dt.date(century + year, int(value[2:4]), int(value[4:6]))
    except ValueError:
        return None


@dataclass(frozen=True)
class MrzHolder:
    """Who an MRZ names, as the check-in needs it; personal data, hidden from ``repr``."""

    id_number: str = field(repr=False)
    full_name: str | None = field(repr=False)
    birth: dt.date | None = field(repr=False)
    sex: str | None = field(repr=False)  # "M" / "F"; None when the MRZ leaves it unspecified
    expiry: dt.date | None


def holder_from_mrz(mrz: Mrz, today: dt.date | None = None) -> MrzHolder:
    """The holder's identity fields from a TD1 or TD3 MRZ (DG1).

    A TD1 CCCD carries the 12-digit personal ID number at the start of the optional
    data of line 1 (its document number is only the last 9 digits), a passport its
    personal number in the optional data; when those (up to 12 characters) are not
    all digits, the document number identifies the holder.
    """
    head = mrz.optional_data[:12]
    number = head if head.isdigit() else mrz.document_number
    name = " ".join(p for p in (mrz.surname, mrz.given_names) if p)
    return MrzHolder(
        id_number=number,
        full_name=name or None,
        birth=date_from_yymmdd(mrz.birth, future=False, today=today),
        sex=mrz.sex if mrz.sex in ("M", "F") else None,
        expiry=date_from_yymmdd(mrz.expiry, future=True, today=today),
    )


def split_lines(text: str) -> list[str]:
    """Split scanner output into MRZ lines (upper-cased, blanks removed)."""
    raw = [re.sub(r"\s+", "", line).upper() for line in re.split(r"[\r\n]+", text.strip())]
    lines = [line for line in raw if line]
    if len(lines) == 1 and len(lines[0]) in (90, 88):
        one = lines[0]
        width = 30 if len(one) == 90 else 44
        lines = [one[i : i + width] for i in range(0, len(one), width)]
    return lines


def parse_mrz(text: str) -> Mrz:
    """Parse and validate a TD1 or TD3 machine readable zone."""
    lines = split_lines(text)
    for i, line in enumerate(lines, 1):
        bad = next((c for c in line if c not in _ALLOWED), None)
        if bad is not None:
            raise MrzError(f"line {i}: a character is not allowed (only A-Z, 0-9 and '<')", field=f"line{i}")
    shape = tuple(len(line) for line in lines)
    if shape == (30, 30, 30):
        return _parse_td1(lines)
    if shape == (44, 44):
        return _parse_td3(lines)
    if len(lines) == 2 and shape == (36, 36):
        raise MrzError("TD2 machine readable zones (2 lines of 36) are not supported", field="format")
    raise MrzError(
        "not a machine readable zone: expected 3 lines of 30 characters (TD1, ID card) "
        f"or 2 lines of 44 (TD3, passport), got line lengths {list(shape)}",
        field="format",
    )


def _verify(name: str, data: str, digit: str, *, filler_ok: bool = False) -> None:
    if filler_ok and digit == "<" and set(data) <= {"<"}:
        return
    if not "0" <= digit <= "9":
        raise MrzError(f"{name}: the check digit is not a digit", field=name)
    want = check_digit(data)
    if digit != want:
        raise MrzError(f"{name}: the check digit does not match", field=name)


def _verify_date(name: str, value: str, *, allow_empty: bool = False) -> None:
    if allow_empty and value == NO_DATE:
        return
    if not (len(value) == 6 and all("0" <= c <= "9" for c in value)):
        raise MrzError(f"{name}: not a date YYMMDD", field=name)
    try:
        dt.date(2000 + int(value[:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        raise MrzError(f"{name}: not a valid date YYMMDD", field=name) from None


def _verify_sex(value: str) -> None:
    if value not in ("M", "F", "<", "X"):
        raise MrzError("sex: not M, F or <", field="sex")


def _names(zone: str) -> tuple[str, str]:
    zone = zone.rstrip("<")
    surname, _, given = zone.partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def _parse_td1(lines: list[str]) -> Mrz:
    l1, l2, l3 = lines
    doc_field, doc_cd, opt1 = l1[5:14], l1[14], l1[15:30]
    if doc_cd == "<":
        # Part 5, 4.2.4 note j: a document number longer than 9 characters continues in
        # the optional data, followed by its check digit, then a filler.
        m = re.match(r"^([0-9A-Z]+)([0-9])<", opt1 + "<")
        if not m:
            raise MrzError("document number: extended number in the optional data is malformed", "document_number")
        document_number = doc_field + m.group(1)
        _verify("document_number", document_number, m.group(2))
        opt1_rest = opt1[len(m.group(0)) - 1 :]
    else:
        document_number = doc_field
        _verify("document_number", doc_field, doc_cd)
        opt1_rest = opt1
    birth, birth_cd, sex, expiry, expiry_cd = l2[0:6], l2[6], l2[7], l2[8:14], l2[14]
    _verify_date("birth", birth)
    _verify("birth", birth, birth_cd)
    _verify_sex(sex)
    _verify_date("expiry", expiry, allow_empty=True)
    _verify("expiry", expiry, expiry_cd)
    composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]
    _verify("composite", composite, l2[29])
    surname, given = _names(l3)
    return Mrz(
        format="TD1",
        document_code=l1[0:2].rstrip("<"),
        issuing_state=l1[2:5].rstrip("<"),
        document_number=document_number.rstrip("<"),
        birth=birth,
        sex=sex,
        expiry=expiry,
        nationality=l2[15:18].rstrip("<"),
        surname=surname,
        given_names=given,
        optional_data=opt1_rest.strip("<"),
        optional_data_2=l2[18:29].strip("<"),
        lines=(l1, l2, l3),
    )


def _parse_td3(lines: list[str]) -> Mrz:
    l1, l2 = lines
    _verify("document_number", l2[0:9], l2[9])
    birth, expiry = l2[13:19], l2[21:27]
    _verify_date("birth", birth)
    _verify("birth", birth, l2[19])
    _verify_sex(l2[20])
    _verify_date("expiry", expiry, allow_empty=True)
    _verify("expiry", expiry, l2[27])
    _verify("personal_number", l2[28:42], l2[42], filler_ok=True)
    composite = l2[0:10] + l2[13:20] + l2[21:43]
    _verify("composite", composite, l2[43])
    surname, given = _names(l1[5:44])
    return Mrz(
        format="TD3",
        document_code=l1[0:2].rstrip("<"),
        issuing_state=l1[2:5].rstrip("<"),
        document_number=l2[0:9].rstrip("<"),
        birth=birth,
        sex=l2[20],
        expiry=expiry,
        nationality=l2[10:13].rstrip("<"),
        surname=surname,
        given_names=given,
        optional_data=l2[28:42].strip("<"),
        optional_data_2="",
        lines=(l1, l2),
    )
