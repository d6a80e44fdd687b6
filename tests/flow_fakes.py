"""In-process ports for fast check-in flow tests (the daemon tests use the real devices)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

from agent.app.ports import ChipRead
from agent.card.errors import CardError
from agent.card.keys import AccessKeys
from agent.errors import CardRemovedError, GateAgentError
from agent.model import CheckinRecord, ChipFacts, FingerFacts, FingerStatus, Identity

PERSON = Identity("001090012345", "Nguyễn Văn An", dt.date(1990, 5, 17), "M")


class FakeReader:
    def __init__(self, result: ChipRead | None = None, error: Exception | None = None) -> None:
        self.result = result or ChipRead(PERSON, ChipFacts("PACE", True, chip_auth=True))
        self.error = error
        self.calls = 0
        self.before_return: threading.Event | None = None  # read blocks until this is set

    def read(self, keys: AccessKeys) -> ChipRead:
        self.calls += 1
        if self.before_return is not None and not self.before_return.wait(5):
            raise CardError("test: the finger capture never started while the chip was read")
        if self.error is not None:
            raise self.error
        return self.result


class FakeFinger:
    def __init__(self, score: int = 90, threshold: int = 50, place: bool = True) -> None:
        self.started = threading.Event()
        self.score = score
        self.threshold = threshold
        self.place = place
        self.cancelled = False
        self.forgotten = 0

    def capture(self, cancel: threading.Event, timeout: float) -> bool:
        self.started.set()
        if not self.place:
            # no finger ever lands, and the sensor overruns its own timeout: only the flow's cancel ends the wait
            # (waiting exactly ``timeout`` would race the flow's deadline on a loaded machine)
            cancel.wait(timeout + 5.0)
            self.cancelled = cancel.is_set()
            return False
        return True

    def forget(self) -> None:
        self.forgotten += 1

    def match(self, reference: bytes) -> FingerFacts:
        status = FingerStatus.MATCH if self.score >= self.threshold else FingerStatus.NO_MATCH
        return FingerFacts(status, self.score)


class MemorySink:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[tuple[str, CheckinRecord]] = []
        self.errors: list[tuple[str, str, str]] = []
        self.fail = fail

    def store(self, record: CheckinRecord) -> str:
        if self.fail:
            raise GateAgentError("test: disk full")
        event_id = str(uuid.uuid4())
        self.records.append((event_id, record))
        return event_id

    def store_error(self, stage: str, error: str) -> str:
        if self.fail:
            raise GateAgentError("test: disk full")
        event_id = str(uuid.uuid4())
        self.errors.append((event_id, stage, error))
        return event_id


__all__ = ["PERSON", "CardRemovedError", "FakeFinger", "FakeReader", "MemorySink"]
