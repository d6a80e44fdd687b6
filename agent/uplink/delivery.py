"""The delivery window: which queued events to publish now, and what an acknowledgement removes.

Pure bookkeeping, kept apart from paho so it can be tested without a broker: no
network, no threads, no clock reads (the caller passes ``now``, a monotonic time).
The client holds one window per uplink, guards it with its lock, publishes what
:meth:`DeliveryWindow.due` returns and hands the hub's acknowledged ids to
:meth:`DeliveryWindow.ack`.

The rules (``docs/mqtt.md``):

- at most ``inflight`` events are unacknowledged on the wire at once, and the backlog
  may take at most ``inflight - inflight // 8`` of them: a check-in made while a long
  backlog drains always finds room and goes out at once;
- while some backlog is in flight, more goes only when there is room for a run of
  ``min(batch, half the backlog's share)`` events, so the client packs full messages;
- an event unacknowledged for ``ack_timeout`` seconds is sent again, before new ones;
- new events come from the queue in sequence order, live ones (priority 0) before the
  backlog (priority 1), through :meth:`EventQueue.scan`, whose cost depends on the
  batch and not on the backlog;
- a token bucket (``rate`` per second, ``inflight`` deep) bounds the publish rate;
- a reconnect forgets what was in flight: everything unacknowledged goes again (the
  hub deduplicates by event id);
- an acknowledged id maps to its sequence number through the in-flight map, or for an
  event sent before a restart through the queue's id index; both are O(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.store.queue import Entry


class QueueView(Protocol):
    """What the window reads of the event queue (:class:`agent.store.queue.EventQueue`)."""

    def get(self, seq: int) -> Entry | None: ...

    def scan(self, priority: int, after: int, limit: int) -> list[Entry]: ...

    def seq_of(self, event_id: str) -> int | None: ...


@dataclass(frozen=True)
class Send:
    """One event to publish now."""

    event_id: str
    seq: int
    body: bytes
    resend: bool
    live: bool = False  # a new live event (priority 0): the client publishes it alone, at once


@dataclass
class _Flight:
    seq: int
    sent: float


PRIORITIES = (0, 1)  # live, then backlog


class DeliveryWindow:
    def __init__(
        self, queue: QueueView, *, inflight: int, rate: float, ack_timeout: float, now: float, batch: int = 1
    ) -> None:
        """``batch``: events per message the client packs; backlog goes out in runs that fill messages."""
        if inflight < 1:
            raise ValueError("the delivery window needs room for at least one event")
        self.queue = queue
        self.limit = inflight
        self.live_reserve = inflight // 8  # window slots only live events may take
        # backlog waits for room for a run this long while some of it is in flight: an ack freeing a few
        # slots at a time must not turn the drain into a stream of small messages, each signed and verified
        self.min_run = max(1, min(batch, (inflight - self.live_reserve) // 2))
        self.rate = rate
        self.ack_timeout = ack_timeout
        # insertion order is send order: the first entry is always the next one to time out
        self._flights: dict[str, _Flight] = {}
        self._cursor = dict.fromkeys(PRIORITIES, 0)
        self._tokens = float(inflight)
        self._refilled = now
        self._starved = False
        self._need = 1.0  # tokens the next send waits for (a whole run of backlog, or one event)

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    @property
    def tokens(self) -> float:
        return self._tokens

    def reset(self) -> None:
        """A new connection: nothing is in flight any more, the queue is read again from its start."""
        self._flights.clear()
        self._cursor = dict.fromkeys(PRIORITIES, 0)

    def _refill(self, now: float) -> None:
        if now > self._refilled:
            self._tokens = min(float(self.limit), self._tokens + (now - self._refilled) * self.rate)
        self._refilled = max(self._refilled, now)

    def due(self, now: float, wire_room: int | None = None) -> list[Send]:
        """Events to publish now: timed-out ones first, then new ones, live before backlog.

        ``wire_room`` bounds how many may go now (the client's MQTT client queues what the broker's
        Receive Maximum does not let out yet, and a live event must not wait behind a long run of
        queued backlog); None: no bound.  What is returned counts as sent at ``now`` (in flight,
        one token spent each).
        """
        self._refill(now)
        tokens = int(self._tokens)
        budget = tokens if wire_room is None else min(tokens, max(0, wire_room))
        out: list[Send] = []
        while self._flights and len(out) < budget:
            event_id, flight = next(iter(self._flights.items()))
            if now - flight.sent <= self.ack_timeout:
                break
            del self._flights[event_id]
            entry = self.queue.get(flight.seq)
            if entry is None:  # acknowledged meanwhile (an ack of an earlier connection): nothing to resend
                continue
            self._flights[event_id] = _Flight(flight.seq, now)  # to the end: the newest send
            out.append(Send(event_id, flight.seq, entry.body, True))
        room = min(budget - len(out), self.limit - len(self._flights))
        self._need = 1.0
        for priority in PRIORITIES:
            if priority > 0:
                room = min(room, self.limit - self.live_reserve - len(self._flights))
                if room < self.min_run and (self._flights or tokens - len(out) < self.min_run):
                    # a short run while some backlog is in flight or the bucket is low: wait for a whole
                    # one (an ack, or tokens)
                    self._need = float(self.min_run)
                    break
                if room >= self.min_run:  # whole runs; the rest waits for the next ack
                    room -= room % self.min_run
            if room <= 0:
                break
            for entry in self.queue.scan(priority, self._cursor[priority], room):
                self._cursor[priority] = entry.seq
                if entry.event_id in self._flights:
                    continue
                self._flights[entry.event_id] = _Flight(entry.seq, now)
                out.append(Send(entry.event_id, entry.seq, entry.body, False, priority == 0))
                room -= 1
        self._tokens -= len(out)
        # the bucket, not the window or the queue, ended this batch: come back when enough tokens are there
        self._starved = self._tokens < self._need and len(self._flights) < self.limit
        return out

    def ack(self, event_ids: list[str]) -> list[int]:
        """The hub stored these events: their sequence numbers, to acknowledge in the queue.

        Ids that are neither in flight nor pending (a duplicate ack, another terminal's
        id) are ignored.
        """
        seqs: list[int] = []
        for event_id in event_ids:
            flight = self._flights.pop(event_id, None)
            seq = flight.seq if flight is not None else self.queue.seq_of(event_id)
            if seq is not None:
                seqs.append(seq)
        return seqs

    def next_wake(self, now: float) -> float | None:
        """When :meth:`due` may have something new without a new event or ack arriving; None: not before one."""
        times: list[float] = []
        if self._flights:
            first = next(iter(self._flights.values()))
            times.append(first.sent + self.ack_timeout)
        if self._starved and self.rate > 0:
            times.append(now + max(0.0, self._need - self._tokens) / self.rate)
        return min(times) if times else None
