"""Check-in policy: findings about a patient, an action per finding from the config, one decision.

The flow gathers facts (chip verification, fingerprint, eligibility); this module
turns them into *findings* (``PA_FAILED``, ``FINGER_NO_MATCH``, ``CACHE_STALE`` ...)
and looks up what the clinic's configuration says to do about each.  The most
severe action wins; the reason given to the patient is the finding that caused it.
No rule lives in code that a clinic might want to change: :data:`DEFAULT_ACTIONS`
is only the default of the ``[policy]`` table of the config.  The defaults refuse
only what suggests fraud (data or chip not genuine); an insurance problem sends the
patient to the desk, where a person can help (pay as uninsured, fix the record).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from agent.app.model import Assurance, CheckinFacts, EligibilitySource, FingerStatus
from agent.errors import ConfigError


class Outcome(enum.StrEnum):
    """What the gate shows, from least to most severe."""

    ADMITTED = "admitted"
    ADMITTED_PROVISIONAL = "admitted_provisional"
    REFER_DESK = "refer_desk"
    REFUSED = "refused"

    @property
    def severity(self) -> int:
        return list(Outcome).index(self)


#: action names in the config -> outcome
ACTIONS: dict[str, Outcome] = {
    "admit": Outcome.ADMITTED,
    "admit_provisional": Outcome.ADMITTED_PROVISIONAL,
    "refer_desk": Outcome.REFER_DESK,
    "refuse": Outcome.REFUSED,
}


class Finding(enum.StrEnum):
    PA_FAILED = "PA_FAILED"
    PA_NOT_CHECKED = "PA_NOT_CHECKED"
    CLONE_SUSPECTED = "CLONE_SUSPECTED"
    CARD_EXPIRED = "CARD_EXPIRED"
    FINGER_NO_MATCH = "FINGER_NO_MATCH"
    FINGER_NOT_CHECKED = "FINGER_NOT_CHECKED"
    FINGER_REQUIRED_NOT_CHECKED = "FINGER_REQUIRED_NOT_CHECKED"
    PACE_DOWNGRADE = "PACE_DOWNGRADE"
    CHIP_AUTH_NOT_RUN = "CHIP_AUTH_NOT_RUN"
    MANUAL_ENTRY = "MANUAL_ENTRY"
    NOT_INSURED = "NOT_INSURED"
    NOT_IN_CACHE = "NOT_IN_CACHE"
    ELIGIBILITY_UNKNOWN = "ELIGIBILITY_UNKNOWN"
    CACHE_STALE = "CACHE_STALE"
    INSURANCE_EXPIRED = "INSURANCE_EXPIRED"
    INSURANCE_NOT_YET_VALID = "INSURANCE_NOT_YET_VALID"
    OTHER_FACILITY = "OTHER_FACILITY"
    RECORD_MISMATCH = "RECORD_MISMATCH"


#: findings that only say a check could not be made: relaxing them to an admitting action lets an
#: unproven patient through, so ``gate-agent config check`` warns about it (see :func:`relaxations`)
FAIL_CLOSED: tuple[Finding, ...] = (
    Finding.PA_FAILED,
    Finding.CLONE_SUSPECTED,
    Finding.FINGER_NO_MATCH,
    Finding.FINGER_REQUIRED_NOT_CHECKED,
    Finding.PACE_DOWNGRADE,
    Finding.CHIP_AUTH_NOT_RUN,
)

#: config key (lower case) -> default action
DEFAULT_ACTIONS: dict[Finding, str] = {
    Finding.PA_FAILED: "refuse",
    Finding.PA_NOT_CHECKED: "admit",
    Finding.CLONE_SUSPECTED: "refuse",
    Finding.CARD_EXPIRED: "refer_desk",
    Finding.FINGER_NO_MATCH: "refer_desk",
    Finding.FINGER_NOT_CHECKED: "admit",
    Finding.FINGER_REQUIRED_NOT_CHECKED: "refer_desk",
    Finding.PACE_DOWNGRADE: "refuse",
    Finding.CHIP_AUTH_NOT_RUN: "refer_desk",
    Finding.MANUAL_ENTRY: "admit_provisional",
    Finding.NOT_INSURED: "refer_desk",
    Finding.NOT_IN_CACHE: "refer_desk",
    Finding.ELIGIBILITY_UNKNOWN: "admit_provisional",
    Finding.CACHE_STALE: "admit_provisional",
    Finding.INSURANCE_EXPIRED: "refer_desk",
    Finding.INSURANCE_NOT_YET_VALID: "refer_desk",
    Finding.OTHER_FACILITY: "admit",
    Finding.RECORD_MISMATCH: "admit",
}

#: human messages per reason: (Vietnamese, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "OK": ("Đã tiếp nhận. Mời vào.", "Checked in. Please go in."),
    Finding.PA_FAILED: (
        "Không xác thực được dữ liệu thẻ. Mời đến quầy tiếp đón.",
        "The card data could not be verified. Please go to the desk.",
    ),
    Finding.PA_NOT_CHECKED: ("Chưa xác thực được dữ liệu thẻ.", "The card data was not verified."),
    Finding.CLONE_SUSPECTED: (
        "Thẻ không hợp lệ (nghi thẻ giả). Mời đến quầy tiếp đón.",
        "This card is not genuine (suspected copy). Please go to the desk.",
    ),
    Finding.CARD_EXPIRED: ("Thẻ căn cước đã hết hạn. Mời đến quầy.", "The ID card has expired. Please go to the desk."),
    Finding.FINGER_NO_MATCH: (
        "Vân tay không khớp. Mời đến quầy tiếp đón.",
        "The fingerprint does not match. Please go to the desk.",
    ),
    Finding.FINGER_NOT_CHECKED: ("Chưa kiểm tra được vân tay.", "The fingerprint could not be checked."),
    Finding.FINGER_REQUIRED_NOT_CHECKED: (
        "Chưa kiểm tra được vân tay của chủ thẻ. Mời đến quầy tiếp đón.",
        "Your fingerprint was not checked against the card. Please go to the desk.",
    ),
    Finding.PACE_DOWNGRADE: (
        "Thẻ không hợp lệ (thiếu thông tin truy cập). Mời đến quầy tiếp đón.",
        "This card is not genuine (access information missing). Please go to the desk.",
    ),
    Finding.CHIP_AUTH_NOT_RUN: (
        "Chưa xác thực được chip của thẻ. Mời đến quầy tiếp đón.",
        "The card's chip could not be verified here. Please go to the desk.",
    ),
    Finding.MANUAL_ENTRY: (
        "Tiếp nhận theo số định danh nhập tay (tạm thời).",
        "Checked in by a typed ID number (provisional).",
    ),
    Finding.NOT_INSURED: (
        "Không tìm thấy thông tin thẻ BHYT. Mời đến quầy.",
        "No health insurance found. Please go to the desk.",
    ),
    Finding.NOT_IN_CACHE: (
        "Chưa tra cứu được thông tin BHYT. Mời đến quầy.",
        "Insurance could not be looked up. Please go to the desk.",
    ),
    Finding.ELIGIBILITY_UNKNOWN: (
        "Mất kết nối: tiếp nhận tạm thời, sẽ kiểm tra lại.",
        "Offline: provisional check-in, to be confirmed.",
    ),
    Finding.CACHE_STALE: (
        "Dữ liệu BHYT chưa cập nhật: tiếp nhận tạm thời.",
        "Insurance data is out of date: provisional check-in.",
    ),
    Finding.INSURANCE_EXPIRED: (
        "Thẻ BHYT đã hết hạn. Mời đến quầy.",
        "The health insurance has expired. Please go to the desk.",
    ),
    Finding.INSURANCE_NOT_YET_VALID: (
        "Thẻ BHYT chưa đến hạn sử dụng. Mời đến quầy.",
        "The health insurance is not valid yet. Please go to the desk.",
    ),
    Finding.OTHER_FACILITY: (
        "Đã tiếp nhận (đăng ký khám ban đầu ở nơi khác).",
        "Checked in (registered at another facility).",
    ),
    Finding.RECORD_MISMATCH: (
        "Đã tiếp nhận. Thông tin BHYT sẽ được đối chiếu lại.",
        "Checked in. Your insurance record will be corrected.",
    ),
}


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str  # a Finding value or "OK"
    findings: tuple[Finding, ...]

    @property
    def provisional(self) -> bool:
        return self.outcome is Outcome.ADMITTED_PROVISIONAL

    @property
    def message_vi(self) -> str:
        return MESSAGES[self.reason][0]

    @property
    def message_en(self) -> str:
        return MESSAGES[self.reason][1]


@dataclass(frozen=True)
class Policy:
    """Finding -> outcome, as configured."""

    actions: Mapping[Finding, Outcome]

    @classmethod
    def from_config(cls, table: Mapping[str, object], where: str = "policy") -> Policy:
        """Build from the ``[policy]`` table: ``finger_no_match = "refer_desk"`` etc.; unknown keys are errors."""
        actions = {finding: ACTIONS[name] for finding, name in DEFAULT_ACTIONS.items()}
        by_key = {finding.value.lower(): finding for finding in Finding}
        for key, value in table.items():
            if key not in by_key:
                raise ConfigError(f"{where}.{key}: unknown policy key (known: {', '.join(sorted(by_key))})")
            if not isinstance(value, str) or value not in ACTIONS:
                raise ConfigError(f"{where}.{key}: must be one of {', '.join(ACTIONS)}, not {value!r}")
            actions[by_key[key]] = ACTIONS[value]
        return cls(actions)

    @classmethod
    def default(cls) -> Policy:
        return cls.from_config({})

    def decide(self, facts: CheckinFacts, *, mismatched: bool = False) -> Decision:
        found = findings(facts, mismatched=mismatched)
        outcome, reason = Outcome.ADMITTED, "OK"
        for finding in found:
            action = self.actions[finding]
            if action.severity > outcome.severity:
                outcome, reason = action, finding.value
        if outcome is Outcome.ADMITTED and found:
            # admitted despite findings: say the first informative one (other facility, mismatch) to the patient
            reason = next((f.value for f in found if f in (Finding.OTHER_FACILITY, Finding.RECORD_MISMATCH)), "OK")
        return Decision(outcome, reason, tuple(found))


def relaxations(table: Mapping[str, object]) -> list[str]:
    """Warnings for a ``[policy]`` table that admits on a finding that must not admit by default.

    Each names the key, the action and why it matters; empty for the defaults.
    """
    out: list[str] = []
    for finding in FAIL_CLOSED:
        value = table.get(finding.value.lower())
        if isinstance(value, str) and value in ACTIONS and ACTIONS[value].severity < Outcome.REFER_DESK.severity:
            out.append(f"policy.{finding.value.lower()} = {value!r}: a patient whose card or finger was not proven "
                       f"genuine is admitted (default {DEFAULT_ACTIONS[finding]!r})")  # fmt: skip
    return out


def findings(facts: CheckinFacts, *, mismatched: bool = False) -> list[Finding]:
    """Everything noteworthy about this check-in, in a fixed order."""
    out: list[Finding] = []
    chip = facts.chip
    if facts.assurance is Assurance.MANUAL:
        out.append(Finding.MANUAL_ENTRY)
    if chip is not None:
        if chip.passive_auth is False:
            out.append(Finding.PA_FAILED)
        elif chip.passive_auth is None:
            out.append(Finding.PA_NOT_CHECKED)
        if chip.clone_suspected:
            out.append(Finding.CLONE_SUSPECTED)
        if "CARD_ACCESS_MISSING" in chip.rules:
            out.append(Finding.PACE_DOWNGRADE)
        if "CA_NOT_RUN" in chip.rules:
            out.append(Finding.CHIP_AUTH_NOT_RUN)
        if chip.card_expiry is not None and chip.card_expiry < facts.today:
            out.append(Finding.CARD_EXPIRED)
    if facts.finger.status is FingerStatus.NO_MATCH:
        out.append(Finding.FINGER_NO_MATCH)
    elif facts.finger.required and facts.finger.status is not FingerStatus.MATCH:
        out.append(Finding.FINGER_REQUIRED_NOT_CHECKED)
    elif facts.finger.status in (FingerStatus.NOT_CHECKED, FingerStatus.ERROR) and facts.assurance is Assurance.CHIP:
        out.append(Finding.FINGER_NOT_CHECKED)
    elig = facts.eligibility
    record = elig.record
    if record is None:
        if elig.source is EligibilitySource.ONLINE or (elig.source is EligibilitySource.CACHE and elig.fresh):
            out.append(Finding.NOT_INSURED if elig.source is EligibilitySource.ONLINE else Finding.NOT_IN_CACHE)
        elif elig.source is EligibilitySource.CACHE:
            out.append(Finding.CACHE_STALE)
        else:
            out.append(Finding.ELIGIBILITY_UNKNOWN)
    else:
        if elig.source is EligibilitySource.CACHE and not elig.fresh:
            out.append(Finding.CACHE_STALE)
        if record.valid_to < facts.today:
            out.append(Finding.INSURANCE_EXPIRED)
        elif record.valid_from > facts.today:
            out.append(Finding.INSURANCE_NOT_YET_VALID)
        if record.facility_code != facts.facility_code:
            out.append(Finding.OTHER_FACILITY)
    if mismatched:
        out.append(Finding.RECORD_MISMATCH)
    return out
