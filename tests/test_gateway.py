"""The social-insurance gateway's language: every result code through the one table, the answer's shape, fail closed."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from agent.app import gateway
from agent.app.eligibility import EligibilityCache, EligibilityChain, record_to_dict
from agent.app.gateway import GatewayDataError, parse_answer, parse_date, parse_sex, rule_for
from agent.app.policy import GATEWAY_FINDINGS, Finding, Outcome, Policy, findings
from agent.model import (
    Assurance,
    CheckinFacts,
    Eligibility,
    EligibilitySource,
    FingerFacts,
    FingerStatus,
    InsuranceRecord,
)
from sim.hub.gateway import ALL_CODES, GatewaySim, card_code
from tests.flow_fakes import PERSON

TODAY = dt.date(2026, 11, 30)
RECORD = {
    "id_number": PERSON.id_number, "card_number": "GD4010123456789", "valid_from": "2026-01-01",
    "valid_to": "2026-12-31", "facility_code": "01001", "benefit_level": 4, "category": "other",
    "full_name": "Nguyễn Văn An", "birth": "1990-05-17", "sex": "M",
}  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent


def sim(**kw: Any) -> GatewaySim:
    return GatewaySim({PERSON.id_number: RECORD}, today=TODAY, **kw)


def ask(g: GatewaySim, name: str | None = "Nguyễn Văn An", birth: str | None = "17/05/1990") -> dict[str, Any]:
    request: dict[str, Any] = {"maThe": PERSON.id_number}
    if name is not None:
        request["hoTen"] = name
    if birth is not None:
        request["ngaySinh"] = birth
    return g.lookup(request)


def decide(answer: dict[str, Any], assurance: Assurance = Assurance.CHIP) -> tuple[list[Finding], Outcome]:
    parsed = parse_answer(answer, PERSON.id_number)
    elig = Eligibility(parsed.record, EligibilitySource.ONLINE, True, gateway_code=parsed.code)
    facts = CheckinFacts(PERSON, assurance, None, FingerFacts(FingerStatus.MATCH), elig, TODAY, "01001")
    found = findings(facts)
    return found, Policy.default().decide(facts).outcome


def test_the_table_covers_every_documented_code_once_and_names_real_findings() -> None:
    documented = ["000", "001", "002", "003", "004", "010", "050", "051", "052", "053", "054", "055", "060", "061",
                  "070", "100", "101", "110", "120", "121", "122", "123", "124", "130", "205", "401"]  # fmt: skip
    assert sorted(ALL_CODES) == documented
    assert len(set(ALL_CODES)) == len(ALL_CODES)
    for code in documented:
        assert GATEWAY_FINDINGS[code] == tuple(Finding(n) for n in rule_for(code).findings)
    assert rule_for("999") is gateway.UNKNOWN and not gateway.UNKNOWN.answered


def test_the_docs_print_the_same_table() -> None:
    doc = (ROOT / "docs" / "national-systems.md").read_text(encoding="utf-8")
    for rule in gateway.TABLE:
        row = next((line for line in doc.splitlines() if line.startswith(f"| {rule.codes[0]}")), None)
        assert row is not None, rule.codes
        for name in rule.findings:
            assert f"`{name}`" in row, (rule.codes, name)


@pytest.mark.parametrize(
    ("forced", "expected", "outcome"),
    [
        (None, [], Outcome.ADMITTED),
        ("001", [Finding.INSURANCE_OTHER_AGENCY], Outcome.REFER_DESK),
        ("003", [Finding.INSURANCE_CARD_REPLACED], Outcome.ADMITTED),
        ("004", [Finding.INSURANCE_CARD_REPLACED], Outcome.ADMITTED),
        ("051", [Finding.INSURANCE_CARD_CODE_WRONG], Outcome.REFER_DESK),
        ("110", [Finding.INSURANCE_REVOKED], Outcome.REFER_DESK),
        ("122", [Finding.INSURANCE_REDUCED], Outcome.REFER_DESK),
    ],
)
def test_forced_codes_map_through_the_table(forced: str | None, expected: list[Finding], outcome: Outcome) -> None:
    answer = ask(sim(forced={PERSON.id_number: forced} if forced else None))
    assert answer["maKetQua"] == (forced or "000")
    found, got = decide(answer)
    assert [f for f in found if f not in (Finding.OTHER_FACILITY,)] == expected
    assert got is outcome


def test_codes_that_follow_from_the_records() -> None:
    assert ask(sim(), name="NGUYỄN  VĂN  AN")["maKetQua"] == "000"  # NFC, case and spacing do not matter
    decomposed = "Nguye\u0302\u0303n Va\u0306n An"  # the same name in NFD, as some keyboards send it
    assert ask(sim(), name=decomposed)["maKetQua"] == "000"
    assert ask(sim(), name="Nguyen Van An")["maKetQua"] == "061"  # diacritics lost
    assert ask(sim(), name="Trần Văn An")["maKetQua"] == "060"
    assert ask(sim(), birth="18/05/1990")["maKetQua"] == "070"
    expired = GatewaySim({PERSON.id_number: dict(RECORD, valid_to="2026-06-30")}, today=TODAY)
    assert ask(expired)["maKetQua"] == "010"
    assert GatewaySim({}, today=TODAY).lookup({"maThe": PERSON.id_number})["maKetQua"] == "050"
    child = GatewaySim({}, children_without_card={PERSON.id_number}, today=TODAY)
    assert child.lookup({"maThe": PERSON.id_number})["maKetQua"] == "130"
    assert sim().lookup({"maThe": "12345"})["maKetQua"] == "205"
    down = sim()
    down.online = False
    assert ask(down)["maKetQua"] == "101"


def test_mismatch_codes_are_record_mismatch_with_the_verified_value() -> None:
    for name, birth, field in (("Nguyen Van An", "17/05/1990", "full_name"), ("Nguyễn Văn An", "01/01/1990", "birth")):
        answer = ask(sim(), name=name, birth=birth)
        found, outcome = decide(answer)
        assert Finding.RECORD_MISMATCH in found and outcome is Outcome.ADMITTED
        (disc,) = gateway.mismatch_discrepancies(answer["maKetQua"], PERSON)
        assert disc.field == field
    assert gateway.mismatch_discrepancies("000", PERSON) == ()


def test_expired_no_card_and_child_paths() -> None:
    expired = GatewaySim({PERSON.id_number: dict(RECORD, valid_to="2026-06-30")}, today=TODAY)
    assert decide(ask(expired)) == ([Finding.INSURANCE_EXPIRED], Outcome.REFER_DESK)
    assert decide({"maKetQua": "050"}) == ([Finding.NOT_INSURED], Outcome.REFER_DESK)
    found, outcome = decide({"maKetQua": "130"}, Assurance.MANUAL)
    assert found == [Finding.MANUAL_ENTRY, Finding.CHILD_WITHOUT_CARD] and outcome is Outcome.ADMITTED_PROVISIONAL


def test_a_replaced_card_is_judged_by_the_new_card() -> None:
    answer = ask(sim(forced={PERSON.id_number: "003"}))
    parsed = parse_answer(answer, PERSON.id_number)
    assert parse_date(answer["gtTheDen"], "gtTheDen") < TODAY  # the old card is over
    assert parsed.record is not None and parsed.record.valid_to == dt.date(TODAY.year, 12, 31)
    assert parsed.record.card_number == card_code(RECORD) and parsed.record.benefit_level == 4


class Hub:
    def __init__(self, answer: dict[str, Any] | None) -> None:
        self.answer = answer
        self.connected = True
        self.asked: list[Any] = []

    def query_eligibility(self, id_number: str, timeout: float, person: Any = None) -> dict[str, Any] | None:
        self.asked.append(person)
        return self.answer


def cached() -> EligibilityCache:
    now = dt.datetime.now(dt.UTC)
    c = EligibilityCache(dt.timedelta(hours=24))
    c.apply_snapshot([RECORD], now - dt.timedelta(hours=1))
    return c


@pytest.mark.parametrize("code", ["100", "101", "054", "055", "205", "401", "999"])
def test_a_failed_lookup_is_no_answer_the_cache_decides(code: str) -> None:
    chain = EligibilityChain(cached(), Hub({"record": None, "gateway": {"maKetQua": code}}))
    got = chain.lookup(PERSON.id_number, PERSON)
    assert got.source is EligibilitySource.CACHE and got.record is not None and got.gateway_code == code
    empty = EligibilityChain(EligibilityCache(), Hub({"record": None, "gateway": {"maKetQua": code}}))
    none = empty.lookup(PERSON.id_number, PERSON)
    facts = CheckinFacts(PERSON, Assurance.CHIP, None, FingerFacts(FingerStatus.MATCH), none, TODAY, "01001")
    assert none.source is EligibilitySource.NONE and findings(facts) == [Finding.ELIGIBILITY_UNKNOWN]


def test_a_malformed_answer_never_reads_as_valid() -> None:
    for bad in ({"maKetQua": "000"}, {"maKetQua": "000", **{k: v for k, v in ask(sim()).items() if k != "gtTheDen"}},
                {"maKetQua": "0"}, {"maKetQua": 0}, "000"):  # fmt: skip
        chain = EligibilityChain(EligibilityCache(), Hub({"record": None, "gateway": bad}))
        got = chain.lookup(PERSON.id_number, PERSON)
        assert got.source is EligibilitySource.NONE and got.record is None
    with pytest.raises(GatewayDataError, match="gtTheDen") as err:
        parse_answer({**ask(sim()), "gtTheDen": "2026-12-31"}, PERSON.id_number)
    assert "2026" not in str(err.value)  # the field is named, its value is not


def test_the_chain_sends_the_name_and_birth_date_the_gateway_compares() -> None:
    hub = Hub({"record": None, "gateway": ask(sim())})
    got = EligibilityChain(EligibilityCache(), hub).lookup(PERSON.id_number, PERSON)
    assert hub.asked == [{"hoTen": "Nguyễn Văn An", "ngaySinh": "17/05/1990"}]
    assert got.source is EligibilitySource.ONLINE and got.gateway_code == "000"
    assert got.record is not None and got.record.category == "household_health_insurance"


def test_dates_and_sex_in_the_gateways_formats() -> None:
    assert parse_date("05/01/2026", "x") == dt.date(2026, 1, 5)
    assert parse_date("1990", "ngaySinh", year_only=True) == dt.date(1990, 1, 1)
    for bad in ("2026-01-05", "32/01/2026", "1990", 20260105):
        with pytest.raises(GatewayDataError, match="x"):
            parse_date(bad, "x")
    assert (parse_sex("Nam"), parse_sex("NỮ"), parse_sex("Nu\u031b\u0303"), parse_sex("2"), parse_sex("")) == (
        "M", "F", "F", "F", None)  # fmt: skip
    with pytest.raises(GatewayDataError, match="gioiTinh"):
        parse_sex("X")


def test_every_answer_the_simulator_gives_parses_or_is_no_answer() -> None:
    for code in ALL_CODES:
        answer = ask(sim(forced={PERSON.id_number: code}))
        assert re.fullmatch(r"[0-9]{3}", answer["maKetQua"]) and answer["ghiChu"]
        parsed = parse_answer(answer, PERSON.id_number)
        assert parsed.code == code
        assert (parsed.record is not None) == parsed.rule.has_card


def test_the_record_types_stay_what_the_cache_stores() -> None:
    parsed = parse_answer(ask(sim()), PERSON.id_number)
    assert isinstance(parsed.record, InsuranceRecord)
    assert record_to_dict(parsed.record)["valid_to"] == "2026-12-31"
