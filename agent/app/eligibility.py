"""Eligibility: the local cache of insured people pushed by the hub, and the lookup chain.

The hub pushes a snapshot (every insured person this facility may see) and deltas;
the cache keeps them with the time the hub produced them.  A lookup asks the hub
online first when connected (short timeout), and falls back to the cache, which is
*fresh* while younger than ``[eligibility] max_age_hours``.  The policy turns a
stale cache into a provisional decision.  Past ``HARD_LIMIT`` times that age, or dated
ahead of this terminal's clock by more than ``FUTURE_SKEW``, the cache is not used at
all (a lookup answers "no cache"): old insurance data must not decide forever.

The cache holds personal data (name, date of birth) because reconciliation needs
it; it lives in ``state_dir/eligibility.db`` (agent/store/eligibility.py), every
record sealed with AES-256-GCM under a key derived from the caller's, rows keyed by
an HMAC of the ID number, and is replaced wholesale (atomically) by each snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import cbor2

from agent.app.gateway import GatewayDataError, format_date, parse_answer
from agent.errors import GateAgentError
from agent.model import Eligibility, EligibilitySource, Identity, InsuranceRecord
from agent.store.eligibility import EligibilityStore, StaleDataError
from agent.store.errors import StoreError
from agent.store.files import unlink_durably

log = logging.getLogger(__name__)

#: the cache is refused past this many times ``max_age`` (stale before that: provisional decisions)
HARD_LIMIT = 7
#: how far ahead of this terminal's clock a cache may be dated and still be used
FUTURE_SKEW = dt.timedelta(minutes=5)


class EligibilityDataError(GateAgentError):
    """An eligibility snapshot or delta from the hub is malformed; nothing of it was applied."""


_FIELDS = ("id_number", "card_number", "valid_from", "valid_to", "facility_code", "benefit_level")


def record_from_dict(item: Mapping[str, Any]) -> InsuranceRecord:
    """One record as the hub sends it (dates ISO strings); raises EligibilityDataError naming the field."""
    if not isinstance(item, Mapping):
        raise EligibilityDataError("record is not a map")
    missing = [f for f in _FIELDS if f not in item]
    if missing:
        raise EligibilityDataError(f"record lacks {', '.join(missing)}")

    def date(name: str, required: bool = True) -> dt.date | None:
        value = item.get(name)
        if value is None and not required:
            return None
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise EligibilityDataError(f"record field {name}: not an ISO date") from None

    id_number = str(item["id_number"])
    if not (id_number.isdigit() and len(id_number) == 12):
        raise EligibilityDataError("record field id_number: must be 12 digits")
    level = item["benefit_level"]
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
        raise EligibilityDataError("record field benefit_level: must be 1..5")
    sex = item.get("sex")
    if sex not in (None, "M", "F"):
        raise EligibilityDataError("record field sex: must be M or F")
    valid_from, valid_to = date("valid_from"), date("valid_to")
    assert valid_from is not None and valid_to is not None
    return InsuranceRecord(
        id_number=id_number,
        card_number=str(item["card_number"]),
        valid_from=valid_from,
        valid_to=valid_to,
        facility_code=str(item["facility_code"]),
        benefit_level=level,
        category=str(item.get("category", "other")),
        full_name=None if item.get("full_name") is None else str(item["full_name"]),
        birth=date("birth", required=False),
        sex=sex,
    )


def record_to_dict(record: InsuranceRecord) -> dict[str, Any]:
    return {
        "id_number": record.id_number,
        "card_number": record.card_number,
        "valid_from": record.valid_from.isoformat(),
        "valid_to": record.valid_to.isoformat(),
        "facility_code": record.facility_code,
        "benefit_level": record.benefit_level,
        "category": record.category,
        "full_name": record.full_name,
        "birth": record.birth.isoformat() if record.birth else None,
        "sex": record.sex,
    }


_RECORD_V1 = 1


def encode_record(record: InsuranceRecord) -> bytes:
    """The stored value of one record (the ID number is the store's key, not repeated here)."""
    return cbor2.dumps([
        _RECORD_V1, record.card_number, record.valid_from.toordinal(), record.valid_to.toordinal(),
        record.facility_code, record.benefit_level, record.category, record.full_name,
        None if record.birth is None else record.birth.toordinal(), record.sex,
    ])  # fmt: skip


def decode_record(id_number: str, data: bytes) -> InsuranceRecord:
    """Inverse of :func:`encode_record`; raises EligibilityDataError on anything else."""
    try:
        item = cbor2.loads(data)
        version, card, valid_from, valid_to, facility, level, category, name, birth, sex = item
        if version != _RECORD_V1:
            raise ValueError(f"record version {version!r}")
        return InsuranceRecord(
            id_number=id_number,
            card_number=str(card),
            valid_from=dt.date.fromordinal(valid_from),
            valid_to=dt.date.fromordinal(valid_to),
            facility_code=str(facility),
            benefit_level=int(level),
            category=str(category),
            full_name=None if name is None else str(name),
            birth=None if birth is None else dt.date.fromordinal(birth),
            sex=None if sex is None else str(sex),
        )
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise EligibilityDataError(f"stored record is malformed: {exc}") from exc


class EligibilityCache:
    """ID number -> insurance record, with the time the hub's data was current.

    The records live in an :class:`EligibilityStore` (SQLite, sealed rows); nothing
    proportional to their count is kept in Python.  Without a store the cache keeps an
    in-memory one under a random key (tests, one-shot tools).
    """

    def __init__(
        self,
        max_age: dt.timedelta = dt.timedelta(hours=24),
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        store: EligibilityStore | None = None,
    ) -> None:
        self.max_age = max_age
        self.now = now
        self.store = store if store is not None else EligibilityStore(None, secrets.token_bytes(32))

    def __len__(self) -> int:
        state = self.store.state
        return 0 if state is None else state.count

    @property
    def as_of(self) -> dt.datetime | None:
        state = self.store.state
        return None if state is None else state.as_of

    def usable(self, as_of: dt.datetime | None) -> bool:
        """Not past the hard limit, not dated in the future."""
        if as_of is None:
            return False
        age = self.now() - as_of
        return -FUTURE_SKEW <= age <= self.max_age * HARD_LIMIT

    def _fresh(self, as_of: dt.datetime | None) -> bool:
        return as_of is not None and self.now() - as_of <= self.max_age

    @property
    def fresh(self) -> bool:
        return self._fresh(self.as_of)

    def lookup(self, id_number: str) -> Eligibility:
        """The cached answer; a cache that cannot be read answers "no cache" (never a guess)."""
        try:
            state, value = self.store.get(id_number)
            if state is None:
                return Eligibility(None, EligibilitySource.NONE, fresh=False)
            record = None if value is None else decode_record(id_number, value)
        except (StoreError, EligibilityDataError) as exc:
            log.error("eligibility cache unreadable, answering without it: %s", exc)
            return Eligibility(None, EligibilitySource.NONE, fresh=False)
        if not self.usable(state.as_of):
            log.warning("eligibility cache expired or dated in the future (as of %s): not used", state.as_of)
            return Eligibility(None, EligibilitySource.NONE, fresh=False)
        return Eligibility(record, EligibilitySource.CACHE, self._fresh(state.as_of), state.as_of)

    def apply_snapshot(self, records: Iterable[Mapping[str, Any]], as_of: dt.datetime) -> int:
        """Replace everything; nothing changes unless every record is valid and the snapshot is not older."""
        items = ((r.id_number, encode_record(r)) for r in (record_from_dict(item) for item in records))
        try:
            return self.store.replace(items, as_of)
        except StaleDataError as exc:
            raise EligibilityDataError(str(exc)) from None

    def apply_delta(
        self, upserts: Iterable[Mapping[str, Any]], deletes: Iterable[str], as_of: dt.datetime
    ) -> tuple[int, int]:
        """Add/replace and remove records; atomic (one transaction), older deltas are rejected."""
        items = ((r.id_number, encode_record(r)) for r in (record_from_dict(item) for item in upserts))
        try:
            return self.store.update(items, (str(d) for d in deletes), as_of)
        except StaleDataError as exc:
            raise EligibilityDataError(str(exc)) from None

    def import_json(self, path: Path) -> None:
        """Import an ``eligibility.json`` of an older version once, then delete it (it held personal data in clear).

        A file that does not parse is deleted too: the hub's next snapshot replaces it, and
        plain-text personal data must not stay behind.  Data older than the store's is dropped.
        """
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            as_of = doc.get("as_of") if isinstance(doc, Mapping) else None
            if as_of is not None:
                n = self.apply_snapshot(doc.get("records", []), dt.datetime.fromisoformat(str(as_of)))
                log.info("imported %d eligibility records from %s", n, path.name)
        except EligibilityDataError as exc:
            log.warning("eligibility cache of the older version not imported: %s", exc)
        except (OSError, ValueError, TypeError, GateAgentError) as exc:
            log.error("eligibility cache of the older version %s unreadable, dropping it: %s", path.name, exc)
        try:
            unlink_durably(path)
        except OSError as exc:
            log.error("cannot delete %s: %s", path, exc)


def open_eligibility_cache(state_dir: Path, key: bytes, max_age: dt.timedelta) -> EligibilityCache:
    """The terminal's cache in ``state_dir/eligibility.db`` sealed under ``key``; imports an old JSON cache once."""
    cache = EligibilityCache(max_age, store=EligibilityStore(state_dir / "eligibility.db", key))
    legacy = state_dir / "eligibility.json"
    if legacy.exists():
        cache.import_json(legacy)
    return cache


class OnlineLookup(Protocol):
    @property
    def connected(self) -> bool: ...

    def query_eligibility(
        self, id_number: str, timeout: float, person: Mapping[str, str] | None = None
    ) -> Mapping[str, Any] | None:
        """Ask the hub; return its answer or None when it did not answer in time.

        The answer is ``{"record": {...}|None}`` and, from a hub that asks the social-insurance
        gateway, ``"gateway": {...}`` in the gateway's response shape.  ``person`` is what the
        gateway's lookup needs besides the number (``hoTen``, ``ngaySinh`` as dd/mm/yyyy).
        """
        ...


def gateway_request(identity: Identity | None) -> dict[str, str] | None:
    """The name and birth date the gateway's lookup compares (KQNhanLichSuKCB2024 ``hoTen``, ``ngaySinh``)."""
    if identity is None or (identity.full_name is None and identity.birth is None):
        return None
    out: dict[str, str] = {}
    if identity.full_name:
        out["hoTen"] = identity.full_name
    if identity.birth is not None:
        out["ngaySinh"] = format_date(identity.birth)
    return out


class EligibilityChain:
    """Online first when connected (short timeout), else the cache."""

    def __init__(self, cache: EligibilityCache, online: OnlineLookup | None = None, timeout: float = 1.5) -> None:
        self.cache = cache
        self.online = online
        self.timeout = timeout

    def lookup(self, id_number: str, identity: Identity | None = None) -> Eligibility:
        """Online first; a gateway answer that is no answer (server error, unknown code) falls back to the cache."""
        code: str | None = None
        if self.online is not None and self.online.connected:
            try:
                person = gateway_request(identity)
                answer = (
                    self.online.query_eligibility(id_number, self.timeout, person)
                    if person is not None
                    else self.online.query_eligibility(id_number, self.timeout)
                )
            except GateAgentError as exc:
                log.warning("online eligibility query failed, using the cache: %s", exc)
                answer = None
            if answer is not None and answer.get("gateway") is not None:
                raw = answer["gateway"]
                if isinstance(raw, Mapping) and isinstance(raw.get("maKetQua"), str) and \
                        re.fullmatch(r"[0-9]{3}", raw["maKetQua"]):  # fmt: skip
                    code = raw["maKetQua"]
                try:
                    parsed = parse_answer(raw, id_number)
                except GatewayDataError as exc:
                    log.warning("hub forwarded a malformed gateway answer, using the cache: %s", exc)
                else:
                    if parsed.rule.answered:
                        return Eligibility(parsed.record, EligibilitySource.ONLINE, True, dt.datetime.now(dt.UTC),
                                           gateway_code=parsed.code)  # fmt: skip
                    log.warning("gateway lookup failed (code %s), using the cache", parsed.code)
                cached = self.cache.lookup(id_number)
                return Eligibility(cached.record, cached.source, cached.fresh, cached.as_of, gateway_code=code)
            if answer is not None:
                try:
                    item = answer.get("record")
                    record = None if item is None else record_from_dict(item)
                    if record is not None and record.id_number != id_number:
                        raise EligibilityDataError("the record is about another ID number")
                except EligibilityDataError as exc:
                    log.warning("hub answered with a bad record, using the cache: %s", exc)
                else:
                    return Eligibility(record, EligibilitySource.ONLINE, True, dt.datetime.now(dt.UTC))
        return self.cache.lookup(id_number)
