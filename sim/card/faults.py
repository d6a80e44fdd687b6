"""Fault injection for the simulated card: pulled cards and RF errors, at fixed APDUs or seeded at random.

Spec: comma-separated items, e.g. ``remove@5,rf-error@9`` or ``random-rf=0.05,seed=3`` or
``pace-refused`` (``pace-refused=ga`` refuses at General Authenticate instead of MSE:Set AT).

APDU numbers count from 1 at each power-on, so ``remove@7`` pulls the card at the
7th APDU of *every* session (each insertion, each reconnect).  ``once`` after a
``remove@K`` or ``rf-error@K`` item makes that one fault happen in the first session
that reaches APDU K only: ``remove@7,once`` pulls the card once, and the reader's
retry after the card comes back reads it whole.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SYNTAX = "remove@K[,once], rf-error@K[,once], random-rf=P, seed=N, pace-refused[=ga]"


class FaultSpecError(ValueError):
    pass


@dataclass
class Faults:
    remove_at: set[int] = field(default_factory=set)
    rf_error_at: set[int] = field(default_factory=set)
    random_rf: float = 0.0
    seed: int = 0
    pace_refused: str | None = None
    #: (kind, K) faults that happen in one session only
    once: set[tuple[str, int]] = field(default_factory=set)
    fired: set[tuple[str, int]] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _due(self, kind: str, apdu_number: int, at: set[int]) -> bool:
        if apdu_number not in at:
            return False
        key = (kind, apdu_number)
        if key in self.once:
            if key in self.fired:
                return False
            self.fired.add(key)
        return True

    def action(self, apdu_number: int) -> str | None:
        """ "remove", "rf-error" or None for the n-th APDU of the session."""
        if self._due("remove", apdu_number, self.remove_at):
            return "remove"
        if self._due("rf-error", apdu_number, self.rf_error_at) or (
            self.random_rf and self.rng.random() < self.random_rf
        ):
            return "rf-error"
        return None


def parse_faults(spec: str | None) -> Faults:
    faults = Faults()
    if not spec:
        return faults
    seed = 0
    last: tuple[str, int] | None = None  # the item "once" applies to
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        current: tuple[str, int] | None = None
        try:
            if item.startswith("remove@"):
                current = ("remove", _apdu_number(item, item[7:]))
                faults.remove_at.add(current[1])
            elif item.startswith("rf-error@"):
                current = ("rf-error", _apdu_number(item, item[9:]))
                faults.rf_error_at.add(current[1])
            elif item == "once":
                if last is None:
                    raise FaultSpecError("'once' must follow remove@K or rf-error@K")
                faults.once.add(last)
            elif item.startswith("random-rf="):
                faults.random_rf = float(item[10:])
                if not 0 <= faults.random_rf <= 1:
                    raise FaultSpecError(f"{item}: probability must be between 0 and 1")
            elif item.startswith("seed="):
                seed = int(item[5:])
            elif item == "pace-refused":
                faults.pace_refused = "mse"
            elif item == "pace-refused=ga":
                faults.pace_refused = "ga"
            else:
                raise FaultSpecError(f"unknown fault {item!r} ({SYNTAX})")
        except ValueError as exc:
            if isinstance(exc, FaultSpecError):
                raise
            raise FaultSpecError(f"bad fault {item!r}: {exc}") from exc
        last = current
    faults.seed = seed
    faults.rng = random.Random(seed)
    return faults


def _apdu_number(item: str, text: str) -> int:
    number = int(text)
    if number < 1:
        raise FaultSpecError(f"{item}: APDUs count from 1")
    return number
