"""What the desk sees of the gate: the patients sent to the desk, in order, and each outcome as it is shown.

An :class:`agent.app.ports.Output` like the others, so it learns of outcomes exactly
when the patient does.  A manual entry waits here for its outcome: the first one
shown after the entry for the same ID number (the gate serves one patient at a time).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from agent.kiosk.screen import given_name, mask_id
from agent.model import Shown

MAX_REFERRALS = 200
MAX_OUTCOMES = 50


@dataclass(frozen=True)
class Referral:
    key: str  # the event id, or a local id when nothing could be stored
    event_id: str | None
    time: float
    given_name: str | None
    masked_id: str | None
    reason: str
    message_vi: str
    message_en: str


class DeskBoard:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._referrals: dict[str, Referral] = {}
        self._outcomes: list[tuple[int, Shown]] = []
        self._count = 0

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        pass

    def show(self, shown: Shown) -> None:
        with self._cond:
            self._count += 1
            self._outcomes = [*self._outcomes[-(MAX_OUTCOMES - 1):], (self._count, shown)]
            if shown.outcome == "refer_desk":
                ident = shown.identity
                key = shown.event_id or f"local-{uuid.uuid4()}"
                self._referrals[key] = Referral(
                    key, shown.event_id, time.time(), given_name(ident.full_name) if ident else None,
                    mask_id(ident.id_number) if ident else None, shown.reason, shown.message_vi, shown.message_en,
                )  # fmt: skip
                while len(self._referrals) > MAX_REFERRALS:
                    self._referrals.pop(next(iter(self._referrals)))
            self._cond.notify_all()

    def referrals(self) -> list[Referral]:
        with self._cond:
            return list(self._referrals.values())

    def clear(self, key: str) -> Referral | None:
        with self._cond:
            return self._referrals.pop(key, None)

    def mark(self) -> int:
        """The number of outcomes so far: pass it to :meth:`wait_outcome` to see only later ones."""
        with self._cond:
            return self._count

    def wait_outcome(self, id_number: str, after: int, timeout: float) -> Shown | None:
        def found() -> Shown | None:
            for number, shown in self._outcomes:
                if number > after and shown.identity is not None and shown.identity.id_number == id_number:
                    return shown
            return None

        deadline = time.monotonic() + timeout
        with self._cond:
            while (result := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return result
