"""The durable event queue: order, acknowledgements, encryption, capacity, and power cuts at any byte."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.codec.cbor import CborError, decode_cbor
from agent.store import queue as q
from agent.store.errors import KeyFileError, QueueFullError, StoreError


def body(i: int) -> bytes:
    return f'{{"id_number": "00109001{i:04d}"}}'.encode()


def test_append_ack_reopen(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    seqs = [queue.append(f"e{i}", body(i)) for i in range(10)]
    assert seqs == list(range(1, 11))
    assert queue.ack({2, 3, 99}) == 2
    queue.close()
    again = q.EventQueue(tmp_path / "q")
    assert [e.seq for e in again.pending()] == [1, *range(4, 11)]
    assert again.get(4) is not None and again.get(4).body == body(3)  # type: ignore[union-attr]
    assert again.append("e10", body(10)) == 11


def test_one_process_at_a_time(tmp_path: Path) -> None:
    first = q.EventQueue(tmp_path / "q")
    with pytest.raises(StoreError, match="in use"):
        q.EventQueue(tmp_path / "q")
    first.close()


def test_bodies_are_encrypted_and_the_key_is_private(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    queue.append("e1", body(1))
    raw = b"".join(p.read_bytes() for p in (tmp_path / "q").glob("seg-*.log"))
    assert b"001090010001" not in raw and b"e1" in raw
    assert (tmp_path / "q" / "key").stat().st_mode & 0o777 == 0o600
    queue.close()
    os.chmod(tmp_path / "q" / "key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        q.EventQueue(tmp_path / "q")
    os.chmod(tmp_path / "q" / "key", 0o600)
    (tmp_path / "other").write_bytes(os.urandom(32))
    os.chmod(tmp_path / "other", 0o600)
    wrong = q.EventQueue(tmp_path / "q", key_file=tmp_path / "other")
    with pytest.raises(StoreError, match="does not decrypt"):
        wrong.pending()


def test_capacity_refuses_new_events_explicitly(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q", capacity=3)
    for i in range(3):
        queue.append(f"e{i}", body(i))
    with pytest.raises(QueueFullError, match="full"):
        queue.append("e3", body(3))
    queue.ack([1])
    assert queue.append("e3", body(3)) == 4


def test_live_events_go_before_the_backlog(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    for i in range(3):
        queue.append(f"old{i}", body(i))
    queue.demote_pending()
    queue.append("live", body(9))
    assert [e.event_id for e in queue.pending()] == ["live", "old0", "old1", "old2"]


def test_acknowledged_segments_are_deleted_and_sequence_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "SEGMENT_BYTES", 400)
    queue = q.EventQueue(tmp_path / "q")
    for i in range(20):
        queue.append(f"e{i}", body(i))
    segments = len(list((tmp_path / "q").glob("seg-*.log")))
    assert segments > 3
    queue.ack(list(range(1, 21)))
    assert len(list((tmp_path / "q").glob("seg-*.log"))) == 1  # only the active one stays
    queue.close()
    assert q.EventQueue(tmp_path / "q").append("next", body(0)) == 21


def test_purge_rewrites_partly_acknowledged_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(q, "SEGMENT_BYTES", 100_000)
    queue = q.EventQueue(tmp_path / "q")
    # ids long enough that the encrypted bodies cannot contain them by chance (2-byte ids did, now and then)
    for i in range(6):
        queue.append(f"purged-or-kept-event-{i}", body(i))
    queue._rotate()
    queue.append("purged-or-kept-event-6", body(6))
    queue.ack([1, 2, 3])
    assert queue.purge_acked() == 2  # the older segment and the active one
    files = sorted((tmp_path / "q").glob("seg-*.log"))
    raw = b"".join(p.read_bytes() for p in files)
    assert b"purged-or-kept-event-0" not in raw and b"purged-or-kept-event-1" not in raw
    assert b"purged-or-kept-event-3" in raw
    queue.close()
    again = q.EventQueue(tmp_path / "q")
    assert [e.seq for e in again.pending()] == [4, 5, 6, 7]
    assert again.get(5).body == body(4)  # type: ignore[union-attr]


def test_purge_reaches_the_active_segment(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    for i in range(4):
        queue.append(f"active-segment-event-number-{i}", body(i))
    queue.ack([1, 2])
    assert len(list((tmp_path / "q").glob("seg-*.log"))) == 1  # all in the active segment
    queue.purge_acked()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "q").glob("seg-*.log"))
    assert b"active-segment-event-number-0" not in raw and b"active-segment-event-number-1" not in raw
    assert b"active-segment-event-number-3" in raw
    assert queue.append("after-purge-event-number-4", body(4)) == 5  # appends go on
    queue.close()
    again = q.EventQueue(tmp_path / "q")
    assert [e.seq for e in again.pending()] == [3, 4, 5]


def test_strict_cbor() -> None:
    assert decode_cbor(bytes.fromhex("a1616101")) == {"a": 1}
    with pytest.raises(CborError, match="trailing"):
        decode_cbor(bytes.fromhex("a161610100"))
    with pytest.raises(CborError, match="malformed"):
        decode_cbor(bytes.fromhex("5bffffffffffffffff"))
    with pytest.raises(CborError, match="limit"):
        decode_cbor(b"\x40" * 100, limit=10)


def test_a_damaged_meta_file_is_a_store_error(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    queue.close()
    (tmp_path / "q" / "meta.cbor").write_bytes(bytes.fromhex("a161610100"))  # trailing byte
    with pytest.raises(StoreError, match="trailing"):
        q.EventQueue(tmp_path / "q")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.integers(1, 12),
    acks=st.integers(0, 6),
    cut=st.floats(0, 1, exclude_max=True),
    which=st.sampled_from(["seg", "acks"]),
)
def test_power_cut_at_any_byte_keeps_every_stored_event(
    tmp_path_factory: pytest.TempPathFactory, events: int, acks: int, cut: float, which: str
) -> None:
    """Truncate the file being written at a random byte: every append that returned survives, the store opens."""
    root = tmp_path_factory.mktemp("cut")
    queue = q.EventQueue(root / "q")
    sizes = []  # size of the segment after each returned append
    for i in range(events):
        queue.append(f"e{i}", body(i))
        sizes.append(next((root / "q").glob("seg-*.log")).stat().st_size)
    acked = list(range(1, min(acks, events) + 1))
    if acked:
        queue.ack(acked)
    queue.close()
    # the power cut happens during the *next* write: a torn partial record appended after the last good byte
    target = next((root / "q").glob("seg-*.log")) if which == "seg" else root / "q" / "acks.log"
    good = target.read_bytes() if target.exists() else b""
    torn = q.frame(b"\xa0" * 50)
    target.write_bytes(good + torn[: int(cut * len(torn))])
    reopened = q.EventQueue(root / "q")
    assert [e.seq for e in reopened.pending()] == [s for s in range(1, events + 1) if s not in acked]
    assert target.read_bytes() == good  # the torn tail is gone, the rest untouched
    assert reopened.append("after", b"x") == events + 1
    reopened.close()
    shutil.rmtree(root)


def test_a_cut_inside_a_stored_record_loses_only_that_record_and_later(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    sizes = []
    for i in range(5):
        queue.append(f"e{i}", body(i))
        sizes.append(next((tmp_path / "q").glob("seg-*.log")).stat().st_size)
    queue.close()
    seg = next((tmp_path / "q").glob("seg-*.log"))
    seg.write_bytes(seg.read_bytes()[: sizes[2] + 7])
    again = q.EventQueue(tmp_path / "q")
    assert [e.seq for e in again.pending()] == [1, 2, 3]
    assert again.stats()["dropped_tail_bytes"] == 7


def test_a_whole_but_unreadable_record_is_skipped_not_fatal(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    queue.append("e0", body(0))
    queue.close()
    seg = next((tmp_path / "q").glob("seg-*.log"))
    seg.write_bytes(seg.read_bytes() + q.frame(b"\xa0" * 50))
    again = q.EventQueue(tmp_path / "q")
    assert [e.seq for e in again.pending()] == [1] and again.stats()["unreadable_records"] == 1
    assert again.append("e1", body(1)) == 2


def test_the_key_comes_from_a_credential_or_outside_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.store.errors import KeyFileError
    from agent.store.keysource import queue_key_file

    state = tmp_path / "state"
    assert queue_key_file(state) == (state / "queue" / "key", True)
    assert queue_key_file(state, str(tmp_path / "keys" / "queue.key")) == (tmp_path / "keys" / "queue.key", True)
    with pytest.raises(KeyFileError, match="inside the state directory"):
        queue_key_file(state, str(state / "k"))
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "queue-key").write_bytes(bytes(32))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert queue_key_file(state, str(tmp_path / "keys" / "queue.key")) == (creds / "queue-key", False)
    # a queue sealed with a key kept elsewhere cannot be opened from the state directory alone
    (creds / "queue-key").chmod(0o400)
    queue = q.EventQueue(state / "queue", key_file=creds / "queue-key")
    queue.append("sealed-elsewhere-event", body(1))
    queue.close()
    assert not (state / "queue" / "key").exists()
    with pytest.raises(KeyFileError, match="missing"):
        q.EventQueue(state / "queue", read_only=True)


def test_scan_reads_a_run_of_records_with_one_access_per_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "SEGMENT_BYTES", 2000)
    queue = q.EventQueue(tmp_path / "q")
    for i in range(60):
        queue.append(f"run-{i}", body(i), priority=i % 3 and 1)  # every third one live
    queue.ack([5, 6, 7, 30])  # gaps inside the runs
    segments = {queue._pending[s].segment for s in queue.pending_seqs()}
    assert len(segments) > 2
    opened: list[str] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(self.name)
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", counting_open)
    backlog = queue.scan(1, 0, 1000)
    live = queue.scan(0, 0, 1000)
    monkeypatch.setattr(Path, "open", real_open)
    # the same entries, bodies and order as reading each record on its own
    assert [e.seq for e in backlog] == [s for s in range(1, 61) if (s - 1) % 3 and s not in (5, 6, 7, 30)]
    assert [e.seq for e in live] == [s for s in range(1, 61) if not (s - 1) % 3 and s not in (5, 6, 7, 30)]
    for entry in backlog + live:
        assert entry.body == body(entry.seq - 1) and entry.event_id == f"run-{entry.seq - 1}"
    assert len(opened) == 2 * len(segments)  # one access per segment and scan, not one per event
    # a window's worth after a cursor, across a segment boundary
    assert [e.seq for e in queue.scan(1, 40, 5)] == [s for s in range(41, 61) if (s - 1) % 3][:5]


def test_a_record_damaged_after_open_is_a_store_error_not_another_body(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q")
    for i in range(5):
        queue.append(f"dmg-{i}", body(i))
    segment = next((tmp_path / "q").glob("seg-*.log"))
    data = bytearray(segment.read_bytes())
    slot = queue._pending[3]
    data[slot.offset + slot.length - 1] ^= 0xFF  # the last byte of the third record
    segment.write_bytes(bytes(data))
    assert [e.seq for e in queue.scan(0, 0, 2)] == [1, 2]  # the run before the damage reads
    with pytest.raises(StoreError, match="event 3: damaged record"):
        queue.scan(0, 0, 5)


def test_ids_are_found_even_when_their_keys_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The id index holds 64-bit keys of ids; a lookup confirms the id on disk, so equal keys cannot mix events up."""
    monkeypatch.setattr(q, "id_key", lambda event_id: 7)  # every id the same key
    queue = q.EventQueue(tmp_path / "q")
    for i in range(5):
        queue.append(f"same-key-{i}", body(i))
    assert [queue.seq_of(f"same-key-{i}") for i in range(5)] == [1, 2, 3, 4, 5]
    assert queue.seq_of("same-key-but-unknown") is None
    queue.ack([2])
    assert queue.seq_of("same-key-1") is None and queue.seq_of("same-key-2") == 3
    queue.close()
    again = q.EventQueue(tmp_path / "q")  # the index is rebuilt at open
    assert [again.seq_of(f"same-key-{i}") for i in range(5)] == [1, None, 3, 4, 5]


def test_the_id_index_forgets_acknowledged_events(tmp_path: Path) -> None:
    queue = q.EventQueue(tmp_path / "q", capacity=5000)
    for i in range(3000):
        queue.append(f"forget-{i}", body(i % 100))
    queue.ack(list(range(1, 2991)))
    assert len(queue._id_keys) < 2 * len(queue) + 1024 + 1
    assert queue.seq_of("forget-2995") == 2996 and queue.seq_of("forget-5") is None


def test_stats_name_the_oldest_pending_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Across priorities and acknowledgements (the kiosk and the heartbeat ask every few seconds)."""
    clock = [1_000.0]
    monkeypatch.setattr(q.time, "time", lambda: clock[0])
    queue = q.EventQueue(tmp_path / "queue")
    first = queue.append("e1", b"one")  # made at 1000
    clock[0] = 1_100.0
    queue.demote_pending()  # backlog (priority 1)
    queue.append("e2", b"two")  # live (priority 0), made at 1100
    clock[0] = 1_200.0
    assert queue.stats()["oldest_pending_age"] == 200.0  # the backlog's event is the oldest
    queue.ack([first])
    assert queue.stats()["oldest_pending_age"] == 100.0  # now the live one
    queue.ack([first + 1])
    assert queue.stats()["oldest_pending_age"] is None
    queue.close()
