"""Signed hub -> terminal messages: every command, ack and reply is COSE_Sign1 by the hub's key.

A message a terminal accepts must (in this order, and nothing is parsed beyond the
COSE envelope before the signature verifies):

1. be a COSE_Sign1 (EdDSA) whose signature verifies with the hub key pinned at enrolment;
2. carry a CBOR map payload with exactly the fields below, plain values only (no tags,
   so no shared references), bounded depth;
3. name this facility and this terminal, and the kind of the topic it came on;
4. be issued no later than now + skew and not expired (``exp`` > now), with a lifetime
   ``exp - iat`` of at most ``max_lifetime``;
5. carry a counter above the terminal's high-water mark for that kind; the mark is
   written to disk (fsync) before the message is acted on, so a replay is refused
   even after a restart.  Acks and replies are the exception (``IDEMPOTENT``): an ack
   names event ids the hub has stored, ids are UUIDs never reused, so a replayed ack can
   remove nothing that is not stored; a reply is matched to its query by the query's
   random ``corr``, taken once, so a replayed reply finds no query waiting; and several
   hub workers sharing one subscription sign for the same terminal with their own
   counters, which arrive out of order (and a reply waits for no fsync on the network
   thread while a patient waits for it).  Steps 1 to 4 still hold for them.

Payload (``docs/mqtt.md``)::

    {"v": 1, "facility": tstr, "terminal": tstr, "kind": "cmd" / "ack" / "reply",
     "ctr": uint, "iat": uint, "exp": uint, "body": {* tstr => any}}

The hub's counter is one per hub (microseconds since the epoch, forced to increase),
so it survives hub restarts without state; the terminal keeps one mark per kind,
because the three kinds travel on different topics and may be reordered between them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.codec.cbor import CborError, decode_cbor
from agent.errors import GateAgentError
from agent.store import files
from agent.store.files import public_pem as public_pem  # the hub key's public PEM, for its users here
from agent.store.files import write_atomic
from agent.uplink import cose

log = logging.getLogger(__name__)

VERSION = 1
KINDS = ("cmd", "ack", "reply")
#: kinds whose replay is harmless, so no high-water mark is kept for them (see the module's docstring)
IDEMPOTENT = frozenset({"ack", "reply"})
FIELDS = frozenset({"v", "facility", "terminal", "kind", "ctr", "iat", "exp", "body"})
MAX_MESSAGE = 8 * 1024 * 1024  # an eligibility snapshot of a large clinic fits
MAX_DEPTH = 12
#: Default lifetimes the hub gives each kind (seconds); the terminal caps any lifetime at ``max_lifetime``.
LIFETIMES = {"cmd": 3600, "ack": 600, "reply": 60}


class HubMessageError(GateAgentError):
    """A hub message was rejected; ``reason`` is short, stable and free of payload data (it is logged)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class HubKeyError(GateAgentError):
    """The pinned hub key or the high-water mark file cannot be used."""


# --- keys -----------------------------------------------------------------------------------------------


def raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: ed25519.Ed25519PublicKey) -> bytes:
    """The COSE kid: the first 8 bytes of SHA-256 over the raw public key."""
    return hashlib.sha256(raw_public(key)).digest()[:8]


def grouped_sha256(data: bytes) -> str:
    """SHA-256 in groups of four hex digits, for an installer to compare by eye."""
    digest = hashlib.sha256(data).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def fingerprint(key: ed25519.Ed25519PublicKey) -> str:
    """The grouped SHA-256 of the raw public key."""
    return grouped_sha256(raw_public(key))


def load_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; HubKeyError naming the file otherwise."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise HubKeyError(f"{path}: cannot load the hub's public key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise HubKeyError(f"{path}: the hub's key must be Ed25519")
    return key


# --- strict payload decoding ----------------------------------------------------------------------------


def _plain(value: Any, depth: int, path: tuple[int, ...]) -> Any:
    """Lists, maps with text keys, text, bytes, ints, floats, bools, null; nothing else, no cycles, bounded depth."""
    if depth > MAX_DEPTH:
        raise HubMessageError("malformed", "nested too deeply")
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if id(value) in path:
        raise HubMessageError("malformed", "self-referencing CBOR")
    inner = (*path, id(value))
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1, inner) for v in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise HubMessageError("malformed", "map keys must be text")
            out[k] = _plain(v, depth + 1, inner)
        return out
    raise HubMessageError("malformed", f"unexpected CBOR item {type(value).__name__}")


def decode_payload(data: bytes) -> dict[str, Any]:
    """The payload map, strictly: plain values only (unknown tags, dates, sets and cycles are refused).

    The bytes go through the project's strict decoder first (one item, no trailing bytes, at most
    MAX_MESSAGE bytes, no shared values, nesting at most 64 deep).
    """
    try:
        value = decode_cbor(data, MAX_MESSAGE)
    except CborError as exc:
        raise HubMessageError("malformed", f"payload is not plain CBOR (self-referencing, too deep, too large, "
                                           f"truncated or with trailing bytes): {exc}") from None  # fmt: skip
    plain = _plain(value, 0, ())
    if not isinstance(plain, dict):
        raise HubMessageError("malformed", "payload is not a map")
    return plain


# --- the durable high-water mark ------------------------------------------------------------------------


class HighWaterMark:
    """The highest counter accepted per kind, in a small JSON file written atomically (fsync) before use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.marks: dict[str, int] = {}
        if self.path.exists():
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise HubKeyError(f"{self.path}: the hub counter file is unreadable: {exc}") from exc
            if not isinstance(doc, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in doc.items()
            ):
                raise HubKeyError(f"{self.path}: the hub counter file must map kinds to integers")
            self.marks = dict(doc)

    def get(self, kind: str) -> int:
        with self._lock:
            return self.marks.get(kind, 0)

    def advance(self, kind: str, counter: int) -> None:
        """Record ``counter`` for ``kind`` durably; HubMessageError("replayed or old counter") when not above."""
        with self._lock:
            if counter <= self.marks.get(kind, 0):
                raise HubMessageError("replayed or old counter")
            marks = dict(self.marks, **{kind: counter})
            try:
                write_atomic(self.path, json.dumps(marks, sort_keys=True).encode(), 0o600)
            except OSError as exc:
                raise HubMessageError("counter not stored", str(exc)) from exc
            self.marks = marks


# --- the terminal's verifier ----------------------------------------------------------------------------


def open_signed(data: bytes, key: ed25519.Ed25519PublicKey, facility: str, terminal: str,
                kind: str) -> dict[str, Any]:
    """Steps 1-3 (signature, plain payload, addressee and kind): the whole payload, times and counter unchecked.

    :class:`HubVerifier` adds freshness and the counter; ``gate-agent doctor`` reads the hub's ``iat`` with it
    to compare the clocks.
    """
    if kind not in KINDS:
        raise HubMessageError("unknown kind")
    try:
        message = cose.decode_sign1(data, MAX_MESSAGE)
    except cose.CoseError:
        raise HubMessageError("not a signed hub message") from None
    if message.alg != cose.EDDSA:
        raise HubMessageError("wrong signature algorithm")
    try:
        payload = cose.verify1(message, key)
    except cose.CoseError:
        raise HubMessageError("bad signature") from None
    doc = decode_payload(payload)
    if set(doc) != FIELDS or doc["v"] != VERSION:
        raise HubMessageError("malformed", "unexpected fields or version")
    if doc["facility"] != facility or doc["terminal"] != terminal:
        raise HubMessageError("for another terminal")
    if doc["kind"] != kind:
        raise HubMessageError("wrong kind for this topic")
    if not all(isinstance(doc[k], int) and not isinstance(doc[k], bool) and doc[k] >= 0 for k in ("ctr", "iat", "exp")):
        raise HubMessageError("malformed", "ctr, iat and exp must be unsigned integers")
    if not isinstance(doc["body"], dict):
        raise HubMessageError("malformed", "body must be a map")
    return doc


@dataclass
class HubVerifier:
    key: ed25519.Ed25519PublicKey
    facility: str
    terminal: str
    marks: HighWaterMark
    skew: float = 300.0  # seconds a message may be dated ahead of this terminal's clock
    max_lifetime: float = 86400.0
    clock: Callable[[], float] = time.time
    rejected: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_rejection(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def open(self, data: bytes, kind: str) -> dict[str, Any]:
        """The verified ``body`` of a hub message of ``kind``; HubMessageError (counted, logged) otherwise."""
        try:
            body = self._open(data, kind)
        except HubMessageError as exc:
            self.count_rejection(exc.reason)
            log.warning("rejected a hub %s message: %s", kind, exc.reason)
            raise
        with self._lock:
            self.accepted += 1
        return body

    def _open(self, data: bytes, kind: str) -> dict[str, Any]:
        doc = open_signed(data, self.key, self.facility, self.terminal, kind)
        ctr, iat, exp = doc["ctr"], doc["iat"], doc["exp"]
        now = self.clock()
        if iat > now + self.skew:
            raise HubMessageError("issued in the future")
        if exp <= now:
            raise HubMessageError("expired")
        if exp - iat > self.max_lifetime or exp < iat:
            raise HubMessageError("lifetime too long")
        if kind not in IDEMPOTENT:
            self.marks.advance(kind, ctr)
        body: dict[str, Any] = doc["body"]
        return body


# --- the hub's signer -----------------------------------------------------------------------------------


class HubSigner:
    """Seals hub messages for terminals; the counter is monotonic microseconds, so no state survives restarts."""

    def __init__(self, key: ed25519.Ed25519PrivateKey, facility: str, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.facility = facility
        self.clock = clock
        self.kid = key_id(key.public_key())
        self._last = 0
        self._lock = threading.Lock()

    def next_counter(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, int(self.clock() * 1_000_000))
            return self._last

    def seal(self, terminal: str, kind: str, body: Mapping[str, Any], lifetime: float | None = None,
             *, counter: int | None = None, issued: float | None = None) -> bytes:  # fmt: skip
        if kind not in KINDS:
            raise ValueError(f"unknown hub message kind {kind!r}")
        iat = int(self.clock() if issued is None else issued)
        doc = {
            "v": VERSION,
            "facility": self.facility,
            "terminal": terminal,
            "kind": kind,
            "ctr": self.next_counter() if counter is None else counter,
            "iat": iat,
            "exp": iat + int(LIFETIMES[kind] if lifetime is None else lifetime),
            "body": dict(body),
        }
        return cose.sign1(cbor2.dumps(doc), self.key, self.kid)


def load_or_create_private_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """An Ed25519 private key (PEM, 0600), created when missing; used for the hub's signing key."""
    return files.load_or_create_private_key(
        Path(path), ed25519.Ed25519PrivateKey, ed25519.Ed25519PrivateKey.generate, HubKeyError,
        "cannot load the signing key", "the signing key must be Ed25519",
    )  # fmt: skip
