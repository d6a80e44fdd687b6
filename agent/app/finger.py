"""The check-in flow's fingerprint path over the real module driver."""

from __future__ import annotations

import threading

from agent.bio.module import FingerprintModule
from agent.model import FingerFacts, FingerStatus


class ModuleFinger:
    def __init__(self, module: FingerprintModule, threshold: int) -> None:
        self.module = module
        self.threshold = threshold
        self._lock = threading.Lock()

    def capture(self, cancel: threading.Event, timeout: float) -> bool:
        with self._lock:
            return self.module.capture_live(cancel, timeout)

    def match(self, reference: bytes) -> FingerFacts:
        """1:1 against the chip's DG3 image: the module turns it into features in buffer 2."""
        with self._lock:
            result = self.module.verify_reference(reference, self.threshold, image=True)
        status = FingerStatus.MATCH if result.matched else FingerStatus.NO_MATCH
        return FingerFacts(status, result.score)
