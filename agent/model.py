"""What the check-in flow knows about one patient at the gate, and what a check-in leaves behind.

These are the facts the policy decides on and the record an event is made of.
They are deliberately small: a chip read produces far more (files, certificates,
images), but the flow keeps only what a decision and its event need (privacy by
design: nothing else is stored).

This module sits at the bottom of the layers (docs/architecture.md): the app
fills these types, the uplink turns them into events, and neither the types nor
this module know about either.  The policy's :class:`agent.app.policy.Decision`
is held through the :class:`DecisionFacts` shape, so the model does not import
the policy.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Assurance(enum.StrEnum):
    """How the person was identified."""

    CHIP = "chip"  # read from the chip ID card (verified or not: see ChipFacts)
    VNEID = "vneid"  # the VNeID app's token, verified by the national identity service through the hub: no chip
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


#: downgrade rules that by themselves mean a copy (agent.card.read.RULES takes its clone flags from here)
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
    finger_position: int | None = None  # that image's ISO/IEC 19794-4 finger position (2 = right index ...)
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


class VneidStatus(enum.StrEnum):
    """What the national identity service (through the hub) said of a VNeID token."""

    VALID = "valid"
    INVALID = "invalid"  # signature, format or issuer not accepted
    EXPIRED = "expired"  # the QR's short validity is over: the patient refreshes it in the app
    REVOKED = "revoked"  # the account or the device was revoked
    WRONG_LEVEL = "wrong_level"  # a level-1 account: not identified in person, not enough for health insurance
    UNVERIFIED = "unverified"  # no answer: the hub or the service was not reachable in time


@dataclass(frozen=True)
class VneidFacts:
    """A VNeID verification as the event keeps it: never the token, only the outcome and the hub's reference."""

    status: VneidStatus
    level: int | None = None  # the account's identification level (2 is needed)
    reference: str | None = None  # the hub's verification reference (its log of the service's answer)


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
    #: the social-insurance gateway's result code (maKetQua) when the hub's answer carried one
    gateway_code: str | None = None


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
    vneid: VneidFacts | None = None  # the VNeID route's verification (assurance VNEID)


@dataclass(frozen=True)
class Discrepancy:
    """One field where the insurance record disagrees with the chip (see :mod:`agent.app.reconcile`)."""

    field: str  # "id_number" | "full_name" | "birth" | "sex"
    chip_value: str

    def __repr__(self) -> str:
        return f"Discrepancy({self.field}, <redacted>)"


class DecisionFacts(Protocol):
    """What a check-in record keeps of the policy's decision (:class:`agent.app.policy.Decision` has this shape)."""

    @property
    def outcome(self) -> str: ...  # an agent.app.policy.Outcome value ("admitted", "refused" ...)

    @property
    def reason(self) -> str: ...  # the finding that decided, or "OK"

    @property
    def findings(self) -> Sequence[str]: ...  # every finding (agent.app.policy.Finding values)


@dataclass(frozen=True)
class CheckinRecord:
    """What a decision leaves behind: the content of the check-in event (and discrepancy event)."""

    identity: Identity
    assurance: str
    chip: ChipFacts | None
    finger: FingerFacts
    eligibility: Eligibility
    decision: DecisionFacts
    discrepancies: tuple[Discrepancy, ...] = ()
    vneid: VneidFacts | None = None


@dataclass(frozen=True)
class Shown:
    """An outcome as the gate shows it."""

    event_id: str | None  # None when nothing could be stored (the gate then stays closed)
    outcome: str
    reason: str
    message_vi: str
    message_en: str
    provisional: bool = False
    #: who it is shown to: the patient's screen shows the given name and the masked ID number; no output logs it
    identity: Identity | None = field(default=None, repr=False, compare=False)

    @property
    def gate_opens(self) -> bool:
        """An admission opens the gate only once its event is stored (the relay, the kiosk and the desk agree)."""
        return self.outcome in ("admitted", "admitted_provisional") and self.event_id is not None
