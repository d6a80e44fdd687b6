"""The delivery window on a real event queue, without a broker: time is passed in, nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.store.queue import EventQueue
from agent.uplink.delivery import DeliveryWindow


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[EventQueue]:
    q = EventQueue(tmp_path / "queue")
    yield q
    q.close()


def fill(queue: EventQueue, n: int, prefix: str = "ev") -> list[str]:
    ids = []
    for _ in range(n):
        event_id = f"{prefix}-{queue.reserve()}"
        queue.append(event_id, event_id.encode())
        ids.append(event_id)
    return ids


def window(queue: EventQueue, *, inflight: int = 4, rate: float = 1000.0, ack_timeout: float = 30.0) -> DeliveryWindow:
    return DeliveryWindow(queue, inflight=inflight, rate=rate, ack_timeout=ack_timeout, now=0.0)


def test_the_window_bounds_what_is_in_flight(queue: EventQueue) -> None:
    ids = fill(queue, 10)
    w = window(queue, inflight=4)
    first = w.due(1.0)
    assert [s.event_id for s in first] == ids[:4] and not any(s.resend for s in first)
    assert [s.body for s in first] == [i.encode() for i in ids[:4]]
    assert w.due(2.0) == [] and w.in_flight == 4
    assert w.ack([ids[0], ids[2]]) == [queue.seq_of(ids[0]), queue.seq_of(ids[2])]
    assert [s.event_id for s in w.due(3.0)] == ids[4:6]


def test_unacknowledged_events_go_again_after_the_ack_timeout_oldest_first(queue: EventQueue) -> None:
    ids = fill(queue, 3)
    w = window(queue, inflight=8, ack_timeout=5.0)
    assert len(w.due(0.0)) == 3
    assert w.next_wake(0.0) == 5.0
    assert w.due(5.0) == []  # not yet: the timeout has to pass
    fill(queue, 1, "late")
    again = w.due(5.5)
    assert [s.event_id for s in again[:3]] == ids and all(s.resend for s in again[:3])
    assert [s.resend for s in again[3:]] == [False]  # resends first, then the new event
    assert w.next_wake(5.5) == 10.5
    w.ack(ids)
    assert w.in_flight == 1


def test_an_event_acknowledged_meanwhile_is_not_resent(queue: EventQueue) -> None:
    ids = fill(queue, 2)
    w = window(queue, ack_timeout=1.0)
    w.due(0.0)
    queue.ack([queue.seq_of(ids[0]) or 0])  # e.g. the ack of an earlier connection
    again = w.due(2.0)
    assert [s.event_id for s in again] == [ids[1]] and w.in_flight == 1


def test_acks_of_ids_not_in_flight_use_the_queue_index(queue: EventQueue) -> None:
    ids = fill(queue, 3)
    w = window(queue)  # a fresh window: as after a restart, nothing is in flight
    assert w.ack([ids[1], "someone-else", ids[1]]) == [queue.seq_of(ids[1]), queue.seq_of(ids[1])]
    assert w.ack(["unknown"]) == []
    assert queue.ack(w.ack([ids[1]])) == 1
    assert queue.seq_of(ids[1]) is None and w.ack([ids[1]]) == []


def test_a_reconnect_sends_everything_unacknowledged_again(queue: EventQueue) -> None:
    ids = fill(queue, 5)
    w = window(queue, inflight=3)
    assert [s.event_id for s in w.due(0.0)] == ids[:3]
    w.ack([ids[0]])
    queue.ack([queue.seq_of(ids[0]) or 0])
    w.reset()
    assert w.in_flight == 0
    assert [s.event_id for s in w.due(0.1)] == ids[1:4]  # from the start of the queue, not from the cursor


def test_live_events_go_before_the_backlog(queue: EventQueue) -> None:
    backlog = fill(queue, 3, "old")
    queue.demote_pending()
    w = window(queue, inflight=3)
    live = fill(queue, 2, "new")
    assert [s.event_id for s in w.due(0.0)] == [*live, backlog[0]]
    w.ack(live)
    more = fill(queue, 1, "newer")
    assert [s.event_id for s in w.due(0.1)] == [*more, backlog[1]]


def test_a_draining_backlog_leaves_room_for_live_events(queue: EventQueue) -> None:
    backlog = fill(queue, 100, "old")
    queue.demote_pending()
    w = window(queue, inflight=16)
    first = w.due(0.0)
    assert [s.event_id for s in first] == backlog[:14] and w.in_flight == 14  # 16 - 16 // 8
    assert w.due(0.1) == []  # the backlog has used its share of the window
    live = fill(queue, 3, "new")
    assert [s.event_id for s in w.due(0.2)] == live[:2]  # the two reserved slots, at once
    w.ack(backlog[:5])
    assert [s.event_id for s in w.due(0.3)] == [live[2], *backlog[14:16]]  # live first, then backlog to its share


def test_room_on_the_wire_bounds_a_batch_and_live_events_still_go_first(queue: EventQueue) -> None:
    backlog = fill(queue, 10, "old")
    queue.demote_pending()
    w = window(queue, inflight=64)
    assert [s.event_id for s in w.due(0.0, wire_room=3)] == backlog[:3]
    assert w.due(0.1, wire_room=0) == [] and w.due(0.2, wire_room=-5) == []
    live = fill(queue, 2, "new")
    assert [s.event_id for s in w.due(0.3, wire_room=3)] == [*live, backlog[3]]
    assert w.next_wake(0.3) == 30.0  # the wire, not the bucket, ended the batch: no busy wake-up


def test_the_token_bucket_bounds_the_rate(queue: EventQueue) -> None:
    fill(queue, 20)
    w = DeliveryWindow(queue, inflight=20, rate=10.0, ack_timeout=300.0, now=0.0)
    assert len(w.due(0.0)) == 20  # the bucket starts full: one window at once
    fill(queue, 10, "more")
    w.ack([f"ev-{i}" for i in range(1, 11)])
    assert w.due(0.0) == []  # no tokens left
    assert w.next_wake(0.0) == pytest.approx(0.1)  # one token every 1/rate seconds
    assert len(w.due(0.1)) == 1
    assert len(w.due(0.45)) == 3
    assert len(w.due(10.0)) == 6  # refilled, now the window (10 free) and the queue (6 left) bound it
    assert w.next_wake(10.0) == pytest.approx(300.0)  # nothing starves: only the ack timeout is ahead


def test_a_window_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DeliveryWindow(None, inflight=0, rate=1.0, ack_timeout=1.0, now=0.0)  # type: ignore[arg-type]


def test_acks_after_a_restart_find_their_events(tmp_path: Path) -> None:
    first = EventQueue(tmp_path / "queue")
    ids = fill(first, 3)
    first.ack([first.seq_of(ids[0]) or 0])
    first.close()
    reopened = EventQueue(tmp_path / "queue")
    try:
        assert window(reopened).ack(ids) == [2, 3]  # the id index is rebuilt from the segments
    finally:
        reopened.close()


def test_backlog_goes_in_whole_runs_while_some_is_in_flight(queue: EventQueue) -> None:
    ids = fill(queue, 100)
    queue.demote_pending()  # backlog
    w = DeliveryWindow(queue, inflight=40, rate=1e6, ack_timeout=30.0, now=0.0, batch=10)
    assert w.live_reserve == 5 and w.min_run == 10
    first = w.due(1.0)
    assert [s.event_id for s in first] == ids[:30] and not any(s.live for s in first)  # 35 of room: 3 whole runs
    w.ack(ids[:3])
    assert w.due(2.0) == []  # room for 8: less than a run while 27 are in flight
    assert w.next_wake(2.0) == 31.0  # nothing to wait for but an ack (or the oldest's ack timeout)
    w.ack(ids[3:13])
    assert [s.event_id for s in w.due(3.0)] == ids[30:40]  # room for 18: one run
    live = fill(queue, 1, "live")
    sent = w.due(4.0)
    assert [s.event_id for s in sent] == live and sent[0].live  # a live event never waits for a run


def test_a_low_bucket_waits_for_a_whole_run_of_tokens(queue: EventQueue) -> None:
    ids = fill(queue, 100)
    queue.demote_pending()
    w = DeliveryWindow(queue, inflight=40, rate=100.0, ack_timeout=30.0, now=0.0, batch=10)
    assert len(w.due(0.0)) == 30  # 40 tokens at the start
    w.ack(ids[:30])  # all acknowledged: the window is empty, the bucket holds 10
    assert [s.event_id for s in w.due(0.0)] == ids[30:40]
    w.ack(ids[30:40])  # nothing in flight: only the bucket can hold the backlog back
    assert w.due(0.05) == []  # 5 tokens: less than a run
    assert w.next_wake(0.05) == pytest.approx(0.1)  # when 10 tokens are there
    assert [s.event_id for s in w.due(0.1)] == ids[40:50]
