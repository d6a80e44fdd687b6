"""Fault injection for the simulated card: pulled cards and RF errors, at fixed APDUs or seeded at random.

Spec: comma-separated items, e.g. ``remove@5,rf-error@9`` or ``random-rf=0.05,seed=3`` or
``pace-refused`` (``pace-refused=ga`` refuses at General Authenticate instead of MSE:Set AT).
APDU numbers count from 1 at each power-on (each new card session).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


class FaultSpecError(ValueError):
    pass


@dataclass
class Faults:
    remove_at: set[int] = field(default_factory=set)
    rf_error_at: set[int] = field(default_factory=set)
    random_rf: float = 0.0
    seed: int = 0
    pace_refused: str | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def action(self, apdu_number: int) -> str | None:
        """ "remove", "rf-error" or None for the n-th APDU of the session."""
        if apdu_number in self.remove_at:
            return "remove"
        if apdu_number in self.rf_error_at or (self.random_rf and self.rng.random() < self.random_rf):
            return "rf-error"
        return None


def parse_faults(spec: str | None) -> Faults:
    faults = Faults()
    if not spec:
        return faults
    seed = 0
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        try:
            if item.startswith("remove@"):
                faults.remove_at.add(int(item[7:]))
            elif item.startswith("rf-error@"):
                faults.rf_error_at.add(int(item[9:]))
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
                raise FaultSpecError(
                    f"unknown fault {item!r} (remove@K, rf-error@K, random-rf=P, seed=N, pace-refused)"
                )
        except ValueError as exc:
            if isinstance(exc, FaultSpecError):
                raise
            raise FaultSpecError(f"bad fault {item!r}: {exc}") from exc
    faults.seed = seed
    faults.rng = random.Random(seed)
    return faults
