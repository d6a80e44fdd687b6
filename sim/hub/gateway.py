"""The social-insurance gateway's card lookup, as the hub calls it (``KQNhanLichSuKCB2024``).

Request (CV 1923/BHXH-CNTT, 2024, appendix 03): ``maThe`` (since 2025 the personal ID
number), ``hoTen``, ``ngaySinh`` and the lookup officer's ``hoTenCb`` / ``cccdCb``.
Answer: ``maKetQua``, ``ghiChu``, ``maThe``, ``hoTen``, ``ngaySinh``, ``gioiTinh``,
``diaChi``, ``maDKBD``, ``cqBHXH``, ``gtTheTu``, ``gtTheDen``, ``maKV``, ``ngayDu5Nam``,
``maSoBHXH``, ``maTheCu``, ``maTheMoi``, ``gtTheTuMoi``, ``gtTheDenMoi``, ``maDKBDMoi``,
``tenDKBDMoi``, ``dsLichSuKCB2018``, ``dsLichSuKT2018``; dates ``dd/mm/yyyy``.

The simulator answers from the insurer's records the hub holds (the eligibility data
of ``sim.clinic.patients.insurance_record``) and from a table of *forced* codes for
the cases the records cannot show by themselves (a card managed by the army, a new
card issued, a revoked card, a participant reported reduced, the gateway's own
errors).  Which codes a clinic run meets follows the simulated population
(``sim/clinic``): people without a record (050), mismatched names and birth dates
(060/061/070, from the official mismatch figures), children under 6 without a card
(130), expired cards (010).

Simulator choice (the public list says only "060/061 wrong name"): 061 when the names
agree once diacritics are dropped (the common data-entry fault), 060 otherwise.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from typing import Any

from agent.app.gateway import TABLE, format_date, rule_for
from agent.app.reconcile import normalise_name

#: every result code the gateway documents (the agent's table lists them all)
ALL_CODES: tuple[str, ...] = tuple(code for rule in TABLE for code in rule.codes)

#: the officer account the hub looks up with (054/055 are about it)
OFFICER = {"hoTenCb": "Nguyễn Thị Tiếp Đón", "cccdCb": "001190000001"}


def _plain(text: str) -> str:
    text = text.replace("Đ", "D").replace("đ", "d")
    return normalise_name("".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"))


def _date(value: str | None) -> str:
    return "" if not value else format_date(dt.date.fromisoformat(value))


def card_code(record: Mapping[str, Any]) -> str:
    """The 15-character card code with the record's benefit digit in third place (object, benefit, province)."""
    card = str(record["card_number"])
    return f"{card[:2]}{int(record['benefit_level'])}{card[3:]}"


class GatewaySim:
    """Answers lookups in the gateway's response shape."""

    def __init__(
        self,
        records: Mapping[str, Mapping[str, Any]],
        *,
        forced: Mapping[str, str] | None = None,
        children_without_card: set[str] | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.records = records  # ID number -> the insurer's record (sim.clinic.patients.insurance_record)
        self.forced = dict(forced or {})  # ID number -> result code
        self.children_without_card = set(children_without_card or ())
        self.today = today
        self.by_code: dict[str, int] = {}
        self.online = True  # False: the gateway is down (the hub answers 101)

    def lookup(self, request: Mapping[str, Any]) -> dict[str, Any]:
        answer = self._lookup(request)
        code = str(answer["maKetQua"])
        answer.setdefault("ghiChu", rule_for(code).meaning)
        self.by_code[code] = self.by_code.get(code, 0) + 1
        return answer

    def _lookup(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if not self.online:
            return {"maKetQua": "101"}
        number = request.get("maThe")
        if not isinstance(number, str) or not number.isdigit() or len(number) != 12:
            return {"maKetQua": "205"}
        forced = self.forced.get(number)
        record = self.records.get(number)
        if forced is not None and (forced not in ("000", "003", "004", "060", "061", "070") or record is not None):
            return self._answer(forced, record)
        if record is None:
            return {"maKetQua": "130" if number in self.children_without_card else "050"}
        today = self.today or dt.date.today()
        if dt.date.fromisoformat(str(record["valid_to"])) < today:
            return self._answer("010", record)
        name, birth = request.get("hoTen"), request.get("ngaySinh")
        if isinstance(name, str) and name and normalise_name(name) != normalise_name(str(record.get("full_name"))):
            return self._answer("061" if _plain(name) == _plain(str(record.get("full_name"))) else "060", record)
        if isinstance(birth, str) and birth and birth != _date(record.get("birth")):
            return self._answer("070", record)
        return self._answer("000", record)

    def _answer(self, code: str, record: Mapping[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"maKetQua": code}
        if record is None or code in ("050", "100", "101", "205", "401", "054", "055"):
            return out
        card = card_code(record)
        out.update(
            maThe=card,
            hoTen=record.get("full_name"),
            ngaySinh=_date(record.get("birth")),
            gioiTinh={"M": "Nam", "F": "Nữ"}.get(str(record.get("sex")), ""),
            maDKBD=record["facility_code"],
            gtTheTu=_date(str(record["valid_from"])),
            gtTheDen=_date(str(record["valid_to"])),
            maKV="",
            ngayDu5Nam="",
            maSoBHXH=str(record["id_number"])[-10:],
        )
        if code in ("003", "004"):
            today = self.today or dt.date.today()
            new_from = dt.date(today.year, 1, 1)
            new_to = dt.date(today.year, 12, 31)
            out.update(maTheMoi=card, gtTheTuMoi=format_date(new_from), gtTheDenMoi=format_date(new_to),
                       maDKBDMoi=record["facility_code"])  # fmt: skip
            if code == "003":  # the old card is over; the answer's old dates say so
                out.update(gtTheTu=format_date(new_from.replace(year=new_from.year - 1)),
                           gtTheDen=format_date(new_from - dt.timedelta(days=1)))  # fmt: skip
        return out
