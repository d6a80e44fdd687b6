"""CCCD access keys from ID number + date of birth (+ issue date), and from the card QR code."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.card.cccd import PersonalId, card_expiry, cccd_access_keys, parse_card_qr
from agent.card.errors import InputError, KeyDerivationError
from sim.population import make_population

D = dt.date.fromisoformat
TODAY = D("2026-11-22")


@pytest.mark.parametrize(
    ("birth", "issued", "expiry"),
    [
        ("1988-03-14", "2021-06-01", "2028-03-14"),  # age 33 -> valid to 40
        ("1988-03-14", "2026-03-13", "2028-03-14"),  # one day before 38: still to 40
        ("1988-03-14", "2026-03-14", "2048-03-14"),  # from 38 on: within 2 years of 40 -> to 60
        ("2004-05-02", "2021-02-01", "2029-05-02"),  # age 16 -> to 25
        ("2002-01-10", "2025-01-10", "2042-01-10"),  # exactly 23 -> within 2 years of 25 -> to 40
        ("1965-07-01", "2022-07-01", "2025-07-01"),  # age 57 -> to 60
        ("1964-07-01", "2022-07-01", None),  # age 58 -> no expiry
        ("2015-09-09", "2024-08-01", "2029-09-09"),  # a child's card (2023 law) -> to 14
        ("2012-09-09", "2024-09-10", "2037-09-09"),  # issued at 12: within 2 years of 14 -> to 25
    ],
)
def test_expiry_rule(birth: str, issued: str, expiry: str | None) -> None:
    assert card_expiry(D(birth), D(issued)) == (D(expiry) if expiry else None)


def test_keys_with_issue_date() -> None:
    keys = cccd_access_keys("001088012345", D("1988-03-14"), D("2021-06-01"), today=TODAY)
    assert keys.can == "012345"
    assert [k.mrz_information for k in keys.mrz_keys] == ["088012345" + "5" + "880314" + "8" + "280314" + "6"]


def test_keys_without_issue_date_list_the_possible_expiries_soonest_first() -> None:
    keys = cccd_access_keys("001088012345", D("1988-03-14"), today=TODAY)
    assert [k.expiry for k in keys.mrz_keys] == ["280314", "480314"]
    old = cccd_access_keys("079160000001", D("1960-01-01"), today=TODAY)
    assert [k.expiry for k in old.mrz_keys] == ["<<<<<<"]


@pytest.mark.parametrize(
    ("id_number", "birth", "field"),
    [
        ("00108801234", "1988-03-14", "id_number"),  # 11 digits
        ("999088012345", "1988-03-14", "id_number"),  # no such province
        ("001088012345", "1989-03-14", "birth"),  # year digits disagree
        ("001288012345", "1988-03-14", "birth"),  # century digit says 20xx
    ],
)
def test_inconsistent_input_names_the_field(id_number: str, birth: str, field: str) -> None:
    with pytest.raises(KeyDerivationError) as err:
        cccd_access_keys(id_number, D(birth), today=TODAY)
    assert err.value.field == field


def test_personal_id_decoding() -> None:
    pid = PersonalId("079301001234")
    assert (pid.province, pid.sex, pid.century, pid.document_number, pid.can) == (
        "Hồ Chí Minh",
        "F",
        2000,
        "301001234",
        "001234",
    )


def test_qr_code() -> None:
    qr = parse_card_qr("001088012345|012345678|Nguyễn Văn An|14031988|Nam|Số 1, Lê Lợi, Hà Nội|01062021")
    assert (qr.id_number, qr.name, qr.birth, qr.issued, qr.sex) == (
        "001088012345",
        "Nguyễn Văn An",
        D("1988-03-14"),
        D("2021-06-01"),
        "Nam",
    )
    keys = qr.access_keys(TODAY)
    assert keys.can == "012345" and keys.mrz_keys[0].expiry == "280314"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("001088012345|Nguyễn Văn An|14031988", "qr"),
        ("001088012345||Nguyễn Văn An|31021988|Nam|x|01062021", "birth"),
        ("001088012345||Nguyễn Văn An|14031988|Male|x|01062021", "sex"),
        ("001088012345|12|Nguyễn Văn An|14031988|Nam|x|01062021", "old_id"),
        ("001088012345||Nguyễn Văn An|14031988|Nam|x|2021-06-01", "issued"),
    ],
)
def test_bad_qr_names_the_field(text: str, field: str) -> None:
    with pytest.raises(KeyDerivationError) as err:
        parse_card_qr(text)
    assert err.value.field == field


def test_keys_rebuilt_from_qr_match_every_simulated_card() -> None:
    for person in make_population(500, seed=3, today=TODAY, min_age=0, max_age=95):
        keys = parse_card_qr(person.qr()).access_keys(TODAY)
        assert keys.can == person.can
        assert [k.expiry for k in keys.mrz_keys] == [person.expiry_yymmdd]
        without_issue = cccd_access_keys(person.id_number, person.birth, today=TODAY)
        assert person.expiry_yymmdd in [k.expiry for k in without_issue.mrz_keys]


@given(st.text(max_size=200))
def test_qr_parser_never_crashes(text: str) -> None:
    try:
        parse_card_qr(text)
    except InputError:
        pass
