"""Access keys of the Vietnamese chip ID card (CCCD) from what a gate can know.

A CCCD's chip opens with PACE using the CAN, the last 6 digits of the 12-digit
personal ID number, or with BAC/PACE using the MRZ key.  The MRZ document number
is the last 9 digits of the ID number, so the MRZ key needs only the date of
birth and the date of expiry, and the expiry follows from the holder's age: the
card is valid until the birthday at 25, 40 or 60; a card issued within the two
years before one of these ages is valid until the next one; one issued from 58
on has no expiry (Law on Citizen Identification 2014, art. 21; kept by the Law on
Identification 2023, which adds renewal at 14 for cards issued to children).
So an attendant typing the ID number and date of birth, or the QR code printed
on the card front, is enough to open the chip.

The 12-digit number itself encodes the province of birth registration (3 digits),
the century and sex (1 digit: 0/1 male/female born 1900-1999, 2/3 for 2000-2099,
4/5 for 2100-2199 ...) and the last two digits of the birth year, which lets us
reject a mistyped date of birth before touching the chip.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from agent.card.errors import KeyDerivationError
from agent.card.keys import AccessKeys, MrzKey

#: Province codes of the personal ID number (Circular 07/2016/TT-BCA, annex), 63 provinces.
PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu", "079": "Hồ Chí Minh",
    "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long",
    "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang",
    "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}  # fmt: skip

#: ages at which a card must be renewed; 14 applies only to cards issued before 14 (2023 law)
MILESTONES = (14, 25, 40, 60)
#: a card issued this many years or less before a milestone stays valid to the next one
GRACE_YEARS = 2
#: the 2014 law issued cards from this age on; younger holders can have one only from 2024-07-01
ADULT_CARD_AGE = 14
CHILD_CARDS_FROM = dt.date(2024, 7, 1)
#: the first chip cards were issued in 2021
CHIP_CARDS_FROM = dt.date(2021, 1, 1)


def add_years(day: dt.date, years: int) -> dt.date:
    """``day`` shifted by whole years; 29 February becomes 1 March in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return dt.date(day.year + years, 3, 1)


def card_expiry(birth: dt.date, issued: dt.date) -> dt.date | None:
    """Expiry of a CCCD issued on ``issued`` to someone born on ``birth`` (None: no expiry)."""
    if issued < birth:
        raise KeyDerivationError("the issue date is before the date of birth", field="issued")
    for age in MILESTONES:
        if issued < add_years(birth, age - GRACE_YEARS):
            return add_years(birth, age)
    return None


def parse_ddmmyyyy(value: str, name: str) -> dt.date:
    """A date as printed on the card and in its QR code, ``ddmmyyyy`` (``dd/mm/yyyy`` accepted)."""
    digits = re.sub(r"[/.\-]", "", value.strip())
    if not re.fullmatch(r"[0-9]{8}", digits):
        raise KeyDerivationError(f"{name}: not a date ddmmyyyy", field=name)
    try:
        return dt.date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
    except ValueError:
        raise KeyDerivationError(f"{name}: not a valid date", field=name) from None


@dataclass(frozen=True)
class PersonalId:
    """A checked 12-digit personal ID number and what it encodes."""

    number: str = field(repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{12}", self.number):
            raise KeyDerivationError("the personal ID number must be exactly 12 digits", field="id_number")
        if self.number[:3] not in PROVINCE_CODES:
            raise KeyDerivationError(
                "the personal ID number does not start with a province code",
                field="id_number",
            )

    @property
    def province(self) -> str:
        return PROVINCE_CODES[self.number[:3]]

    @property
    def sex(self) -> str:
        """``"M"`` or ``"F"`` as the ID number encodes it."""
        return "F" if int(self.number[3]) % 2 else "M"

    @property
    def century(self) -> int:
        """First year of the birth century (1900, 2000, ...)."""
        return 1900 + 100 * (int(self.number[3]) // 2)

    @property
    def birth_year_suffix(self) -> str:
        return self.number[4:6]

    @property
    def document_number(self) -> str:
        """The MRZ document number: the last 9 digits."""
        return self.number[3:]

    @property
    def can(self) -> str:
        """The card access number: the last 6 digits."""
        return self.number[6:]

    def check_birth(self, birth: dt.date) -> None:
        if birth.year - self.century not in range(100) or f"{birth.year % 100:02d}" != self.birth_year_suffix:
            raise KeyDerivationError(
                "the date of birth does not match the ID number (its digits 4 to 6 encode the birth year)",
                field="birth",
            )


def _yymmdd(day: dt.date | None) -> str:
    return "<<<<<<" if day is None else day.strftime("%y%m%d")


def cccd_access_keys(
    id_number: str,
    birth: dt.date,
    issued: dt.date | None = None,
    today: dt.date | None = None,
) -> AccessKeys:
    """CAN and MRZ key candidates of a CCCD from its holder's ID number and date of birth.

    With the issue date the expiry is known and there is one MRZ key.  Without it,
    every expiry that a card issued between the first chip cards and ``today``
    could carry, and that has not passed, is a candidate, soonest first (most
    cards in use were issued recently).
    """
    pid = PersonalId(id_number)
    pid.check_birth(birth)
    today = today or dt.date.today()
    if issued is not None:
        if issued > today:
            raise KeyDerivationError("the issue date is in the future", field="issued")
        expiries: list[dt.date | None] = [card_expiry(birth, issued)]
    else:
        expiries = _possible_expiries(birth, today)
    keys = tuple(MrzKey(pid.document_number, birth.strftime("%y%m%d"), _yymmdd(e)) for e in expiries)
    return AccessKeys(can=pid.can, mrz_keys=keys)


def _possible_expiries(birth: dt.date, today: dt.date) -> list[dt.date | None]:
    first = max(CHIP_CARDS_FROM, birth)
    found: list[dt.date | None] = []
    # The expiry changes only at (milestone - GRACE_YEARS) birthdays and at the
    # dates children's cards became possible, so trying those points is enough.
    points = {first, today, CHILD_CARDS_FROM}
    points.update(add_years(birth, age - GRACE_YEARS) for age in MILESTONES)
    points.update(add_years(birth, age) for age in MILESTONES)
    for issued in sorted(p for p in points if first <= p <= today):
        if issued < CHILD_CARDS_FROM and issued < add_years(birth, ADULT_CARD_AGE):
            continue  # no card could be issued to a child before 2024-07-01
        expiry = card_expiry(birth, issued)
        if (expiry is None or expiry >= today) and expiry not in found:
            found.append(expiry)
    if not found:
        raise KeyDerivationError("no chip ID card can have been issued to a person of this age yet", field="birth")
    found.sort(key=lambda e: e or dt.date.max)
    return found


@dataclass(frozen=True)
class CardQr:
    """The QR code printed on the front of a CCCD: ``ID|old ID|name|ddmmyyyy|sex|address|issue ddmmyyyy``."""

    id_number: str = field(repr=False)
    old_id: str = field(repr=False)
    name: str = field(repr=False)
    birth: dt.date = field(repr=False)
    sex: str = field(repr=False)  # as printed: "Nam" / "Nữ"
    address: str = field(repr=False)
    issued: dt.date = field(repr=False)

    def access_keys(self, today: dt.date | None = None) -> AccessKeys:
        return cccd_access_keys(self.id_number, self.birth, self.issued, today)


def parse_card_qr(text: str) -> CardQr:
    """Parse the CCCD front QR code; errors name the field that is wrong."""
    parts = text.strip().split("|")
    if len(parts) < 7:
        raise KeyDerivationError(
            f"the card QR code has {len(parts)} fields separated by '|', expected 7 "
            "(ID|old ID|name|date of birth|sex|address|issue date)",
            field="qr",
        )
    id_number, old_id, name, birth, sex, address, issued = (p.strip() for p in parts[:7])
    pid = PersonalId(id_number)
    birth_date = parse_ddmmyyyy(birth, "birth")
    pid.check_birth(birth_date)
    if old_id and not re.fullmatch(r"[0-9]{9}", old_id):
        raise KeyDerivationError("the old ID number in the QR code must be 9 digits or empty", field="old_id")
    if sex not in ("Nam", "Nữ"):
        raise KeyDerivationError("sex in the QR code is not 'Nam' or 'Nữ'", field="sex")
    return CardQr(
        id_number=id_number,
        old_id=old_id,
        name=name,
        birth=birth_date,
        sex=sex,
        address=address,
        issued=parse_ddmmyyyy(issued, "issued"),
    )
