"""Seeded, reproducible simulated people: Vietnamese names, ID numbers, dates, addresses.

A :class:`Person` carries everything the simulated devices need: what the chip
stores (DG1 MRZ, DG13 fields), what is printed on the card front (the QR code),
and what the health-insurance record holds.  The same ``seed`` and ``today``
always give the same person.

This module is the simulator's own: it does not import the agent's MRZ or key
code, so a misreading of the card format on one side cannot hide on the other.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field

# Circular 07/2016/TT-BCA province codes, in the order of the official statistics in shared data.
PROVINCES: tuple[tuple[str, str], ...] = (
    ("001", "Hà Nội"), ("002", "Hà Giang"), ("004", "Cao Bằng"), ("006", "Bắc Kạn"), ("008", "Tuyên Quang"),
    ("010", "Lào Cai"), ("011", "Điện Biên"), ("012", "Lai Châu"), ("014", "Sơn La"), ("015", "Yên Bái"),
    ("017", "Hòa Bình"), ("019", "Thái Nguyên"), ("020", "Lạng Sơn"), ("022", "Quảng Ninh"), ("024", "Bắc Giang"),
    ("025", "Phú Thọ"), ("026", "Vĩnh Phúc"), ("027", "Bắc Ninh"), ("030", "Hải Dương"), ("031", "Hải Phòng"),
    ("033", "Hưng Yên"), ("034", "Thái Bình"), ("035", "Hà Nam"), ("036", "Nam Định"), ("037", "Ninh Bình"),
    ("038", "Thanh Hóa"), ("040", "Nghệ An"), ("042", "Hà Tĩnh"), ("044", "Quảng Bình"), ("045", "Quảng Trị"),
    ("046", "Thừa Thiên Huế"), ("048", "Đà Nẵng"), ("049", "Quảng Nam"), ("051", "Quảng Ngãi"), ("052", "Bình Định"),
    ("054", "Phú Yên"), ("056", "Khánh Hòa"), ("058", "Ninh Thuận"), ("060", "Bình Thuận"), ("062", "Kon Tum"),
    ("064", "Gia Lai"), ("066", "Đắk Lắk"), ("067", "Đắk Nông"), ("068", "Lâm Đồng"), ("070", "Bình Phước"),
    ("072", "Tây Ninh"), ("074", "Bình Dương"), ("075", "Đồng Nai"), ("077", "Bà Rịa - Vũng Tàu"),
    ("079", "Hồ Chí Minh"), ("080", "Long An"), ("082", "Tiền Giang"), ("083", "Bến Tre"), ("084", "Trà Vinh"),
    ("086", "Vĩnh Long"), ("087", "Đồng Tháp"), ("089", "An Giang"), ("091", "Kiên Giang"), ("092", "Cần Thơ"),
    ("093", "Hậu Giang"), ("094", "Sóc Trăng"), ("095", "Bạc Liêu"), ("096", "Cà Mau"),
)  # fmt: skip

# Family names weighted roughly by their share of the population.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 38.0), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.1), ("Hoàng", 5.1), ("Huỳnh", 4.0),
    ("Phan", 4.5), ("Vũ", 3.9), ("Võ", 3.0), ("Đặng", 2.1), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3),
    ("Ngô", 1.3), ("Dương", 1.0), ("Lý", 0.5), ("Đinh", 0.6), ("Trương", 0.6), ("Lương", 0.4), ("Tạ", 0.3),
)  # fmt: skip
MIDDLE = {"M": ("Văn", "Đức", "Minh", "Quang", "Hữu", "Thành", "Công", "Xuân", "Tiến"),
          "F": ("Thị", "Ngọc", "Thu", "Thanh", "Thị", "Kim", "Hồng", "Thùy", "Bảo")}  # fmt: skip
GIVEN = {
    "M": ("An", "Bình", "Cường", "Dũng", "Hùng", "Hải", "Huy", "Khánh", "Long", "Nam", "Phúc", "Quân",
          "Sơn", "Thắng", "Tuấn", "Việt", "Đạt", "Hiếu", "Trung", "Tùng", "Khôi", "Lộc", "Đông", "Thịnh"),
    "F": ("Anh", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Ngân", "Nhung", "Phương", "Quỳnh",
          "Thảo", "Trang", "Tuyết", "Vân", "Yến", "Hằng", "Diệu", "Ánh", "Loan", "Giang", "Huyền", "Nguyệt"),
}  # fmt: skip
STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt", "Quang Trung",
           "Nguyễn Huệ", "Lê Duẩn", "Phan Đình Phùng", "Điện Biên Phủ", "Hùng Vương", "Bạch Đằng")  # fmt: skip
WARDS = ("Phường Bến Nghé", "Phường Tân Định", "Phường Hàng Bạc", "Phường Phú Hội", "Xã An Bình",
         "Xã Tân Lập", "Phường Quyết Thắng", "Thị trấn Phố Mới", "Xã Hòa Phước", "Phường Cầu Kho")  # fmt: skip
ETHNICITIES = (("Kinh", 85.3), ("Tày", 1.9), ("Thái", 1.9), ("Mường", 1.5), ("Khmer", 1.4), ("Hoa", 0.8),
               ("Nùng", 1.1), ("H'Mông", 1.5))  # fmt: skip
RELIGIONS = (("Không", 86.0), ("Phật giáo", 5.0), ("Công giáo", 6.0), ("Cao Đài", 1.5), ("Hòa Hảo", 1.5))
MARKS = ("Nốt ruồi C:2cm trên sau đầu lông mày trái", "Sẹo chấm C:1cm dưới trước mắt phải",
         "Nốt ruồi C:1,5cm dưới sau cánh mũi phải", "Sẹo chấm C:2cm trên trước đầu mày phải")  # fmt: skip

#: first chip CCCD issued; children under 14 can hold a card since the 2023 Law on Identification took effect
CHIP_CARDS_FROM = dt.date(2021, 1, 1)
CHILD_CARDS_FROM = dt.date(2024, 7, 1)


def ascii_upper(text: str) -> str:
    """Vietnamese text as the MRZ prints it: no diacritics, Đ as D, upper case."""
    text = text.replace("Đ", "D").replace("đ", "d")
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return stripped.upper()


def _cd(data: str) -> str:
    total = 0
    for pos, ch in enumerate(data):
        value = int(ch) if ch.isdigit() else (0 if ch == "<" else ord(ch) - 55)
        total += value * (7, 3, 1)[pos % 3]
    return str(total % 10)


def _birthday(birth: dt.date, age: int) -> dt.date:
    year = birth.year + age
    if birth.month == 2 and birth.day == 29:
        try:
            return dt.date(year, 2, 29)
        except ValueError:
            return dt.date(year, 3, 1)
    return dt.date(year, birth.month, birth.day)


def expiry_for(birth: dt.date, issued: dt.date) -> dt.date | None:
    """The card's validity: renew at 14, 25, 40, 60; issued within 2 years of one -> the next; none after 58."""
    age_at_issue = issued.year - birth.year - ((issued.month, issued.day) < (birth.month, birth.day))
    for renew_at in (14, 25, 40, 60):
        if age_at_issue < renew_at - 2:
            return _birthday(birth, renew_at)
    return None


@dataclass(frozen=True)
class Person:
    """One simulated person and their chip ID card (or passport)."""

    seed: int
    id_number: str
    old_id: str
    surname: str
    middle_name: str
    given_name: str
    sex: str  # "M" / "F"
    birth: dt.date
    issued: dt.date
    expiry: dt.date | None
    province_code: str
    hometown: str
    residence: str
    ethnicity: str
    religion: str
    marks: str
    father: str
    mother: str
    spouse: str | None
    passport_number: str = field(default="")

    @property
    def province(self) -> str:
        return dict(PROVINCES)[self.province_code]

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.surname, self.middle_name, self.given_name) if p)

    @property
    def given_names(self) -> str:
        return " ".join(p for p in (self.middle_name, self.given_name) if p)

    @property
    def sex_vi(self) -> str:
        return "Nam" if self.sex == "M" else "Nữ"

    @property
    def document_number(self) -> str:
        return self.id_number[3:]

    @property
    def can(self) -> str:
        return self.id_number[6:]

    @property
    def birth_yymmdd(self) -> str:
        return self.birth.strftime("%y%m%d")

    @property
    def expiry_yymmdd(self) -> str:
        return self.expiry.strftime("%y%m%d") if self.expiry else "<<<<<<"

    def _mrz_name(self, width: int) -> str:
        name = ascii_upper(self.surname) + "<<" + ascii_upper(self.given_names).replace(" ", "<")
        return name[:width].ljust(width, "<")

    def td1(self) -> tuple[str, str, str]:
        """The CCCD MRZ: document number = last 9 ID digits, the 12 digits start the optional data."""
        doc = self.document_number
        line1 = f"IDVNM{doc}{_cd(doc)}{self.id_number}".ljust(30, "<")
        line2 = (
            f"{self.birth_yymmdd}{_cd(self.birth_yymmdd)}{self.sex}{self.expiry_yymmdd}{_cd(self.expiry_yymmdd)}VNM"
        ).ljust(29, "<")
        composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
        return line1, line2 + _cd(composite), self._mrz_name(30)

    def passport_expiry(self) -> dt.date:
        return _birthday(self.issued, 10) - dt.timedelta(days=1)

    def td3(self) -> tuple[str, str]:
        """A Vietnamese passport MRZ (TD3), personal number = the 12-digit ID number."""
        number = self.passport_number.ljust(9, "<")
        expiry = self.passport_expiry().strftime("%y%m%d")
        personal = self.id_number.ljust(14, "<")
        line1 = f"P<VNM{self._mrz_name(39)}"
        body = (
            f"{number}{_cd(number)}VNM{self.birth_yymmdd}{_cd(self.birth_yymmdd)}{self.sex}"
            f"{expiry}{_cd(expiry)}{personal}{_cd(personal)}"
        )
        composite = body[0:10] + body[13:20] + body[21:43]
        return line1, body + _cd(composite)

    def qr(self) -> str:
        """The QR code printed on the card front."""
        return "|".join(
            (
                self.id_number,
                self.old_id,
                self.full_name,
                self.birth.strftime("%d%m%Y"),
                self.sex_vi,
                self.residence,
                self.issued.strftime("%d%m%Y"),
            )
        )

    def access_keys(self, profile: str = "cccd") -> dict[str, object]:
        """What a gate can be given to open the chip (the simulator's JSON ``keys``)."""
        if profile == "passport":
            expiry = self.passport_expiry().strftime("%y%m%d")
            return {
                "mrz": list(self.td3()),
                "document_number": self.passport_number,
                "birth": self.birth_yymmdd,
                "expiry": expiry,
                "can": None,
            }
        return {
            "mrz": list(self.td1()),
            "document_number": self.document_number,
            "birth": self.birth_yymmdd,
            "expiry": self.expiry_yymmdd,
            "can": self.can,
            "id_number": self.id_number,
            "birth_ddmmyyyy": self.birth.strftime("%d%m%Y"),
            "issued_ddmmyyyy": self.issued.strftime("%d%m%Y"),
            "qr": self.qr(),
        }

    def to_json(self) -> dict[str, object]:
        return {
            "id_number": self.id_number,
            "old_id": self.old_id,
            "full_name": self.full_name,
            "surname": self.surname,
            "given_names": self.given_names,
            "sex": self.sex,
            "birth": self.birth.isoformat(),
            "issued": self.issued.isoformat(),
            "expiry": self.expiry.isoformat() if self.expiry else None,
            "province": self.province,
            "residence": self.residence,
        }


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _full_name(rng: random.Random, sex: str, surname: str | None = None) -> tuple[str, str, str]:
    return surname or _weighted(rng, SURNAMES), rng.choice(MIDDLE[sex]), rng.choice(GIVEN[sex])


def _address(rng: random.Random, province: str) -> str:
    return f"Số {rng.randint(1, 299)}, {rng.choice(STREETS)}, {rng.choice(WARDS)}, {province}"


def make_person(
    seed: int,
    today: dt.date | None = None,
    *,
    min_age: int = 14,
    max_age: int = 90,
    province_code: str | None = None,
    sex: str | None = None,
) -> Person:
    """The person of ``seed`` (deterministic for the same seed, ``today`` and options)."""
    today = today or dt.date.today()
    rng = random.Random(f"person:{seed}")
    sex = sex or rng.choice("MF")
    age_days = rng.randint(min_age * 365 + 1, max_age * 365 + 364)
    birth = today - dt.timedelta(days=age_days)
    code = province_code or rng.choice(PROVINCES)[0]
    province = dict(PROVINCES)[code]
    century_digit = (birth.year // 100 - 19) * 2 + (1 if sex == "F" else 0)
    id_number = f"{code}{century_digit}{birth.year % 100:02d}{rng.randint(0, 999_999):06d}"
    first_issue = max(CHIP_CARDS_FROM, _birthday(birth, 14))
    if first_issue > today:
        first_issue = max(CHILD_CARDS_FROM, birth + dt.timedelta(days=1))
    issued = first_issue + dt.timedelta(days=rng.randint(0, max(0, (today - first_issue).days)))
    expiry = expiry_for(birth, issued)
    if expiry is not None and expiry <= today:
        # The card was renewed at the milestone: issue a fresh one after it.
        issued = expiry + dt.timedelta(days=rng.randint(0, max(0, (today - expiry).days)))
        expiry = expiry_for(birth, issued)
    surname, middle, given = _full_name(rng, sex)
    age = today.year - birth.year
    spouse = " ".join(_full_name(rng, "F" if sex == "M" else "M")) if age >= 22 and rng.random() < 0.7 else None
    return Person(
        seed=seed,
        id_number=id_number,
        old_id=f"{rng.randint(0, 999_999_999):09d}" if age >= 20 and rng.random() < 0.6 else "",
        surname=surname,
        middle_name=middle,
        given_name=given,
        sex=sex,
        birth=birth,
        issued=issued,
        expiry=expiry,
        province_code=code,
        hometown=f"{rng.choice(WARDS)}, {province}",
        residence=_address(rng, province),
        ethnicity=_weighted(rng, ETHNICITIES),
        religion=_weighted(rng, RELIGIONS),
        marks=rng.choice(MARKS),
        father=" ".join(_full_name(rng, "M", surname)),
        mother=" ".join(_full_name(rng, "F")),
        spouse=spouse,
        passport_number=f"{rng.choice('BCN')}{rng.randint(0, 9_999_999):07d}",
    )


def make_population(count: int, seed: int = 0, today: dt.date | None = None, **options: object) -> list[Person]:
    """``count`` people; person ``i`` is ``make_person(seed * 1_000_003 + i)``."""
    return [make_person(seed * 1_000_003 + i, today, **options) for i in range(count)]  # type: ignore[arg-type]
