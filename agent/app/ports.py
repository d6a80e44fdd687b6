"""What the check-in flow needs from the devices and services around it.

Each port is a small Protocol with a real implementation (PC/SC reader, fingerprint
module, durable queue, hub) and a simulated or in-memory one; the flow cannot tell
them apart.  Devices push what happens (a card arrives, a QR is scanned) into one
inbox of :class:`Trigger` objects; the flow is the only thing that decides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.app.vneid import VneidResult
from agent.card.keys import AccessKeys
from agent.model import CheckinRecord, ChipFacts, Eligibility, FingerFacts, FingerReference, Identity, Shown

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


@dataclass(frozen=True)
class VneidScanned:
    """A VNeID app QR: an opaque token for the hub to verify (never parsed, logged or stored)."""

    token: str = field(repr=False)


Trigger = CardInserted | CardRemoved | KeysEntered | ManualEntry | VneidScanned


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
    def lookup(self, id_number: str, identity: Identity | None = None) -> Eligibility:
        """``identity``: the verified name and birth date the insurance gateway compares (chip or VNeID)."""
        ...


class VneidService(Protocol):
    def verify(self, token: str) -> VneidResult:
        """Ask the national identity service (through the hub) about a VNeID token; never raises."""
        ...


class EventSink(Protocol):
    def store(self, record: CheckinRecord) -> str:
        """Make the check-in durable (fsync'd) and return its event id; raise when it cannot be stored."""
        ...

    def store_error(self, stage: str, error: str) -> str:
        """Make an ``error`` event durable: a check-in ended by an unexpected failure in ``stage``."""
        ...


class Output(Protocol):
    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        """Tell the patient what to do next (place the card, scan the QR, place a finger ...)."""
        ...

    def show(self, shown: Shown) -> None:
        """Show the outcome; open the gate when admitted."""
        ...


# --- the daemon's view of its parts --------------------------------------------------------------------


class DeviceSource(Protocol):
    """An input device feeding the flow (card watcher, scanner, attendant socket)."""

    name: str

    def start(self, submit: Callable[[Trigger], None]) -> None: ...

    def stop(self) -> None: ...

    def state(self) -> str: ...


class StatusPublisher(Protocol):
    def publish_status(self, status: dict[str, Any]) -> None: ...
