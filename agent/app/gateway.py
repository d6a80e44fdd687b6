"""The social-insurance gateway's language: its lookup answer, and the one table from result code to findings.

Hospital systems check a card with the gateway's lookup ``KQNhanLichSuKCB2024``
(CV 1923/BHXH-CNTT, 2024, appendix 03).  The gate never calls it (only registered
addresses and per-officer accounts may): the hub does, and forwards the answer in
the gateway's own shape (``maKetQua``, ``ghiChu``, ``maThe``, ``hoTen``, ``ngaySinh``,
``gioiTinh``, ``maDKBD``, ``gtTheTu``, ``gtTheDen``, ``maKV``, ``maTheMoi`` ...).  This
module reads that answer and says what each result code means for the gate:
:data:`TABLE` is the ONE mapping from code to policy findings (``docs/national-systems.md``
prints it), so the policy, the docs and the tests cannot disagree.

Fail closed: a code that is not in the table, an answer that does not parse, or a
code that says the lookup itself failed (100/101 server, 054/055 officer, 205
parameter, 401 authentication) is *no answer*: the gate falls back to its cache
and, without one, to ``ELIGIBILITY_UNKNOWN``; it never reads "valid" into it.

Pure: no I/O, no logging of the answer (it holds a name and a birth date).
Findings are named by their :class:`agent.app.policy.Finding` values; the policy
checks every name in the table when it is imported.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import GateAgentError
from agent.model import Discrepancy, Identity, InsuranceRecord


class GatewayDataError(GateAgentError):
    """A gateway answer that does not have the documented shape; the message names the field, never its value."""


@dataclass(frozen=True)
class CodeRule:
    """What one group of result codes means at the gate."""

    codes: tuple[str, ...]
    meaning: str  # as the gateway documents it
    findings: tuple[str, ...]  # agent.app.policy.Finding values
    #: the gateway answered about this person (False: the lookup failed; the cache decides)
    answered: bool = True
    #: the answer describes a card, so the card's dates and registered facility are checked too
    has_card: bool = False
    #: which identity field the gateway found wrong: a discrepancy event carries the chip's value
    mismatch: str | None = None
    #: the card fields come from the new card (maTheMoi, gtTheTuMoi, gtTheDenMoi, maDKBDMoi)
    new_card: bool = False


#: result code -> meaning -> findings: the one table (CV 1923/BHXH-CNTT appendix 03 lists the codes)
TABLE: tuple[CodeRule, ...] = (
    CodeRule(("000",), "card valid", (), has_card=True),
    CodeRule(("001", "002"), "card managed by the army / the police", ("INSURANCE_OTHER_AGENCY",)),
    CodeRule(("003",), "old card expired, new card issued", ("INSURANCE_CARD_REPLACED",), has_card=True,
             new_card=True),
    CodeRule(("004",), "old card still valid, new card issued", ("INSURANCE_CARD_REPLACED",), has_card=True,
             new_card=True),
    CodeRule(("010",), "card expired", ("INSURANCE_EXPIRED",)),
    CodeRule(("050",), "no card found", ("NOT_INSURED",)),
    CodeRule(("051", "052", "053"), "wrong card code / province / benefit digits", ("INSURANCE_CARD_CODE_WRONG",)),
    CodeRule(("054", "055"), "lookup officer's CCCD not registered / name mismatch", ("ELIGIBILITY_UNKNOWN",),
             answered=False),
    CodeRule(("060", "061"), "name does not match the card", ("RECORD_MISMATCH",), has_card=True,
             mismatch="full_name"),
    CodeRule(("070",), "birth date does not match the card", ("RECORD_MISMATCH",), has_card=True,
             mismatch="birth"),
    CodeRule(("100", "101"), "gateway data / server error", ("ELIGIBILITY_UNKNOWN",), answered=False),
    CodeRule(("110",), "card revoked", ("INSURANCE_REVOKED",)),
    CodeRule(("120", "121", "122", "123", "124"), "participant reported reduced (left the scheme)",
             ("INSURANCE_REDUCED",)),
    CodeRule(("130",), "child under 6 without a card (temporary card)", ("CHILD_WITHOUT_CARD",)),
    CodeRule(("205",), "bad request parameter", ("ELIGIBILITY_UNKNOWN",), answered=False),
    CodeRule(("401",), "gateway authentication failed", ("ELIGIBILITY_UNKNOWN",), answered=False),
)  # fmt: skip

#: any other code: no answer, fail closed
UNKNOWN = CodeRule((), "unknown result code", ("ELIGIBILITY_UNKNOWN",), answered=False)

_BY_CODE: dict[str, CodeRule] = {code: rule for rule in TABLE for code in rule.codes}

#: the participant category from the card code's first two letters (the object code on the card)
CATEGORY_BY_PREFIX: dict[str, str] = {
    "DN": "enterprise_employees",
    "HC": "civil_servants",
    "HT": "pensioners",
    "TE": "children_under_6",
    "HS": "pupils",
    "SV": "students",
    "GD": "household_health_insurance",
    "TN": "voluntary_social_insurance",
}

_CODE = re.compile(r"[0-9]{3}")
_CARD = re.compile(r"[A-Z]{2}[1-5][0-9]{2}[0-9]{10}")  # object code, benefit digit, province, number
_FACILITY = re.compile(r"[0-9]{5}")


def rule_for(code: str) -> CodeRule:
    """The table's rule for ``code``; :data:`UNKNOWN` for anything else (fail closed)."""
    return _BY_CODE.get(code, UNKNOWN)


@dataclass(frozen=True)
class GatewayAnswer:
    """One lookup answer as the gate uses it."""

    code: str
    rule: CodeRule
    #: the card the answer describes (the new card for 003/004); None when the code names no card
    record: InsuranceRecord | None

    def __repr__(self) -> str:
        return f"GatewayAnswer({self.code}, <redacted>)"


def mismatch_discrepancies(code: str | None, identity: Identity) -> tuple[Discrepancy, ...]:
    """For 060/061/070: the field the gateway found wrong, with the verified identity's value."""
    field = rule_for(code).mismatch if code is not None else None
    if field == "full_name" and identity.full_name:
        return (Discrepancy("full_name", unicodedata.normalize("NFC", identity.full_name)),)
    if field == "birth" and identity.birth is not None:
        return (Discrepancy("birth", identity.birth.isoformat()),)
    return ()


def parse_date(value: object, name: str, *, year_only: bool = False) -> dt.date:
    """The gateway's ``dd/mm/yyyy`` (a birth date may be a bare ``yyyy`` when only the year is known)."""
    if not isinstance(value, str):
        raise GatewayDataError(f"gateway field {name}: not text")
    text = value.strip()
    try:
        if year_only and re.fullmatch(r"[0-9]{4}", text):
            return dt.date(int(text), 1, 1)
        if not re.fullmatch(r"[0-9]{2}/[0-9]{2}/[0-9]{4}", text):
            raise ValueError
        return dt.date(int(text[6:]), int(text[3:5]), int(text[:2]))
    except ValueError:
        raise GatewayDataError(f"gateway field {name}: not a dd/mm/yyyy date") from None


def format_date(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


def parse_sex(value: object) -> str | None:
    """``Nam`` / ``Nữ`` (any case, any Unicode form) or 1 / 2 -> "M" / "F"; None when absent."""
    if value is None or value == "":
        return None
    text = " ".join(unicodedata.normalize("NFC", str(value)).casefold().split())
    if text in ("nam", "1"):
        return "M"
    if text in ("nữ", "2"):
        return "F"
    raise GatewayDataError("gateway field gioiTinh: must be Nam or Nữ")


def _card(item: Mapping[str, Any], id_number: str, new: bool) -> InsuranceRecord:
    suffix = "Moi" if new else ""
    card = item.get(f"maThe{suffix}")
    if not isinstance(card, str) or not _CARD.fullmatch(card):
        raise GatewayDataError(f"gateway field maThe{suffix}: not a 15-character card code")
    facility = item.get(f"maDKBD{suffix}")
    if not isinstance(facility, str) or not _FACILITY.fullmatch(facility):
        raise GatewayDataError(f"gateway field maDKBD{suffix}: not a 5-digit facility code")
    valid_from = parse_date(item.get(f"gtTheTu{suffix}"), f"gtTheTu{suffix}")
    valid_to = parse_date(item.get(f"gtTheDen{suffix}"), f"gtTheDen{suffix}")
    name = item.get("hoTen")
    birth = item.get("ngaySinh")
    return InsuranceRecord(
        id_number=id_number,
        card_number=card,
        valid_from=valid_from,
        valid_to=valid_to,
        facility_code=facility,
        benefit_level=int(card[2]),
        category=CATEGORY_BY_PREFIX.get(card[:2], "other"),
        full_name=name if isinstance(name, str) and name else None,
        birth=None if birth in (None, "") else parse_date(birth, "ngaySinh", year_only=True),
        sex=parse_sex(item.get("gioiTinh")),
    )


def parse_answer(item: object, id_number: str) -> GatewayAnswer:
    """A ``KQNhanLichSuKCB2024`` answer -> the code's rule and the card it describes.

    Raises :class:`GatewayDataError` when the answer lacks what its own code promises
    (a card for 000/003/004/060/061/070); the caller treats that as no answer.
    """
    if not isinstance(item, Mapping):
        raise GatewayDataError("gateway answer is not a map")
    code = item.get("maKetQua")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise GatewayDataError("gateway field maKetQua: not a 3-digit code")
    rule = rule_for(code)
    record = _card(item, id_number, rule.new_card) if rule.has_card else None
    return GatewayAnswer(code, rule, record)


def answer_from_record(record: InsuranceRecord, code: str = "000") -> dict[str, Any]:
    """An insurance record in the gateway's response shape (for the hub simulator and tests)."""
    return {
        "maKetQua": code,
        "ghiChu": rule_for(code).meaning,
        "maThe": record.card_number,
        "hoTen": record.full_name,
        "ngaySinh": format_date(record.birth) if record.birth else "",
        "gioiTinh": {"M": "Nam", "F": "Nữ"}.get(record.sex or "", ""),
        "maDKBD": record.facility_code,
        "gtTheTu": format_date(record.valid_from),
        "gtTheDen": format_date(record.valid_to),
    }
