"""What the check-in flow needs from the devices and services around it.

Each port is a small Protocol with a real implementation (PC/SC reader, fingerprint
module, durable queue, hub) and a simulated or in-memory one; the flow cannot tell
them apart.  Devices push what happens (a card arrives, a QR is scanned) into one
inbox of :class:`Trigger` objects; the flow is the only thing that decides.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from agent.app.model import ChipFacts, Eligibility, FingerFacts, FingerReference, Identity
from agent.app.policy import Decision
from agent.app.reconcile import Discrepancy
from agent.card.keys import AccessKeys

# --- triggers: what the devices tell the flow -----------------------------------------------------------


@dataclass(frozen=True)
class CardInserted:
    reader: str = ""


@dataclass(frozen=True)
class CardRemoved:
    reader: str = ""


@dataclass(frozen=True)
class KeysEntered:
    """Access keys from the MRZ scanner, the QR scanner or the attendant (ID number + date of birth)."""

    keys: AccessKeys = field(repr=False)
    source: str  # "mrz" | "qr" | "attendant"
    id_number: str | None = field(default=None, repr=False)  # known before the read when it came from a QR


@dataclass(frozen=True)
class ManualEntry:
    """No chip card (children under 6, card forgotten): the attendant enters the personal ID number."""

    id_number: str = field(repr=False)


Trigger = CardInserted | CardRemoved | KeysEntered | ManualEntry


# --- devices and services ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipRead:
    identity: Identity
    facts: ChipFacts
    apdus: int = 0
    seconds: float = 0.0


class ChipReader(Protocol):
    def read(self, keys: AccessKeys) -> ChipRead:
        """Open the chip with ``keys``, read and verify it.

        Raises :class:`agent.errors.CardRemovedError` when the card leaves,
        :class:`agent.card.errors.CardError` subclasses when the keys do not open it
        or the chip misbehaves.
        """
        ...


class FingerPath(Protocol):
    def capture(self, cancel: threading.Event, timeout: float) -> bool:
        """Wait for a finger and capture it (its minutiae, or the module's buffer 1); False on timeout or cancel."""
        ...

    def forget(self) -> None:
        """Drop whatever the last capture left in memory (called when the check-in no longer needs it)."""
        ...

    def match(self, reference: FingerReference) -> FingerFacts:
        """Compare the captured finger with the chip's reference (one DG3 finger view, image still encoded)."""
        ...


class EligibilityService(Protocol):
    def lookup(self, id_number: str) -> Eligibility: ...


@dataclass(frozen=True)
class CheckinRecord:
    """What a decision leaves behind: the content of the check-in event (and discrepancy event)."""

    identity: Identity
    assurance: str
    chip: ChipFacts | None
    finger: FingerFacts
    eligibility: Eligibility
    decision: Decision
    discrepancies: tuple[Discrepancy, ...] = ()


class EventSink(Protocol):
    def store(self, record: CheckinRecord) -> str:
        """Make the check-in durable (fsync'd) and return its event id; raise when it cannot be stored."""
        ...

    def store_error(self, stage: str, error: str) -> str:
        """Make an ``error`` event durable: a check-in ended by an unexpected failure in ``stage``."""
        ...


@dataclass(frozen=True)
class Shown:
    """An outcome as the gate shows it."""

    event_id: str | None  # None when nothing could be stored (the gate then stays closed)
    outcome: str
    reason: str
    message_vi: str
    message_en: str
    provisional: bool = False


class Output(Protocol):
    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        """Tell the patient what to do next (place the card, scan the QR, place a finger ...)."""
        ...

    def show(self, shown: Shown) -> None:
        """Show the outcome; open the gate when admitted."""
        ...
