"""A simulated card in a reader's field, and the in-process reader that serves it without pcscd."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from agent.errors import CardRemovedError, NoCardError
from sim.card.chip import Chip
from sim.card.faults import Faults
from sim.card.files import CardFiles
from sim.card.pki import IssuerPki
from sim.population import Person

#: ISO 14443-4 card through a PC/SC reader: 3B 8n 80 01 + historical bytes + TCK (PC/SC part 3, 3.1.3.2.3)
_HISTORICAL = bytes.fromhex("8031B8738401E0")


def _atr() -> bytes:
    body = bytes([0x80 | len(_HISTORICAL), 0x80, 0x01]) + _HISTORICAL
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


@dataclass
class SimulatedCard:
    profile: str
    person: Person
    files: CardFiles
    chip: Chip
    pki: IssuerPki
    faults: Faults
    variant: str | None = None
    atr: bytes = field(default_factory=_atr)
    present: bool = True
    apdu_count: int = 0
    #: model the contactless link: sleep per APDU for its bytes at this rate (ISO 14443 framing ~20 %); None = off
    link_kbps: float | None = None
    link_seconds: float = 0.0  # modelled air time so far
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def keys(self) -> dict[str, Any]:
        return self.person.access_keys(self.profile)

    def power_on(self) -> None:
        with self._lock:
            self.chip.reset()
            self.apdu_count = 0

    def power_off(self) -> None:
        with self._lock:
            self.chip.reset()

    def process(self, apdu: bytes) -> bytes | None:
        """The response APDU, or None when a fault pulls the card (it then stays absent)."""
        with self._lock:
            if not self.present:
                return None
            self.apdu_count += 1
            action = self.faults.action(self.apdu_count)
            if action == "remove":
                self.present = False
                self.chip.reset()
                return None
            if action == "rf-error":
                return b"\x6f"  # a truncated answer: what a reader reports when the RF link broke mid-frame
            answer = self.chip.process(apdu)
        if self.link_kbps:
            seconds = (len(apdu) + len(answer)) * 8 * 1.2 / (self.link_kbps * 1000)
            self.link_seconds += seconds
            time.sleep(seconds)
        return answer

    def reinsert(self) -> None:
        with self._lock:
            self.present = True
            self.chip.reset()
            self.apdu_count = 0

    def write_trust(self, directory: str) -> None:
        self.pki.write_trust(directory)


class InProcessReader:
    """The agent's CardTransport, served straight by a simulated card (no pcscd)."""

    def __init__(self, card: SimulatedCard, name: str = "Simulated reader") -> None:
        self.card = card
        self._name = name
        card.power_on()

    @property
    def name(self) -> str:
        return self._name

    def transmit(self, apdu: bytes) -> bytes:
        if not self.card.present:
            raise NoCardError(f"{self._name}: no card")
        answer = self.card.process(apdu)
        if answer is None:
            raise CardRemovedError(f"{self._name}: card removed")
        return answer

    def close(self) -> None:
        self.card.power_off()
