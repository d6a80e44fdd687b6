"""Policy: findings from facts, configured actions, the most severe wins."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.app.policy import MESSAGES, Decision, Finding, Outcome, Policy, findings
from agent.app.reconcile import normalise_name, reconcile
from agent.errors import ConfigError
from agent.model import (
    Assurance,
    CheckinFacts,
    ChipFacts,
    Eligibility,
    EligibilitySource,
    FingerFacts,
    FingerStatus,
    InsuranceRecord,
)
from tests.flow_fakes import PERSON

TODAY = dt.date(2026, 11, 24)
RECORD = InsuranceRecord(
    "001090012345",
    "DN4010112345678",
    dt.date(2026, 1, 1),
    dt.date(2026, 12, 31),
    "01001",
    4,
    "pupils",
    "Nguyễn Văn An",
    dt.date(1990, 5, 17),
    "M",
)

GENUINE = ChipFacts("PACE", True, chip_auth=True)


def facts(
    *,
    chip: ChipFacts | None = GENUINE,
    finger: FingerStatus = FingerStatus.MATCH,
    record: InsuranceRecord | None = RECORD,
    source: EligibilitySource = EligibilitySource.ONLINE,
    fresh: bool = True,
    assurance: Assurance = Assurance.CHIP,
    facility: str = "01001",
) -> CheckinFacts:
    return CheckinFacts(
        PERSON, assurance, chip, FingerFacts(finger, 80), Eligibility(record, source, fresh), TODAY, facility
    )


def decide(policy: Policy | None = None, **kw: object) -> Decision:
    return (policy or Policy.default()).decide(facts(**kw))  # type: ignore[arg-type]


def test_genuine_insured_patient_is_admitted() -> None:
    d = decide()
    assert (d.outcome, d.reason, d.findings) == (Outcome.ADMITTED, "OK", ())
    assert d.message_en.startswith("Checked in")


@pytest.mark.parametrize(
    ("kw", "outcome", "reason"),
    [
        ({"chip": ChipFacts("PACE", False, "signature")}, Outcome.REFUSED, "PA_FAILED"),
        ({"chip": ChipFacts("BAC", True, chip_auth=False)}, Outcome.REFUSED, "CLONE_SUSPECTED"),
        ({"chip": ChipFacts("BAC", True, active_auth=False)}, Outcome.REFUSED, "CLONE_SUSPECTED"),
        ({"finger": FingerStatus.NO_MATCH}, Outcome.REFER_DESK, "FINGER_NO_MATCH"),
        ({"record": None}, Outcome.REFER_DESK, "NOT_INSURED"),
        ({"record": None, "source": EligibilitySource.CACHE}, Outcome.REFER_DESK, "NOT_IN_CACHE"),
        (
            {"record": None, "source": EligibilitySource.CACHE, "fresh": False},
            Outcome.ADMITTED_PROVISIONAL,
            "CACHE_STALE",
        ),
        ({"source": EligibilitySource.CACHE, "fresh": False}, Outcome.ADMITTED_PROVISIONAL, "CACHE_STALE"),
        (
            {"record": None, "source": EligibilitySource.NONE, "fresh": False},
            Outcome.ADMITTED_PROVISIONAL,
            "ELIGIBILITY_UNKNOWN",
        ),
        (
            {"chip": None, "assurance": Assurance.MANUAL, "finger": FingerStatus.NOT_CHECKED},
            Outcome.ADMITTED_PROVISIONAL,
            "MANUAL_ENTRY",
        ),
        ({"facility": "79002"}, Outcome.ADMITTED, "OTHER_FACILITY"),
        ({"chip": ChipFacts("PACE", None)}, Outcome.REFER_DESK, "PA_NOT_CHECKED"),  # a check not made: fail closed
    ],
)
def test_default_policy(kw: dict[str, object], outcome: Outcome, reason: str) -> None:
    d = decide(**kw)
    assert (d.outcome, d.reason) == (outcome, reason)
    assert d.message_vi and d.message_en


def test_expired_insurance_and_not_yet_valid() -> None:
    old = InsuranceRecord("001090012345", "X", dt.date(2025, 1, 1), dt.date(2025, 12, 31), "01001", 4)
    assert decide(record=old).reason == "INSURANCE_EXPIRED"
    new = InsuranceRecord("001090012345", "X", dt.date(2027, 1, 1), dt.date(2027, 12, 31), "01001", 4)
    assert decide(record=new).reason == "INSURANCE_NOT_YET_VALID"


def test_most_severe_finding_wins_and_all_are_listed() -> None:
    d = decide(
        chip=ChipFacts("PACE", False, "hash:dg1"),
        finger=FingerStatus.NO_MATCH,
        source=EligibilitySource.CACHE,
        fresh=False,
    )
    assert d.outcome is Outcome.REFUSED and d.reason == "PA_FAILED"
    assert set(d.findings) == {Finding.PA_FAILED, Finding.FINGER_NO_MATCH, Finding.CACHE_STALE}


def test_config_changes_actions() -> None:
    lenient = Policy.from_config({"finger_no_match": "admit_provisional", "pa_failed": "refer_desk"})
    assert decide(lenient, finger=FingerStatus.NO_MATCH).outcome is Outcome.ADMITTED_PROVISIONAL
    assert decide(lenient, chip=ChipFacts("PACE", False)).outcome is Outcome.REFER_DESK
    strict = Policy.from_config({"finger_not_checked": "refer_desk"})
    assert decide(strict, finger=FingerStatus.ERROR).reason == "FINGER_NOT_CHECKED"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"finger_mismatch": "refuse"}, "policy.finger_mismatch: unknown policy key"),
        ({"pa_failed": "block"}, "must be one of"),
    ],
)
def test_bad_policy_config_names_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.from_config(table)


def test_every_finding_has_messages_in_both_languages() -> None:
    for finding in Finding:
        vi, en = MESSAGES[finding]
        assert vi and en and vi != en


def test_findings_for_manual_entry_do_not_blame_the_finger() -> None:
    assert Finding.FINGER_NOT_CHECKED not in findings(
        facts(chip=None, assurance=Assurance.MANUAL, finger=FingerStatus.NOT_CHECKED)
    )


def test_reconcile_agreeing_records() -> None:
    same = InsuranceRecord(
        "001090012345", "X", TODAY, TODAY, "01001", 4, full_name="NGUYỄN  VĂN AN", birth=dt.date(1990, 5, 17), sex="M"
    )
    assert reconcile(PERSON, same) == []


def test_reconcile_reports_chip_values_of_mismatched_fields() -> None:
    wrong = InsuranceRecord(
        "001090012399", "X", TODAY, TODAY, "01001", 4, full_name="Nguyen Van An", birth=None, sex="F"
    )
    got = {d.field: d.chip_value for d in reconcile(PERSON, wrong)}
    assert got == {"id_number": "001090012345", "full_name": "Nguyễn Văn An", "birth": "1990-05-17", "sex": "M"}
    assert "Nguy" not in repr(reconcile(PERSON, wrong))


def test_name_normalisation_keeps_diacritics() -> None:
    decomposed = "Nguye\u0302\u0303n"  # NFD form of Nguyễn
    assert normalise_name(decomposed) == normalise_name("NGUYỄN")
    assert normalise_name("Nguyen") != normalise_name("Nguyễn")


def test_mismatch_flag_becomes_a_finding() -> None:
    d = Policy.default().decide(facts(), mismatched=True)
    assert d.outcome is Outcome.ADMITTED and d.reason == "RECORD_MISMATCH"
