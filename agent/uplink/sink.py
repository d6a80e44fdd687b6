"""The check-in flow's event sink: seal each decision as an event and make it durable.

``store`` returns only after the event is fsync'd in the queue, so the gate opens
after the decision is safe on disk, never before; then it wakes the uplink.
"""

from __future__ import annotations

from typing import Protocol

from agent.app.ports import CheckinRecord
from agent.store.queue import EventQueue
from agent.uplink.events import EventFactory, checkin_body, discrepancy_body, error_body


class Waker(Protocol):
    def notify(self) -> None: ...


class QueueSink:
    def __init__(self, queue: EventQueue, factory: EventFactory, uplink: Waker | None = None) -> None:
        self.queue = queue
        self.factory = factory
        self.uplink = uplink

    def store(self, record: CheckinRecord) -> str:
        event = self.factory.envelope("checkin", self.queue.reserve(), checkin_body(record))
        self.queue.append(event["id"], self.factory.seal(event), seq=event["seq"])
        if record.discrepancies:
            disc = self.factory.envelope("discrepancy", self.queue.reserve(), discrepancy_body(record, event["id"]))
            self.queue.append(disc["id"], self.factory.seal(disc), seq=disc["seq"])
        if self.uplink is not None:
            self.uplink.notify()
        return str(event["id"])

    def store_error(self, stage: str, error: str) -> str:
        event = self.factory.envelope("error", self.queue.reserve(), error_body(stage, error))
        self.queue.append(event["id"], self.factory.seal(event), seq=event["seq"])
        if self.uplink is not None:
            self.uplink.notify()
        return str(event["id"])
