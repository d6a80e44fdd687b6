"""The durable event queue: append-only segment files, fsync'd before ``append`` returns.

Layout of the queue directory::

    seg-00000001.log   records: b"GQ" | length (4) | CRC-32 (4) | CBOR payload
    acks.log           the same framing; each payload is a list of acknowledged sequence numbers
    meta.cbor          the next sequence number (written atomically when segments are deleted)
    key                32 random bytes, mode 0600 (AES-256-GCM key of the event bodies)

Why this shape: an append costs one ``write`` and one ``fsync`` whatever the backlog
(TinyDB rewrites its whole file per insert, references.md); a power cut can only
tear the last record of the active segment or of ``acks.log``, which the CRC detects
at open and the file is truncated there, so startup needs no repair by hand.  A
segment whose records are all acknowledged is deleted (the bytes are gone, not
marked); ``purge_acked`` also rewrites older segments that still hold some pending
records, so acknowledged personal data does not linger.

Event bodies are encrypted (AES-256-GCM, random 96-bit nonce, the sequence number
and event id as associated data); only the sequence number, event id, priority and
time travel in clear, so the operator commands can count and order without the key.

Why one piece: the segments, ``acks.log`` and ``meta.cbor`` are one on-disk format
kept consistent under one lock (a record is pending until its acknowledgement is
durable, a sequence number is never reused); append, acknowledge, replay and purge
each change several of those files, and split apart they would each need the
whole invariant.  The file primitives it uses are in :mod:`agent.store.files`.
"""

from __future__ import annotations

import binascii
import bisect
import hashlib
import logging
import os
import secrets
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.codec.cbor import CborError, decode_cbor
from agent.store.errors import QueueFullError, StoreError
from agent.store.files import fsync_dir, load_key, write_atomic

log = logging.getLogger(__name__)

MAGIC = b"GQ"
HEADER = 10  # magic, length, crc
MAX_RECORD = 1 << 20
SEGMENT_BYTES = 4 << 20


def frame(payload: bytes) -> bytes:
    return MAGIC + len(payload).to_bytes(4, "big") + binascii.crc32(payload).to_bytes(4, "big") + payload


def read_frames(data: bytes) -> tuple[list[bytes], int]:
    """Whole, valid records from the start of ``data`` and the offset where they end."""
    records, offset = [], 0
    while offset + HEADER <= len(data):
        if data[offset : offset + 2] != MAGIC:
            break
        length = int.from_bytes(data[offset + 2 : offset + 6], "big")
        crc = int.from_bytes(data[offset + 6 : offset + 10], "big")
        end = offset + HEADER + length
        if length > MAX_RECORD or end > len(data):
            break
        payload = data[offset + HEADER : end]
        if binascii.crc32(payload) != crc:
            break
        records.append(payload)
        offset = end
    return records, offset


def _decode(data: bytes) -> Any:
    """A record's CBOR; damage is a :class:`StoreError` like any other damaged queue file."""
    try:
        return decode_cbor(data, MAX_RECORD)
    except CborError as exc:
        raise StoreError(str(exc)) from exc


@dataclass(frozen=True)
class Entry:
    seq: int
    event_id: str
    priority: int  # 0 live, 1 backlog (replayed after a restart or outage)
    time: float
    body: bytes = field(repr=False)  # decrypted event bytes (what the uplink sends)


_OFFSET_BITS, _LENGTH_BITS = 24, 22  # a segment stays below 16 MB, a framed record below 4 MB (MAX_RECORD + HEADER)


def id_key(event_id: str) -> int:
    """A 64-bit key of an event id: what the queue keeps in memory instead of the id (confirmed on disk when used)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


class _Slot:
    """Where a pending record lies, in as few bytes as Python allows: a backlog of 100,000 events stays small.

    Segment, offset and length are packed into one int; the event id and the time are read back
    from the record when it is read (the queue's id index holds a 64-bit key of the id, :func:`id_key`).
    """

    __slots__ = ("loc", "priority")

    def __init__(self, segment: int, offset: int, priority: int, length: int) -> None:
        self.loc = (segment << (_OFFSET_BITS + _LENGTH_BITS)) | (offset << _LENGTH_BITS) | length
        self.priority = priority

    @property
    def segment(self) -> int:
        return self.loc >> (_OFFSET_BITS + _LENGTH_BITS)

    @segment.setter
    def segment(self, value: int) -> None:
        self.loc = (value << (_OFFSET_BITS + _LENGTH_BITS)) | (self.loc & ((1 << (_OFFSET_BITS + _LENGTH_BITS)) - 1))

    @property
    def offset(self) -> int:
        return (self.loc >> _LENGTH_BITS) & ((1 << _OFFSET_BITS) - 1)

    @offset.setter
    def offset(self, value: int) -> None:
        self.loc = (self.segment << (_OFFSET_BITS + _LENGTH_BITS)) | (value << _LENGTH_BITS) | self.length

    @property
    def length(self) -> int:
        return self.loc & ((1 << _LENGTH_BITS) - 1)

    def pack(self) -> int:
        return (self.loc << 1) | self.priority

    @classmethod
    def unpack(cls, packed: int) -> _Slot:
        slot = cls.__new__(cls)
        slot.loc, slot.priority = packed >> 1, packed & 1
        return slot


class _SlotTable:
    """Sequence number -> :class:`_Slot`, stored packed (one int of 36 bytes an event, no object).

    Reading gives a fresh :class:`_Slot`; a changed slot must be stored back (``table[seq] = slot``).
    """

    __slots__ = ("_packed",)

    def __init__(self) -> None:
        self._packed: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, seq: object) -> bool:
        return seq in self._packed

    def __iter__(self) -> Iterator[int]:
        return iter(self._packed)

    def __getitem__(self, seq: int) -> _Slot:
        return _Slot.unpack(self._packed[seq])

    def __setitem__(self, seq: int, slot: _Slot) -> None:
        if not 0 <= slot.priority <= 1:
            raise ValueError("a priority is 0 (live) or 1 (backlog)")
        self._packed[seq] = slot.pack()

    def get(self, seq: int) -> _Slot | None:
        packed = self._packed.get(seq)
        return None if packed is None else _Slot.unpack(packed)

    def pop(self, seq: int) -> _Slot | None:
        packed = self._packed.pop(seq, None)
        return None if packed is None else _Slot.unpack(packed)

    def items(self) -> Iterator[tuple[int, _Slot]]:
        for seq, packed in self._packed.items():
            yield seq, _Slot.unpack(packed)


_U64 = (1 << 64) - 1

#: a run of records read with one ``read`` spans at most this many bytes (gaps of acknowledged records included)
READ_SPAN = 256 << 10


class EventQueue:
    """Append, iterate pending, acknowledge; one process at a time (a lock file enforces it)."""

    def __init__(
        self,
        directory: Path | str,
        *,
        capacity: int = 100_000,
        key_file: Path | None = None,
        read_only: bool = False,
    ) -> None:
        """Open (creating) the queue; ``read_only`` opens beside a running daemon for the operator commands."""
        self.dir = Path(directory)
        self.read_only = read_only
        if read_only and not self.dir.is_dir():
            raise StoreError(f"{self.dir}: no event queue here")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.capacity = capacity
        self._aead = AESGCM(load_key(key_file or self.dir / "key", create=not read_only))
        self._lock = threading.RLock()
        self._ack_io = threading.Lock()  # acks.log: appended by ack() outside _lock, rewritten by _compact()
        self._lockfile = -1 if read_only else self._take_lock()
        self._pending = _SlotTable()
        # the id index (acks arrive by id): id_key(event id) and sequence number, sorted by key, 16 bytes an
        # event; acknowledged events are dropped lazily (a lookup checks the event is pending and its id)
        self._id_keys = array("Q")
        self._id_seqs = array("Q")
        self._acked: set[int] = set()
        self._segments: dict[int, int] = {}  # segment number -> records it holds that are still pending
        self._seg_min: dict[int, int] = {}  # segment number -> lowest sequence number written in it
        self._order: dict[int, list[int]] = {0: [], 1: []}  # per priority, ascending; acked ones skipped lazily
        self._oldest: tuple[int, float] = (0, 0.0)  # stats(): the oldest pending event's number and time
        self.next_seq = 1
        self.stats_dropped_tail = 0
        self.stats_unreadable = 0
        self._open()

    # --- opening, recovery ---------------------------------------------------------------------------

    def _take_lock(self) -> int:
        import fcntl

        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.dir}: the queue is in use by another process") from None
        return fd

    def _segment_path(self, number: int) -> Path:
        return self.dir / f"seg-{number:08d}.log"

    def _recover_file(self, path: Path) -> Iterator[bytes]:
        """The file's whole, valid records, one at a time (a buffered read each, not the whole file in memory:
        opening a large backlog leaves no big holes in the heap); then a torn tail is cut off."""
        size = path.stat().st_size
        end = 0
        with path.open("rb") as fh:
            while end + HEADER <= size:
                header = fh.read(HEADER)
                length = int.from_bytes(header[2:6], "big")
                if len(header) < HEADER or header[:2] != MAGIC or length > MAX_RECORD or end + HEADER + length > size:
                    break
                payload = fh.read(length)
                if len(payload) != length or binascii.crc32(payload) != int.from_bytes(header[6:10], "big"):
                    break
                yield payload
                end += HEADER + length
        if end < size and not self.read_only:
            self.stats_dropped_tail += size - end
            log.warning("%s: dropping a torn tail of %d bytes at offset %d", path.name, size - end, end)
            with path.open("r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())

    def _open(self) -> None:
        meta = self.dir / "meta.cbor"
        if meta.exists():
            self.next_seq = int(_decode(meta.read_bytes()).get("next_seq", 1))
        acks_path = self.dir / "acks.log"
        if acks_path.exists():
            for payload in self._recover_file(acks_path):
                try:
                    self._acked.update(int(s) for s in _decode(payload))
                except (StoreError, TypeError, ValueError) as exc:
                    log.error("acks.log: skipping an unreadable record: %s", exc)
                    self.stats_unreadable += 1
        numbers = sorted(int(p.name[4:12]) for p in self.dir.glob("seg-*.log"))
        for number in numbers:
            offset = 0
            for payload in self._recover_file(self._segment_path(number)):
                try:
                    record = _decode(payload)
                    seq = int(record["s"])
                except (StoreError, KeyError, TypeError, ValueError) as exc:
                    # a whole frame with a valid CRC but a payload we cannot read: not ours to guess
                    log.error("segment %d: skipping an unreadable record at offset %d: %s", number, offset, exc)
                    self.stats_unreadable += 1
                    offset += HEADER + len(payload)
                    continue
                self._seg_min[number] = min(self._seg_min.get(number, seq), seq)
                self.next_seq = max(self.next_seq, seq + 1)
                if seq not in self._acked:
                    self._id_keys.append(id_key(str(record["i"])))  # sorted once, below
                    self._id_seqs.append(seq)
                    self._pending[seq] = _Slot(number, offset, int(record["p"]), HEADER + len(payload))
                    self._order.setdefault(int(record["p"]), []).append(seq)
                    self._segments[number] = self._segments.get(number, 0) + 1
                else:
                    self._segments.setdefault(number, 0)
                offset += HEADER + len(payload)
        # sorted as one list of key:seq ints (sorted in place): about half the memory of sorting indices by key,
        # which is what a large backlog's opening costs at its peak
        pairs = [key << 64 | seq for key, seq in zip(self._id_keys, self._id_seqs, strict=True)]
        pairs.sort()
        self._id_keys = array("Q", (pair >> 64 for pair in pairs))
        self._id_seqs = array("Q", (pair & _U64 for pair in pairs))
        del pairs
        self._active = numbers[-1] if numbers else 1
        self._segments.setdefault(self._active, 0)
        self._active_size = self._segment_path(self._active).stat().st_size if numbers else 0
        if not self.read_only:
            self._compact()
        log.info("queue %s: %d pending, next sequence %d", self.dir, len(self._pending), self.next_seq)

    # --- the API ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError("the queue is open read-only")

    def append(self, event_id: str, body: bytes, *, priority: int = 0, seq: int | None = None) -> int:
        """Store one event durably (written and fsync'd); return its sequence number.

        ``seq`` lets the caller reserve the number first (it is inside the signed event);
        it must be :meth:`reserve`'s value.
        """
        self._writable()
        with self._lock:
            if len(self._pending) >= self.capacity:
                log.error("queue full (%d events): refusing a new event", self.capacity)
                raise QueueFullError(f"the event queue is full ({self.capacity} unacknowledged events)")
            seq = self.next_seq if seq is None else seq
            if seq < self.next_seq:
                raise StoreError(f"sequence number {seq} was already used")
            now = time.time()
            nonce = secrets.token_bytes(12)
            sealed = nonce + self._aead.encrypt(nonce, body, f"{seq}:{event_id}".encode())
            payload = cbor2.dumps({"s": seq, "i": event_id, "p": priority, "t": now, "b": sealed})
            record = frame(payload)
            if self._active_size + len(record) > SEGMENT_BYTES and self._active_size:
                self._rotate()
            path = self._segment_path(self._active)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, record)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if self._active_size == 0:
                    fsync_dir(self.dir)
            except OSError as exc:
                raise StoreError(f"cannot write the event queue: {exc}") from exc
            self._index_id(event_id, seq)
            self._pending[seq] = _Slot(self._active, self._active_size, priority, len(record))
            self._segments[self._active] = self._segments.get(self._active, 0) + 1
            self._seg_min.setdefault(self._active, seq)
            self._order.setdefault(priority, []).append(seq)
            self._active_size += len(record)
            self.next_seq = seq + 1
            return seq

    def reserve(self) -> int:
        """The sequence number the next append will get."""
        return self.next_seq

    def _index_id(self, event_id: str, seq: int) -> None:
        key = id_key(event_id)
        at = bisect.bisect_right(self._id_keys, key)
        self._id_keys.insert(at, key)
        self._id_seqs.insert(at, seq)

    def _prune_ids(self) -> None:
        """Drop acknowledged events from the id index once they are most of it (amortised O(1) an ack)."""
        if len(self._id_keys) <= 2 * len(self._pending) + 1024:
            return
        pending = self._pending
        pairs = zip(self._id_keys, self._id_seqs, strict=True)
        self._id_keys = array("Q", (key for key, seq in pairs if seq in pending))
        self._id_seqs = array("Q", (seq for seq in self._id_seqs if seq in pending))

    def _rotate(self) -> None:
        self._active += 1
        self._active_size = 0
        self._segments.setdefault(self._active, 0)

    def _read(self, seq: int, slot: _Slot) -> Entry:
        return self._read_run([(seq, slot)])[0]

    def _read_run(self, run: list[tuple[int, _Slot]]) -> list[Entry]:
        """Entries for ``run`` (slots in file order): one open, seek and read per segment span, not per record.

        Each record is checked again as it was at open (magic, length, CRC) before its body is decrypted.
        """
        out: list[Entry] = []
        i = 0
        while i < len(run):
            first = run[i][1]
            j = i + 1
            while j < len(run):
                slot = run[j][1]
                if slot.segment != first.segment or slot.offset < first.offset:
                    break
                if slot.offset + (slot.length or HEADER) - first.offset > READ_SPAN:
                    break
                j += 1
            last = run[j - 1][1]
            span = last.offset + (last.length or HEADER + MAX_RECORD) - first.offset
            try:
                with self._segment_path(first.segment).open("rb") as fh:
                    fh.seek(first.offset)
                    data = fh.read(span)
            except OSError as exc:
                raise StoreError(f"cannot read segment {first.segment}: {exc}") from exc
            for seq, slot in run[i:j]:
                out.append(self._entry(seq, slot, data, slot.offset - first.offset))
            i = j
        return out

    def _entry(self, seq: int, slot: _Slot, data: bytes, at: int) -> Entry:
        header = data[at : at + HEADER]
        if len(header) < HEADER or header[:2] != MAGIC:
            raise StoreError(f"event {seq}: no record at offset {slot.offset} of segment {slot.segment}")
        length = int.from_bytes(header[2:6], "big")
        payload = data[at + HEADER : at + HEADER + length]
        if len(payload) != length or binascii.crc32(payload) != int.from_bytes(header[6:10], "big"):
            raise StoreError(f"event {seq}: damaged record at offset {slot.offset} of segment {slot.segment}")
        record = _decode(payload)
        try:
            event_id, stamp, sealed = str(record["i"]), float(record["t"]), record["b"]
            if int(record["s"]) != seq:
                raise StoreError(f"event {seq}: the record at offset {slot.offset} is event {record['s']}")
            # the id in clear is bound to the body: the AEAD's associated data
            body = self._aead.decrypt(sealed[:12], sealed[12:], f"{seq}:{event_id}".encode())
        except InvalidTag:
            raise StoreError(f"event {seq} does not decrypt: wrong queue key or damaged record") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"event {seq}: unreadable record: {exc}") from None
        return Entry(seq, event_id, slot.priority, stamp, body)

    def get(self, seq: int) -> Entry | None:
        with self._lock:
            slot = self._pending.get(seq)
            return None if slot is None else self._read(seq, slot)

    def pending(self, limit: int | None = None, *, after: int = 0) -> list[Entry]:
        """Pending events, live ones (priority 0) first, each priority in sequence order."""
        with self._lock:
            order = sorted((s.priority, seq) for seq, s in self._pending.items() if seq > after)
            if limit is not None:
                order = order[:limit]
            return self._read_run([(seq, self._pending[seq]) for _, seq in order])

    def pending_seqs(self) -> list[int]:
        with self._lock:
            return sorted(self._pending)

    def ack(self, seqs: list[int] | set[int]) -> int:
        """Acknowledge (durably); returns how many were pending.  Unknown numbers are ignored.

        The acknowledgement is written and fsync'd outside the queue's main lock (under its own), so
        appends and reads go on meanwhile; the events leave the queue once the record is durable.
        """
        self._writable()
        with self._lock:
            known = sorted({s for s in seqs if s in self._pending})
        if not known:
            return 0
        with self._ack_io:  # lock order: _ack_io, then _lock
            try:
                fd = os.open(self.dir / "acks.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, frame(cbor2.dumps(known)))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StoreError(f"cannot record acknowledgements: {exc}") from exc
            with self._lock:
                done = 0
                for seq in known:
                    slot = self._pending.pop(seq)
                    if slot is None:  # acknowledged meanwhile by another caller
                        continue
                    self._acked.add(seq)
                    self._segments[slot.segment] -= 1
                    done += 1
                self._prune_ids()
                self._compact()
                return done

    def seq_of(self, event_id: str) -> int | None:
        """The sequence number of a pending event by its id (acks arrive by id): a bisection of the index by
        the id's 64-bit key, confirmed by reading the record's id (another id with the same key is not this one)."""
        key = id_key(event_id)
        with self._lock:
            at = bisect.bisect_left(self._id_keys, key)
            while at < len(self._id_keys) and self._id_keys[at] == key:
                seq = self._id_seqs[at]
                slot = self._pending.get(seq)
                if slot is not None and self._read(seq, slot).event_id == event_id:
                    return seq
                at += 1
            return None

    def demote_pending(self) -> None:
        """After a restart or an outage, what is pending is backlog: live events go first."""
        with self._lock:
            for seq in self._pending:  # values replaced in place, no copy of a large backlog
                slot = self._pending[seq]
                slot.priority = 1
                self._pending[seq] = slot
            self._order = {0: [], 1: sorted(self._pending)}

    def scan(self, priority: int, after: int, limit: int) -> list[Entry]:
        """Up to ``limit`` pending entries of one priority with sequence numbers above ``after``.

        Cost depends on ``limit``, not on the backlog: the order list is searched by bisection, and
        the records, which lie in sequence order in the segments, are read a run at a time
        (:meth:`_read_run`: one file access per segment span instead of one per event).
        """
        with self._lock:
            order = self._order.get(priority, [])
            if len(order) > 2 * len(self._pending) + 1024:  # drop acknowledged numbers now and then
                order[:] = [seq for seq in order if seq in self._pending]
            chosen: list[tuple[int, _Slot]] = []
            i = bisect.bisect_right(order, after)
            while i < len(order) and len(chosen) < limit:
                seq = order[i]
                slot = self._pending.get(seq)
                if slot is not None and slot.priority == priority:
                    chosen.append((seq, slot))
                i += 1
            return self._read_run(chosen)

    def _compact(self) -> None:
        """Delete segments with nothing pending (never the active one); shrink acks.log with them."""
        gone = [n for n, count in self._segments.items() if count == 0 and n != self._active]
        if not gone:
            return
        # the next sequence number survives the deletion of every segment that held it
        write_atomic(self.dir / "meta.cbor", cbor2.dumps({"next_seq": self.next_seq}))
        for number in gone:
            self._segment_path(number).unlink(missing_ok=True)
            del self._segments[number]
            self._seg_min.pop(number, None)
        # acknowledgements matter only for records still on disk
        floor = min(self._seg_min.values(), default=self.next_seq)
        kept = {seq for seq in self._acked if seq >= floor}
        self._acked = kept
        write_atomic(self.dir / "acks.log", frame(cbor2.dumps(sorted(kept))) if kept else b"")
        fsync_dir(self.dir)

    def purge_acked(self) -> int:
        """Rewrite every segment so that no acknowledged event remains on disk; returns segments rewritten.

        The active segment is closed first (appends continue in a fresh one), so it is purged too.

        Pending records are copied byte for byte (same sequence numbers, same ciphertext)
        into a fresh segment written atomically; then the old segment is deleted.
        """
        self._writable()
        with self._ack_io, self._lock:
            rewritten = 0
            if self._active_size > 0:
                self._rotate()  # the active segment holds acknowledged events too: purge it like the others
            for number in sorted(n for n in self._segments if n != self._active):
                slots = sorted((seq, s) for seq, s in self._pending.items() if s.segment == number)
                if not slots:
                    continue
                old = self._segment_path(number)
                data = old.read_bytes()
                target = max(self._segments) + 1
                chunks, moved = [], []
                offset = 0
                for seq, slot in slots:
                    length = int.from_bytes(data[slot.offset + 2 : slot.offset + 6], "big")
                    chunks.append(data[slot.offset : slot.offset + HEADER + length])
                    moved.append((seq, offset))
                    offset += HEADER + length
                write_atomic(self._segment_path(target), b"".join(chunks))
                for seq, new_offset in moved:
                    slot = self._pending[seq]
                    slot.segment = target
                    slot.offset = new_offset  # the length is unchanged: copied byte for byte
                    self._pending[seq] = slot
                self._segments[target] = len(moved)
                self._seg_min[target] = slots[0][0]
                self._segments[number] = 0
                # the new segment is older than the active one but numbered after it: keep appending to a fresh one
                self._active = target + 1
                self._active_size = 0
                self._segments[self._active] = 0
                rewritten += 1
            self._compact()
            return rewritten

    def stats(self) -> dict[str, Any]:
        with self._lock:
            # the lowest pending number was appended first, so it is the oldest; found from the front of the
            # per-priority order lists (not a scan of every pending event), its time read back once per number
            fronts = (next((seq for seq in order if seq in self._pending), None) for order in self._order.values())
            first = min((seq for seq in fronts if seq is not None), default=None)
            if first is not None and self._oldest[0] != first:
                self._oldest = (first, self._read(first, self._pending[first]).time)
            oldest = None if first is None else self._oldest[1]
            size = sum(p.stat().st_size for p in self.dir.glob("*.log"))
            return {
                "pending": len(self._pending),
                "capacity": self.capacity,
                "next_seq": self.next_seq,
                "segments": len(self._segments),
                "bytes": size,
                "oldest_pending_age": None if oldest is None else round(time.time() - oldest, 1),
                "dropped_tail_bytes": self.stats_dropped_tail,
                "unreadable_records": self.stats_unreadable,
            }

    def close(self) -> None:
        with self._lock:
            if self._lockfile >= 0:
                os.close(self._lockfile)
                self._lockfile = -1
