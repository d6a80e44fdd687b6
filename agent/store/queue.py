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
"""

from __future__ import annotations

import binascii
import io
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.store.errors import KeyFileError, QueueFullError, StoreError

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


#: CBOR tags for shared values (28 shareable, 29 shared reference): an item can contain itself through them
_SHARED_TAGS = (28, 29)
_MAX_DEPTH = 64


def _cbor_walk(data: bytes, pos: int, depth: int) -> int:
    """Skip one CBOR item at ``pos`` (RFC 8949, 3); refuse shared references and deep nesting. The end offset."""
    if depth > _MAX_DEPTH:
        raise StoreError(f"CBOR nested deeper than {_MAX_DEPTH} levels")
    if pos >= len(data):
        raise StoreError("malformed CBOR: truncated item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        value = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise StoreError("malformed CBOR: truncated argument")
        value = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    elif info == 31 and major in (2, 3, 4, 5):
        while True:  # indefinite length: items (chunks) until the break byte
            if pos >= len(data):
                raise StoreError("malformed CBOR: indefinite item without a break")
            if data[pos] == 0xFF:
                return pos + 1
            if major in (2, 3) and data[pos] >> 5 != major:
                raise StoreError("malformed CBOR: a chunk of another type in an indefinite string")
            pos = _cbor_walk(data, pos, depth + 1)
            if major == 5:
                pos = _cbor_walk(data, pos, depth + 1)
    else:
        raise StoreError(f"malformed CBOR: reserved additional information {info}")
    if major in (2, 3):
        if value > len(data) - pos:
            raise StoreError("malformed CBOR: string longer than the data")
        return pos + value
    if major in (4, 5):
        if value > len(data) - pos:
            raise StoreError("malformed CBOR: more items than bytes")
        for _ in range(value * (2 if major == 5 else 1)):
            pos = _cbor_walk(data, pos, depth + 1)
        return pos
    if major == 6:
        if value in _SHARED_TAGS:
            raise StoreError(f"CBOR shared values (tag {value}) are not accepted")
        return _cbor_walk(data, pos, depth + 1)
    return pos  # 0, 1: integers; 7: simple values and floats


def decode_cbor(data: bytes, limit: int = MAX_RECORD) -> Any:
    """Strict CBOR: one item, no trailing bytes, bounded size (cbor2.loads ignores trailing bytes).

    Shared values (tags 28/29, which let an item contain itself) and nesting deeper than 64 are refused
    before cbor2 sees the bytes.
    """
    if len(data) > limit:
        raise StoreError(f"CBOR item of {len(data)} bytes exceeds the {limit}-byte limit")
    end = _cbor_walk(data, 0, 0)
    if end != len(data):
        raise StoreError(f"{len(data) - end} trailing bytes after the CBOR item")
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, RecursionError) as exc:
        raise StoreError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise StoreError(f"{len(data) - stream.tell()} trailing bytes after the CBOR item")
    return value


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def load_key(path: Path, create: bool = True) -> bytes:
    """The AES key; created (0600) when missing and ``create``; refused when others can read it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            raise KeyFileError(f"{path}: queue key file is missing") from None
        key = AESGCM.generate_key(256)
        write_atomic(path, key, 0o600)
        log.info("created queue key %s", path)
        return key
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: queue key file must be readable by its owner only (chmod 600)")
    key = path.read_bytes()
    if len(key) != 32:
        raise KeyFileError(f"{path}: queue key file must hold 32 bytes, not {len(key)}")
    return key


@dataclass(frozen=True)
class Entry:
    seq: int
    event_id: str
    priority: int  # 0 live, 1 backlog (replayed after a restart or outage)
    time: float
    body: bytes = field(repr=False)  # decrypted event bytes (what the uplink sends)


@dataclass
class _Slot:
    segment: int
    offset: int
    event_id: str
    priority: int
    time: float


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
        self._lockfile = -1 if read_only else self._take_lock()
        self._pending: dict[int, _Slot] = {}
        self._ids: dict[str, int] = {}  # event id -> sequence number, pending events only (acks by id)
        self._acked: set[int] = set()
        self._segments: dict[int, int] = {}  # segment number -> records it holds that are still pending
        self._seg_min: dict[int, int] = {}  # segment number -> lowest sequence number written in it
        self._order: dict[int, list[int]] = {0: [], 1: []}  # per priority, ascending; acked ones skipped lazily
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

    def _recover_file(self, path: Path) -> list[bytes]:
        data = path.read_bytes()
        records, end = read_frames(data)
        if end < len(data) and not self.read_only:
            self.stats_dropped_tail += len(data) - end
            log.warning("%s: dropping a torn tail of %d bytes at offset %d", path.name, len(data) - end, end)
            with path.open("r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        return records

    def _open(self) -> None:
        meta = self.dir / "meta.cbor"
        if meta.exists():
            self.next_seq = int(decode_cbor(meta.read_bytes()).get("next_seq", 1))
        acks_path = self.dir / "acks.log"
        if acks_path.exists():
            for payload in self._recover_file(acks_path):
                try:
                    self._acked.update(int(s) for s in decode_cbor(payload))
                except (StoreError, TypeError, ValueError) as exc:
                    log.error("acks.log: skipping an unreadable record: %s", exc)
                    self.stats_unreadable += 1
        numbers = sorted(int(p.name[4:12]) for p in self.dir.glob("seg-*.log"))
        for number in numbers:
            offset = 0
            for payload in self._recover_file(self._segment_path(number)):
                try:
                    record = decode_cbor(payload)
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
                    self._pending[seq] = _Slot(number, offset, str(record["i"]), int(record["p"]), float(record["t"]))
                    self._ids[str(record["i"])] = seq
                    self._order.setdefault(int(record["p"]), []).append(seq)
                    self._segments[number] = self._segments.get(number, 0) + 1
                else:
                    self._segments.setdefault(number, 0)
                offset += HEADER + len(payload)
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
            self._pending[seq] = _Slot(self._active, self._active_size, event_id, priority, now)
            self._ids[event_id] = seq
            self._segments[self._active] = self._segments.get(self._active, 0) + 1
            self._seg_min.setdefault(self._active, seq)
            self._order.setdefault(priority, []).append(seq)
            self._active_size += len(record)
            self.next_seq = seq + 1
            return seq

    def reserve(self) -> int:
        """The sequence number the next append will get."""
        return self.next_seq

    def _rotate(self) -> None:
        self._active += 1
        self._active_size = 0
        self._segments.setdefault(self._active, 0)

    def _read(self, seq: int, slot: _Slot) -> Entry:
        with self._segment_path(slot.segment).open("rb") as fh:
            fh.seek(slot.offset)
            header = fh.read(HEADER)
            payload = fh.read(int.from_bytes(header[2:6], "big"))
        record = decode_cbor(payload)
        sealed = record["b"]
        try:
            body = self._aead.decrypt(sealed[:12], sealed[12:], f"{seq}:{slot.event_id}".encode())
        except InvalidTag:
            raise StoreError(f"event {seq} does not decrypt: wrong queue key or damaged record") from None
        return Entry(seq, slot.event_id, slot.priority, slot.time, body)

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
            return [self._read(seq, self._pending[seq]) for _, seq in order]

    def pending_seqs(self) -> list[int]:
        with self._lock:
            return sorted(self._pending)

    def iter_pending(self) -> Iterator[Entry]:
        for seq in self.pending_seqs():
            entry = self.get(seq)
            if entry is not None:
                yield entry

    def ack(self, seqs: list[int] | set[int]) -> int:
        """Acknowledge (durably); returns how many were pending.  Unknown numbers are ignored."""
        self._writable()
        with self._lock:
            known = sorted({s for s in seqs if s in self._pending})
            if not known:
                return 0
            try:
                fd = os.open(self.dir / "acks.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, frame(cbor2.dumps(known)))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StoreError(f"cannot record acknowledgements: {exc}") from exc
            for seq in known:
                slot = self._pending.pop(seq)
                if self._ids.get(slot.event_id) == seq:
                    del self._ids[slot.event_id]
                self._acked.add(seq)
                self._segments[slot.segment] -= 1
            self._compact()
            return len(known)

    def seq_of(self, event_id: str) -> int | None:
        """The sequence number of a pending event by its id (a dict lookup: acks arrive by id)."""
        with self._lock:
            return self._ids.get(event_id)

    def demote_pending(self) -> None:
        """After a restart or an outage, what is pending is backlog: live events go first."""
        with self._lock:
            for slot in self._pending.values():
                slot.priority = 1
            self._order = {0: [], 1: sorted(self._pending)}

    def scan(self, priority: int, after: int, limit: int) -> list[Entry]:
        """Up to ``limit`` pending entries of one priority with sequence numbers above ``after``.

        Cost depends on ``limit``, not on the backlog: the order list is searched by bisection.
        """
        import bisect

        with self._lock:
            order = self._order.get(priority, [])
            if len(order) > 2 * len(self._pending) + 1024:  # drop acknowledged numbers now and then
                order[:] = [seq for seq in order if seq in self._pending]
            out: list[Entry] = []
            i = bisect.bisect_right(order, after)
            while i < len(order) and len(out) < limit:
                seq = order[i]
                slot = self._pending.get(seq)
                if slot is not None and slot.priority == priority:
                    out.append(self._read(seq, slot))
                i += 1
            return out

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
        """Rewrite older segments so that no acknowledged event remains on disk; returns segments rewritten.

        Pending records are copied byte for byte (same sequence numbers, same ciphertext)
        into a fresh segment written atomically; then the old segment is deleted.
        """
        self._writable()
        with self._lock:
            rewritten = 0
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
                    self._pending[seq].segment = target
                    self._pending[seq].offset = new_offset
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
            oldest = min((s.time for s in self._pending.values()), default=None)
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
