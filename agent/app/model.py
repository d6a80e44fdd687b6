"""What the check-in flow knows about one patient at the gate.

These are the facts the policy decides on.  They are deliberately small: a chip
read produces far more (files, certificates, images), but the flow keeps only
what a decision and its event need (privacy by design: nothing else is stored).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Protocol


class Assurance(enum.StrEnum):
    """How the person was identified."""

    CHIP = "chip"  # read from the chip ID card (verified or not: see ChipFacts)
    MANUAL = "manual"  # ID number typed or scanned without a chip (children under 6, no card): lower assurance


class FingerStatus(enum.StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    NOT_CHECKED = "not_checked"  # no module, no reference on the chip (no EAC rights), or policy says skip
    ERROR = "error"  # the module failed or the patient walked away


@dataclass(frozen=True)
class Identity:
    """Who the chip (or the attendant) says this is; personal data, never logged in clear."""

    id_number: str
    full_name: str | None = None
    birth: dt.date | None = None
    sex: str | None = None  # "M" / "F"

    def __repr__(self) -> str:  # keep personal data out of logs and tracebacks
        return "Identity(<redacted>)"


#: downgrade rules that by themselves mean a copy (agent.card.read.RULES marks the same ones)
CLONE_RULES = frozenset({"DG14_WITHHELD", "DG15_WITHHELD", "CA_REQUIRED", "AA_REQUIRED"})


class FingerReference(Protocol):
    """One finger image of the chip's DG3, still encoded (``agent.card.dg3.FingerView`` is one)."""

    @property
    def image(self) -> bytes: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def compression(self) -> int: ...
    @property
    def pixel_depth(self) -> int: ...
    @property
    def resolution_ppi(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class ChipFacts:
    """The verification results of one chip read.  ``None`` means the step was not performed."""

    access: str | None  # "PACE" / "BAC"
    passive_auth: bool | None
    passive_auth_failed_step: str | None = None
    chip_auth: bool | None = None
    active_auth: bool | None = None
    card_expiry: dt.date | None = None
    #: DG3's first finger view, when Terminal Authentication opened it (matched, then dropped; never stored)
    finger_reference: FingerReference | None = field(default=None, repr=False)
    #: downgrade rules that fired (``agent.card.read.RULES``: DG14_WITHHELD, AA_REQUIRED, CARD_ACCESS_MISSING ...)
    rules: tuple[str, ...] = ()
    #: the chip's fingerprint reference is expected: EF.SOD lists DG3 and terminal credentials are configured
    finger_expected: bool = False

    @property
    def clone_suspected(self) -> bool:
        """A chip that fails (or avoids) the CA or AA its EF.SOD makes mandatory is not the original chip."""
        avoided = any(rule in CLONE_RULES for rule in self.rules)
        return self.chip_auth is False or self.active_auth is False or avoided


@dataclass(frozen=True)
class FingerFacts:
    status: FingerStatus
    score: int | None = None
    detail: str = ""
    #: the gate expected this finger: a module is configured and the chip's reference was due (ChipFacts)
    required: bool = False


@dataclass(frozen=True)
class InsuranceRecord:
    """One insured person as the hub's eligibility data describes them."""

    id_number: str
    card_number: str
    valid_from: dt.date
    valid_to: dt.date
    facility_code: str  # registered primary-care facility
    benefit_level: int  # 1..5 (BHYT benefit code)
    category: str = "other"  # participant category (the columns of the official statistics)
    full_name: str | None = None
    birth: dt.date | None = None
    sex: str | None = None

    def __repr__(self) -> str:
        return f"InsuranceRecord(<redacted>, valid_to={self.valid_to.isoformat()})"


class EligibilitySource(enum.StrEnum):
    ONLINE = "online"
    CACHE = "cache"
    NONE = "none"  # nothing to ask: offline and no usable cache


@dataclass(frozen=True)
class Eligibility:
    """The answer of the eligibility lookup."""

    record: InsuranceRecord | None
    source: EligibilitySource
    fresh: bool  # the cache was recent enough (always True for online answers)
    as_of: dt.datetime | None = None


@dataclass(frozen=True)
class CheckinFacts:
    """Everything the policy needs for one decision."""

    identity: Identity
    assurance: Assurance
    chip: ChipFacts | None
    finger: FingerFacts
    eligibility: Eligibility
    today: dt.date
    facility_code: str
