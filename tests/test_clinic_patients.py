"""The clinic's patient mix follows the official figures and is reproducible."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from agent.app.eligibility import record_from_dict
from sim.card.variants import READ_ERROR, REGISTRY
from sim.clinic.patients import (
    ADMITTED,
    ATTACK_ROUND,
    ATTACKS,
    CARD_VARIANT,
    EXPECTED,
    NOT_READ,
    Kind,
    Mix,
    figures,
    insurance_record,
    make_attack_patients,
    make_patients,
    province_figures,
)

TODAY = dt.date(2026, 11, 24)


def test_figures_cover_every_province_and_add_up() -> None:
    table = figures()
    assert len(table) == 64  # 63 provinces and the national total
    national = table["Toàn quốc"]
    provinces = [f for name, f in table.items() if name != "Toàn quốc"]
    assert sum(sum(f.without_id.values()) for f in provinces) == sum(national.without_id.values()) == 16_607_529
    assert sum(sum(f.mismatch.values()) for f in provinces) == sum(national.mismatch.values()) == 1_521_878


def test_patients_are_reproducible_and_follow_the_province() -> None:
    a = make_patients(300, seed=4, province="Hà Giang", today=TODAY)
    b = make_patients(300, seed=4, province="Hà Giang", today=TODAY)
    assert [(p.kind, p.person.id_number) for p in a] == [(p.kind, p.person.id_number) for p in b]
    assert {p.person.id_number[:3] for p in a} == {"002"}  # Hà Giang's province code
    with pytest.raises(ValueError, match="unknown province"):
        make_patients(1, province="Atlantis")


def test_problem_split_follows_the_province_share() -> None:
    # Hà Nội: 2 137 003 without ID vs 146 088 mismatched -> ~94 % of problems are missing IDs
    share = province_figures("Hà Nội").missing_share
    assert 0.93 < share < 0.94
    patients = make_patients(4000, seed=1, province="Hà Nội", mix=Mix(problem_rate=0.5), today=TODAY)
    kinds = Counter(p.kind for p in patients)
    problems = kinds[Kind.RECORD_MISSING_ID] + kinds[Kind.RECORD_MISMATCH]
    assert abs(kinds[Kind.RECORD_MISSING_ID] / problems - share) < 0.03


def test_children_have_no_card_and_are_under_six() -> None:
    kids = [p for p in make_patients(500, seed=2, today=TODAY) if p.kind is Kind.CHILD_NO_CARD]
    assert kids and all(not p.has_card and p.category == "children_under_6" for p in kids)
    assert all((TODAY - p.person.birth).days < 6 * 366 for p in kids)


def test_records_are_valid_eligibility_data_with_the_planned_faults() -> None:
    patients = make_patients(400, seed=3, mix=Mix(problem_rate=0.3), today=TODAY)
    for p in patients:
        doc = insurance_record(p, "01001", TODAY)
        if p.kind in (Kind.UNINSURED, Kind.RECORD_MISSING_ID, Kind.CHILD_TEMP_CARD):  # no record to find
            assert doc is None
            continue
        assert doc is not None
        rec = record_from_dict(doc)
        same = (rec.full_name, rec.birth, rec.sex) == (p.person.full_name, p.person.birth, p.person.sex)
        assert same is (p.kind is not Kind.RECORD_MISMATCH)
        assert (rec.valid_to < TODAY) is (p.kind is Kind.EXPIRED)


def test_attack_patients_take_every_kind_in_turn_and_are_insured() -> None:
    patients = make_attack_patients(3 * len(ATTACK_ROUND), seed=5, today=TODAY)
    again = make_attack_patients(3 * len(ATTACK_ROUND), seed=5, today=TODAY)
    assert [(p.kind, p.person.id_number) for p in patients] == [(p.kind, p.person.id_number) for p in again]
    for start in range(0, len(patients), len(ATTACK_ROUND)):  # each round holds every kind once
        assert sorted(p.kind for p in patients[start : start + len(ATTACK_ROUND)]) == sorted(ATTACK_ROUND)
    assert [p.kind for p in patients[:9]] != list(ATTACK_ROUND)  # in a seeded order, not the table's
    assert {p.kind for p in make_attack_patients(4, seed=5, today=TODAY)} < set(ATTACK_ROUND)
    for p in patients:  # an attacker carries an insured person's card: only the gate's checks keep them out
        doc = insurance_record(p, "01001", TODAY)
        assert doc is not None and dt.date.fromisoformat(str(doc["valid_to"])) >= TODAY
        assert p.has_card and p.category != "children_under_6"
    assert {p.kind for p in patients} & ATTACKS == ATTACKS
    with pytest.raises(ValueError, match="at least one"):
        make_attack_patients(1, kinds=())


def test_card_variants_come_from_the_registry_and_attacks_are_never_expected_in() -> None:
    assert set(CARD_VARIANT.values()) <= set(REGISTRY)
    assert CARD_VARIANT[Kind.CLONE_HIDING] == "clone-hiding-dg14-dg15" and CARD_VARIANT[Kind.NO_SFI] == "no-sfi"
    assert set(EXPECTED) == set(Kind)
    for kind in ATTACKS:
        assert not set(EXPECTED[kind].outcomes) & set(ADMITTED), kind
    # a variant's expectation follows its conclusion in the registry
    assert REGISTRY[CARD_VARIANT[Kind.HOSTILE_OVERSIZE]].conclusion == READ_ERROR
    assert EXPECTED[Kind.HOSTILE_OVERSIZE].met(NOT_READ, "READ_FAILED")
    assert EXPECTED[Kind.HOSTILE_CHAINING].met("refused", "CLONE_SUSPECTED")  # a gate may take it for a copy
    assert not EXPECTED[Kind.HOSTILE_CHAINING].met(NOT_READ, "CLONE_SUSPECTED")  # outcome and reason pair up
    assert not EXPECTED[Kind.HOSTILE_CHAINING].met(None, None)  # no answer at all is not a stopped attack
    assert EXPECTED[Kind.NO_SFI].met("admitted", "OK") and EXPECTED[Kind.NO_SFI].met("admitted", "OTHER_FACILITY")
    assert EXPECTED[Kind.FINGER_WITHHELD].met("refer_desk", "FINGER_REQUIRED_NOT_CHECKED")
    assert not EXPECTED[Kind.FINGER_WITHHELD].met("refer_desk", "FINGER_NO_MATCH")
    assert not EXPECTED[Kind.CLONE_HIDING].met("refer_desk", "CLONE_SUSPECTED")
    assert EXPECTED[Kind.CLONE_HIDING].describe() == "refused CLONE_SUSPECTED or refused PACE_DOWNGRADE"
