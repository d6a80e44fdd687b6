"""Access keys of a chip: the MRZ key (BAC, PACE with MRZ) and the CAN (PACE).

These values are personal data (they contain the date of birth and part of the
ID number): they never appear in ``repr`` or logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.card.errors import InputError

_DATE = re.compile(r"^[0-9]{6}$")


# ICAO 9303 Part 3, 4.9: weights 7, 3, 1 repeating; A..Z = 10..35; filler '<' = 0.
_WEIGHTS = (7, 3, 1)


def char_value(ch: str) -> int:
    """Numeric value of one MRZ character for check digits."""
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    if ch == "<":
        return 0
    raise InputError("a character is not allowed in a machine readable zone", field="mrz")


def check_digit(data: str) -> str:
    """The ICAO 9303 Part 3 check digit of ``data``, as a character."""
    return str(sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(data)) % 10)


@dataclass(frozen=True)
class MrzKey:
    """Document number, date of birth and date of expiry as they appear in the MRZ.

    ``expiry`` is ``"<<<<<<"`` for a card printed without an expiry date.
    """

    document_number: str = field(repr=False)
    birth: str = field(repr=False)  # YYMMDD
    expiry: str = field(repr=False)  # YYMMDD or <<<<<<

    def __post_init__(self) -> None:
        number = self.document_number.upper()
        if not number or not re.fullmatch(r"[0-9A-Z<]+", number):
            raise InputError("document number must be letters and digits", field="document_number")
        if not _DATE.match(self.birth):
            raise InputError("date of birth must be YYMMDD", field="birth")
        if not (_DATE.match(self.expiry) or self.expiry == "<<<<<<"):
            raise InputError("date of expiry must be YYMMDD", field="expiry")
        object.__setattr__(self, "document_number", number)

    @property
    def mrz_information(self) -> str:
        """ICAO 9303-11, 9.7.1 (BAC) / 4.4.1 (PACE): number + cd, birth + cd, expiry + cd.

        The document number is padded with fillers to the 9 characters of its MRZ
        field; a longer number is used whole (Part 11, 9.7.1.1).
        """
        number = self.document_number.ljust(9, "<")
        return (
            number + check_digit(number) + self.birth + check_digit(self.birth) + self.expiry + check_digit(self.expiry)
        )

    def __str__(self) -> str:
        return "MrzKey(***)"


@dataclass(frozen=True)
class AccessKeys:
    """Everything known to open a chip: a CAN and/or MRZ keys to try in order.

    For a CCCD whose issue date is unknown there can be more than one candidate
    MRZ key (the expiry depends on when the card was issued); the reader tries
    PACE with the CAN first, so the candidates matter only for the BAC fallback.
    """

    can: str | None = field(default=None, repr=False)
    mrz_keys: tuple[MrzKey, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.can is not None and not re.fullmatch(r"[0-9]{6}", self.can):
            raise InputError("CAN must be 6 digits", field="can")
        if self.can is None and not self.mrz_keys:
            raise InputError("no access key: give an MRZ, a document number with dates, an ID number or a CAN")

    def __str__(self) -> str:
        return f"AccessKeys(can={'yes' if self.can else 'no'}, mrz_keys={len(self.mrz_keys)})"
