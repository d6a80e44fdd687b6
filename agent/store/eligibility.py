"""The eligibility cache on disk: one SQLite file (WAL), every record sealed.

Layout (``state_dir/eligibility.db``, mode 0600)::

    meta(k TEXT PRIMARY KEY, v BLOB)     k = 'state': sealed CBOR {as_of, salt, count}
    records(k BLOB PRIMARY KEY, v BLOB)  k = HMAC-SHA256(k_index, id_number)
                                         v = nonce (12) | AES-256-GCM(k_records, value, aad=k)

Why SQLite and not TinyDB or a JSON document (numbers in docs/storage.md): a lookup is one
B-tree probe whatever the record count, nothing proportional to the record count lives in
Python, and a transaction gives all-or-nothing replacement for free.

Keys come from one 32-byte key of the caller through HKDF-SHA256: ``k_index`` (row keys, so
a lookup needs no ID number in clear), ``k_state`` (the state row), and per snapshot
``k_records`` from a fresh random salt kept in the state row, so no record key seals more
than one snapshot's worth of records (AES-GCM random nonces stay far below 2**32 per key).
The record value is opaque bytes here; the app layer decides what it holds.

Crash safety: a snapshot builds a new table and swaps it for the old one inside one
write transaction; a delta is one transaction; ``as_of`` lives in the same database and
changes in the same transaction.  A power cut leaves the old state or the new, never a
mix.  Readers use their own connection: in WAL mode they see the last committed state,
so lookups go on at full speed while a snapshot is being written.

A file that does not open (not a database, damaged pages, a key that does not open the
state row) is logged and removed, and the cache starts empty: the hub's next snapshot
refills it.  It is only a cache; a terminal without it refers patients, it never admits
on guesswork.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agent.store.errors import StoreError

log = logging.getLogger(__name__)

_INFO = b"gate-agent eligibility v1 "
_STATE_AAD = b"gate-agent eligibility state v1"
_NONCE = 12
_SALT = 16
_CACHE_KIB = -2000  # SQLite's default page cache (2 MB), negative = KiB
_SNAPSHOT_CACHE_KIB = -8000  # while a snapshot is written (measured in bench/eligibility.py)


class StaleDataError(StoreError):
    """A snapshot or delta older than the data held, or a delta without a snapshot; nothing changed."""


@dataclass(frozen=True)
class StoreState:
    """What the hub's data was current at, and how many records it holds."""

    as_of: dt.datetime
    count: int


def _derive(key: bytes, purpose: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO + purpose).derive(key)


class _Sealed:
    """The state row opened: the state and the record cipher of its snapshot."""

    __slots__ = ("aead", "blob", "salt", "state")

    def __init__(self, blob: bytes, state: StoreState, salt: bytes, aead: AESGCM) -> None:
        self.blob, self.state, self.salt, self.aead = blob, state, salt, aead


def unlink_durably(path: Path) -> None:
    """Delete ``path`` and fsync its directory, so the deletion survives a power cut."""
    path.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EligibilityStore:
    """ID number -> sealed bytes, with ``as_of``; ``path=None`` keeps it in memory (one connection)."""

    def __init__(self, path: Path | None, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise StoreError("the eligibility store key must be 32 bytes")
        self.path = path
        self._key = key
        self._k_index = _derive(key, b"index")
        self._state_aead = AESGCM(_derive(key, b"state"))
        self._write_lock = threading.RLock()
        self._read_lock = self._write_lock if path is None else threading.Lock()
        self._opened: _Sealed | None = None
        self._writer, self._reader = self._open()

    # -- opening ------------------------------------------------------------------------

    def _connect(self, target: str) -> sqlite3.Connection:
        return sqlite3.connect(target, check_same_thread=False, isolation_level=None)

    def _open(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        if self.path is None:
            conn = self._connect(":memory:")
            self._init_schema(conn)
            return conn, conn
        try:
            return self._open_file()
        except (sqlite3.Error, StoreError, OSError) as exc:
            log.error("eligibility cache %s does not open (%s); removing it and starting empty", self.path, exc)
        try:
            self._remove_files()
            return self._open_file()
        except (sqlite3.Error, StoreError, OSError) as exc:
            log.error("eligibility cache %s cannot be created (%s); keeping it in memory until restart", self.path, exc)
        self.path, self._read_lock, self._opened = None, self._write_lock, None
        return self._open()

    def _open_file(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        assert self.path is not None
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        writer = self._connect(str(self.path))
        reader: sqlite3.Connection | None = None
        try:
            self._init_schema(writer)  # before WAL: auto_vacuum can only be chosen while the file is empty
            writer.execute("PRAGMA journal_mode=WAL")
            writer.execute("PRAGMA synchronous=FULL")
            check = writer.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise StoreError(f"integrity check: {check[0] if check else 'no answer'}")
            reader = self._connect(str(self.path))
            reader.execute("PRAGMA query_only=1")
            row = reader.execute("SELECT v FROM meta WHERE k = 'state'").fetchone()
            self._opened = None if row is None else self._open_state(bytes(row[0]))
        except BaseException:
            writer.close()
            if reader is not None:
                reader.close()
            raise
        return writer, reader

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0 and self._is_empty(conn):
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a new snapshot's freed pages go back to the disk
        conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        conn.execute("CREATE TABLE IF NOT EXISTS records (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")

    @staticmethod
    def _is_empty(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0)

    def _remove_files(self) -> None:
        assert self.path is not None
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    # -- sealing ------------------------------------------------------------------------

    def _row_key(self, id_number: str) -> bytes:
        return hmac.digest(self._k_index, id_number.encode(), "sha256")

    def _open_state(self, blob: bytes) -> _Sealed:
        opened = self._opened
        if opened is not None and opened.blob == blob:
            return opened
        try:
            doc = cbor2.loads(self._state_aead.decrypt(blob[:_NONCE], blob[_NONCE:], _STATE_AAD))
            as_of = dt.datetime.fromisoformat(doc["as_of"])
            salt, count = bytes(doc["salt"]), int(doc["count"])
        except InvalidTag:
            raise StoreError("the state row does not authenticate (another key, or damaged)") from None
        except (cbor2.CBORDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"the state row is malformed: {exc}") from exc
        return _Sealed(blob, StoreState(as_of, count), salt, AESGCM(_derive(self._key, b"records", salt)))

    def _seal_state(self, as_of: dt.datetime, salt: bytes, count: int) -> bytes:
        doc = cbor2.dumps({"as_of": as_of.isoformat(), "salt": salt, "count": count})
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._state_aead.encrypt(nonce, doc, _STATE_AAD)

    @staticmethod
    def _seal(aead: AESGCM, row_key: bytes, value: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + aead.encrypt(nonce, value, row_key)

    # -- reading ------------------------------------------------------------------------

    @property
    def state(self) -> StoreState | None:
        """The last committed state (``None``: no snapshot yet)."""
        opened = self._opened
        return None if opened is None else opened.state

    def get(self, id_number: str) -> tuple[StoreState | None, bytes | None]:
        """The state and the value for ``id_number``, read in one transaction (never a mix of two)."""
        row_key = self._row_key(id_number)
        with self._read_lock:
            try:
                row = self._reader.execute(
                    "SELECT (SELECT v FROM meta WHERE k = 'state'), (SELECT v FROM records WHERE k = ?)", (row_key,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"eligibility cache read failed: {exc}") from exc
        if row is None or row[0] is None:
            return None, None
        opened = self._open_state(bytes(row[0]))
        if row[1] is None:
            return opened.state, None
        sealed = bytes(row[1])
        try:
            return opened.state, opened.aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], row_key)
        except InvalidTag:
            raise StoreError("an eligibility record does not authenticate") from None

    # -- writing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"eligibility cache write failed: {exc}") from exc
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StoreError(f"eligibility cache commit failed: {exc}") from exc

    def _held(self, conn: sqlite3.Connection) -> _Sealed | None:
        row = conn.execute("SELECT v FROM meta WHERE k = 'state'").fetchone()
        return None if row is None else self._open_state(bytes(row[0]))

    def replace(self, items: Iterable[tuple[str, bytes]], as_of: dt.datetime) -> int:
        """Replace everything by ``items`` (a later duplicate wins) in one transaction; returns the count.

        ``items`` is consumed inside the transaction: an exception it raises rolls everything back.
        """
        salt = secrets.token_bytes(_SALT)
        aead = AESGCM(_derive(self._key, b"records", salt))
        with self._write_lock:
            try:
                with self._transaction() as conn:
                    held = self._held(conn)
                    if held is not None and as_of < held.state.as_of:
                        raise StaleDataError("snapshot is older than the cache")
                    conn.execute(f"PRAGMA cache_size={_SNAPSHOT_CACHE_KIB}")  # random-order inserts: 2x faster
                    conn.execute("DROP TABLE IF EXISTS records_next")
                    conn.execute("CREATE TABLE records_next (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
                    conn.executemany(
                        "INSERT OR REPLACE INTO records_next (k, v) VALUES (?, ?)",
                        self._sealed_rows(aead, items),
                    )
                    count = conn.execute("SELECT count(*) FROM records_next").fetchone()[0]
                    conn.execute("DROP TABLE records")
                    conn.execute("ALTER TABLE records_next RENAME TO records")
                    blob = self._seal_state(as_of, salt, count)
                    conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('state', ?)", (blob,))
            except sqlite3.Error as exc:
                raise StoreError(f"eligibility snapshot not stored: {exc}") from exc
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._writer.execute(f"PRAGMA cache_size={_CACHE_KIB}")  # and give the pages back
            self._opened = _Sealed(blob, StoreState(as_of, count), salt, aead)
            self._compact()
        return int(count)

    def _sealed_rows(self, aead: AESGCM, items: Iterable[tuple[str, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        for id_number, value in items:
            row_key = self._row_key(id_number)
            yield row_key, self._seal(aead, row_key, value)

    def update(
        self, upserts: Iterable[tuple[str, bytes]], deletes: Iterable[str], as_of: dt.datetime
    ) -> tuple[int, int]:
        """Add/replace and remove in one transaction; returns (upserted, delete requests)."""
        with self._write_lock:
            try:
                with self._transaction() as conn:
                    held = self._held(conn)
                    if held is None:
                        raise StaleDataError("a delta needs a snapshot first")
                    if as_of < held.state.as_of:
                        raise StaleDataError("delta is older than the cache")
                    count, upserted, asked = held.state.count, 0, 0
                    for id_number, value in upserts:
                        row_key = self._row_key(id_number)
                        known = conn.execute("SELECT 1 FROM records WHERE k = ?", (row_key,)).fetchone()
                        conn.execute(
                            "INSERT OR REPLACE INTO records (k, v) VALUES (?, ?)",
                            (row_key, self._seal(held.aead, row_key, value)),
                        )
                        count += known is None
                        upserted += 1
                    for id_number in deletes:
                        cur = conn.execute("DELETE FROM records WHERE k = ?", (self._row_key(id_number),))
                        count -= max(cur.rowcount, 0)
                        asked += 1
                    blob = self._seal_state(as_of, held.salt, count)
                    conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('state', ?)", (blob,))
            except sqlite3.Error as exc:
                raise StoreError(f"eligibility delta not stored: {exc}") from exc
            self._opened = _Sealed(blob, StoreState(as_of, count), held.salt, held.aead)
        return upserted, asked

    def _compact(self) -> None:
        """Give the old snapshot's pages back and empty the WAL (best effort: a reader may hold it)."""
        if self.path is None:
            return
        try:
            # executescript steps the pragma to the end; execute() would free one page per call
            self._writer.executescript("PRAGMA incremental_vacuum;")
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("eligibility cache compaction skipped: %s", exc)

    def stats(self) -> dict[str, Any]:
        state = self.state
        size = self.path.stat().st_size if self.path is not None and self.path.exists() else 0
        return {"records": 0 if state is None else state.count, "bytes": size}

    def close(self) -> None:
        with self._write_lock, contextlib.ExitStack() as stack:
            if self._reader is not self._writer:
                stack.enter_context(self._read_lock)
                self._reader.close()
            self._writer.close()
