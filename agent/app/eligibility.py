"""Eligibility: the local cache of insured people pushed by the hub, and the lookup chain.

The hub pushes a snapshot (every insured person this facility may see) and deltas;
the cache keeps them with the time the hub produced them.  A lookup asks the hub
online first when connected (short timeout), and falls back to the cache, which is
*fresh* while younger than ``[eligibility] max_age_hours``.  The policy turns a
stale cache into a provisional decision.

The cache holds personal data (name, date of birth) because reconciliation needs
it; it lives in the state directory, readable only by the service user, and is
replaced wholesale by each snapshot.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from agent.errors import GateAgentError
from agent.model import Eligibility, EligibilitySource, InsuranceRecord

log = logging.getLogger(__name__)


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


class EligibilityCache:
    """ID number -> insurance record, with the time the hub's data was current."""

    def __init__(
        self,
        max_age: dt.timedelta = dt.timedelta(hours=24),
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.max_age = max_age
        self.now = now
        self.on_change = on_change
        self._records: dict[str, InsuranceRecord] = {}
        self.as_of: dt.datetime | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    @property
    def fresh(self) -> bool:
        return self.as_of is not None and self.now() - self.as_of <= self.max_age

    def lookup(self, id_number: str) -> Eligibility:
        with self._lock:
            if self.as_of is None:
                return Eligibility(None, EligibilitySource.NONE, fresh=False)
            return Eligibility(self._records.get(id_number), EligibilitySource.CACHE, self.fresh, self.as_of)

    def apply_snapshot(self, records: Iterable[Mapping[str, Any]], as_of: dt.datetime) -> int:
        """Replace everything; all records are validated before anything changes."""
        parsed = {r.id_number: r for r in (record_from_dict(item) for item in records)}
        with self._lock:
            self._records = parsed
            self.as_of = as_of
        self._changed()
        return len(parsed)

    def apply_delta(
        self, upserts: Iterable[Mapping[str, Any]], deletes: Iterable[str], as_of: dt.datetime
    ) -> tuple[int, int]:
        """Add/replace and remove records; atomic (validated first), older deltas are rejected."""
        parsed = [record_from_dict(item) for item in upserts]
        gone = [str(d) for d in deletes]
        with self._lock:
            if self.as_of is None:
                raise EligibilityDataError("a delta needs a snapshot first")
            if as_of < self.as_of:
                raise EligibilityDataError("delta is older than the cache")
            for record in parsed:
                self._records[record.id_number] = record
            for id_number in gone:
                self._records.pop(id_number, None)
            self.as_of = as_of
        self._changed()
        return len(parsed), len(gone)

    def to_document(self) -> dict[str, Any]:
        with self._lock:
            return {
                "as_of": self.as_of.isoformat() if self.as_of else None,
                "records": [record_to_dict(r) for r in self._records.values()],
            }

    def load_document(self, doc: Mapping[str, Any]) -> None:
        as_of = doc.get("as_of")
        if as_of is None:
            return
        self.apply_snapshot(doc.get("records", []), dt.datetime.fromisoformat(str(as_of)))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.to_document())


class OnlineLookup(Protocol):
    @property
    def connected(self) -> bool: ...

    def query_eligibility(self, id_number: str, timeout: float) -> Mapping[str, Any] | None:
        """Ask the hub; return its answer ({"record": {...}|None}) or None when it did not answer in time."""
        ...


class EligibilityChain:
    """Online first when connected (short timeout), else the cache."""

    def __init__(self, cache: EligibilityCache, online: OnlineLookup | None = None, timeout: float = 1.5) -> None:
        self.cache = cache
        self.online = online
        self.timeout = timeout

    def lookup(self, id_number: str) -> Eligibility:
        if self.online is not None and self.online.connected:
            try:
                answer = self.online.query_eligibility(id_number, self.timeout)
            except GateAgentError as exc:
                log.warning("online eligibility query failed, using the cache: %s", exc)
                answer = None
            if answer is not None:
                try:
                    item = answer.get("record")
                    record = None if item is None else record_from_dict(item)
                except EligibilityDataError as exc:
                    log.warning("hub answered with a bad record, using the cache: %s", exc)
                else:
                    return Eligibility(record, EligibilitySource.ONLINE, True, dt.datetime.now(dt.UTC))
        return self.cache.lookup(id_number)
