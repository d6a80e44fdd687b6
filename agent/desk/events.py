"""Desk actions as events in the durable queue (type ``desk``, docs/events.cddl), with the attendant's name."""

from __future__ import annotations

from typing import Any, Protocol

from agent.store.queue import EventQueue
from agent.uplink.events import EventFactory

ACTIONS = ("login", "logout", "manual_entry", "clear_referral")


class Waker(Protocol):
    def notify(self) -> None: ...


class DeskEvents:
    """Stores one signed ``desk`` event per action; raises (and the desk refuses the action) when it cannot."""

    def __init__(self, queue: EventQueue, factory: EventFactory, uplink: Waker | None = None) -> None:
        self.queue = queue
        self.factory = factory
        self.uplink = uplink

    def __call__(self, body: dict[str, Any]) -> str:
        if body.get("action") not in ACTIONS or not isinstance(body.get("attendant"), str):
            raise ValueError(f"not a desk action: {body.get('action')!r}")
        event = self.factory.envelope("desk", self.queue.reserve(), body)
        self.queue.append(event["id"], self.factory.seal(event), seq=event["seq"])
        if self.uplink is not None:
            self.uplink.notify()
        return str(event["id"])
