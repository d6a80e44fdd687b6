"""The eligibility cache on disk: atomic snapshots and deltas, sealed rows, migration, damage, concurrency."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.app.eligibility import (
    EligibilityCache,
    EligibilityDataError,
    open_eligibility_cache,
    record_from_dict,
    record_to_dict,
)
from agent.model import EligibilitySource, InsuranceRecord
from agent.store.eligibility import EligibilityStore, StaleDataError
from agent.store.errors import StoreError

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
KEY = bytes(range(32))


def ident(i: int) -> str:
    return f"0010{i:08d}"


def rec(i: int, facility: str = "01001", **extra: Any) -> dict[str, Any]:
    return {
        "id_number": ident(i),
        "card_number": f"DN401{i:010d}",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "facility_code": facility,
        "benefit_level": 4,
        "category": "pupils",
        "full_name": "Nguyễn Thị Ánh",
        "birth": "1990-05-01",
        "sex": "F",
        **extra,
    }


def open_cache(state: Path, key: bytes = KEY) -> EligibilityCache:
    return open_eligibility_cache(state, key, dt.timedelta(hours=24))


def all_bytes(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.iterdir() if p.is_file())


def test_snapshot_delta_and_restart(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    assert cache.lookup(ident(1)).source is EligibilitySource.NONE
    assert cache.as_of is None and len(cache) == 0
    assert cache.apply_snapshot([rec(i) for i in range(100)] + [rec(5, facility="79001")], NOW - DAY) == 100
    assert cache.apply_delta([rec(1, facility="48001"), rec(500)], [ident(2), ident(999)], NOW) == (2, 2)
    assert len(cache) == 100  # one new, one replaced, one removed, one unknown
    cache.store.close()

    again = open_cache(tmp_path)
    assert again.as_of == NOW and len(again) == 100
    found = again.lookup(ident(1))
    assert found.source is EligibilitySource.CACHE and found.as_of == NOW
    assert found.record is not None and found.record.facility_code == "48001"
    assert found.record.full_name == "Nguyễn Thị Ánh" and found.record.birth == dt.date(1990, 5, 1)
    assert again.lookup(ident(5)).record.facility_code == "79001"  # type: ignore[union-attr]
    assert again.lookup(ident(2)).record is None
    assert again.lookup(ident(500)).record is not None
    assert (tmp_path / "eligibility.db").stat().st_mode & 0o777 == 0o600


def test_record_round_trip_is_exact(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    bare = {k: v for k, v in rec(7).items() if k not in ("full_name", "birth", "sex", "category")}
    cache.apply_snapshot([rec(3), bare], NOW)
    three = cache.lookup(ident(3)).record
    assert three == InsuranceRecord(
        ident(3), "DN4010000000003", dt.date(2026, 1, 1), dt.date(2026, 12, 31), "01001", 4, "pupils",
        "Nguyễn Thị Ánh", dt.date(1990, 5, 1), "F",
    )  # fmt: skip
    seven = cache.lookup(ident(7)).record
    assert seven is not None and seven.full_name is None and seven.birth is None and seven.category == "other"


def test_older_snapshots_and_deltas_are_rejected(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    with pytest.raises(EligibilityDataError, match="snapshot first"):
        cache.apply_delta([rec(1)], [], NOW)
    cache.apply_snapshot([rec(1)], NOW)
    with pytest.raises(EligibilityDataError, match="snapshot is older"):
        cache.apply_snapshot([rec(2)], NOW - dt.timedelta(seconds=1))
    with pytest.raises(EligibilityDataError, match="delta is older"):
        cache.apply_delta([rec(3)], [ident(1)], NOW - dt.timedelta(seconds=1))
    assert cache.as_of == NOW and len(cache) == 1
    assert cache.lookup(ident(1)).record is not None and cache.lookup(ident(2)).record is None
    cache.apply_snapshot([rec(2)], NOW)  # the same time again: a re-sent snapshot is fine
    assert cache.lookup(ident(1)).record is None and cache.lookup(ident(2)).record is not None


def test_a_bad_record_anywhere_leaves_everything_as_it_was(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    cache.apply_snapshot([rec(i) for i in range(50)], NOW - DAY)
    bad = rec(10_000, valid_to="31/12/2026")
    with pytest.raises(EligibilityDataError, match="valid_to"):
        cache.apply_snapshot([rec(i, facility="99999") for i in range(1000)] + [bad], NOW)
    with pytest.raises(EligibilityDataError, match="valid_to"):
        cache.apply_delta([rec(1, facility="99999"), bad], [ident(2)], NOW)
    assert cache.as_of == NOW - DAY and len(cache) == 50
    assert cache.lookup(ident(1)).record.facility_code == "01001"  # type: ignore[union-attr]
    assert cache.lookup(ident(2)).record is not None
    assert cache.lookup(ident(999)).record is None


def test_an_exception_inside_the_store_transaction_rolls_back(tmp_path: Path) -> None:
    store = EligibilityStore(tmp_path / "e.db", KEY)
    store.replace([(ident(1), b"one")], NOW - DAY)

    def failing() -> Iterator[tuple[str, bytes]]:
        yield ident(2), b"two"
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        store.replace(failing(), NOW)
    with pytest.raises(RuntimeError):
        store.update(failing(), [ident(1)], NOW)
    store.close()
    again = EligibilityStore(tmp_path / "e.db", KEY)
    assert again.get(ident(1))[1] == b"one" and again.get(ident(2))[1] is None
    assert again.state is not None and again.state.as_of == NOW - DAY and again.state.count == 1
    with pytest.raises(StaleDataError):
        again.update([], [], NOW - 2 * DAY)
    with pytest.raises(StoreError, match="32 bytes"):
        EligibilityStore(tmp_path / "x.db", b"short")


CRASH = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from pathlib import Path
    from agent.app.eligibility import open_eligibility_cache
    state, phase, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    cache = open_eligibility_cache(state, bytes(range(32)), dt.timedelta(hours=24))
    now = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)

    def records(facility):
        for i in range(2000):
            if i == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # the power cut, mid-transaction
            yield {"id_number": f"0010{i:08d}", "card_number": f"DN401{i:010d}", "valid_from": "2026-01-01",
                   "valid_to": "2026-12-31", "facility_code": facility, "benefit_level": 4}

    if phase == "snapshot":
        cache.apply_snapshot(records("22222"), now)
    else:
        cache.apply_delta(records("33333"), [f"0010{i:08d}" for i in range(1500, 2000)], now)
    """
)


def crash(state: Path, phase: str, kill_at: int) -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", CRASH, str(state), phase, str(kill_at)], env=env, timeout=60
    ).returncode


@pytest.mark.parametrize("phase", ["snapshot", "delta"])
def test_a_process_killed_mid_apply_leaves_the_old_data(tmp_path: Path, phase: str) -> None:
    cache = open_cache(tmp_path)
    cache.apply_snapshot([rec(i, facility="11111") for i in range(1000)], NOW - DAY)
    cache.store.close()
    assert crash(tmp_path, phase, kill_at=1200) == -9
    after = open_cache(tmp_path)
    assert after.as_of == NOW - DAY and len(after) == 1000
    facilities = {after.lookup(ident(i)).record.facility_code for i in range(0, 1000, 7)}  # type: ignore[union-attr]
    assert facilities == {"11111"}
    assert after.lookup(ident(1100)).record is None
    after.store.close()
    assert crash(tmp_path, phase, kill_at=-1) == 0  # and the same apply, not interrupted, goes through
    done = open_cache(tmp_path)
    assert done.as_of == NOW
    assert done.lookup(ident(10)).record.facility_code == ("22222" if phase == "snapshot" else "33333")  # type: ignore[union-attr]
    assert len(done) == (2000 if phase == "snapshot" else 1500)


def test_no_personal_data_in_clear_on_disk(tmp_path: Path) -> None:
    people = []
    for _ in range(30):
        number = "".join(secrets.choice("0123456789") for _ in range(12))
        people.append(
            rec(0, id_number=number, card_number=secrets.token_hex(16).upper(),
                full_name="Nguyễn " + secrets.token_hex(12) + " Ánh")
        )  # fmt: skip
    cache = open_cache(tmp_path)
    cache.apply_snapshot(people[:20], NOW - DAY)
    cache.apply_delta(people[20:], [], NOW)  # a delta's rows sit in the WAL until checkpointed: check that too
    data = all_bytes(tmp_path)
    assert len(data) > 10_000
    for p in people:
        for value in (p["id_number"], p["card_number"], p["full_name"], p["full_name"].split()[1]):
            assert value.encode() not in data
        assert cache.lookup(p["id_number"]).record is not None


def test_rows_are_bound_to_their_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = open_cache(tmp_path)
    cache.apply_snapshot([rec(1), rec(2, facility="79001")], NOW)
    cache.store.close()
    db = sqlite3.connect(tmp_path / "eligibility.db")
    (k1, _), (_, v2) = db.execute("SELECT k, v FROM records").fetchall()
    db.execute("UPDATE records SET v = ? WHERE k = ?", (v2, k1))  # someone with the file swaps two rows
    db.commit()
    db.close()
    again = open_cache(tmp_path)
    with caplog.at_level(logging.ERROR):
        answers = [again.lookup(ident(1)), again.lookup(ident(2))]
    assert EligibilitySource.NONE in {a.source for a in answers}  # fail closed: "no cache", never the other row
    assert all(a.record is None or a.record.id_number in (ident(1), ident(2)) for a in answers)
    assert "does not authenticate" in caplog.text
    assert ident(1) not in caplog.text and ident(2) not in caplog.text


def test_old_json_cache_is_imported_once_then_deleted(tmp_path: Path) -> None:
    legacy = tmp_path / "eligibility.json"
    records = [record_to_dict(record_from_dict(rec(i))) for i in range(20)]
    legacy.write_text(json.dumps({"as_of": (NOW - DAY).isoformat(), "records": records}), encoding="utf-8")
    cache = open_cache(tmp_path)
    assert not legacy.exists()
    assert cache.as_of == NOW - DAY and len(cache) == 20
    assert cache.lookup(ident(3)).record is not None
    cache.apply_snapshot([rec(1)], NOW)
    cache.store.close()

    legacy.write_text(json.dumps({"as_of": (NOW - 2 * DAY).isoformat(), "records": records}), encoding="utf-8")
    newer_kept = open_cache(tmp_path)  # an older JSON cache than the database: the database wins
    assert not legacy.exists() and newer_kept.as_of == NOW and len(newer_kept) == 1
    newer_kept.store.close()

    legacy.write_text("{not json", encoding="utf-8")
    survived = open_cache(tmp_path)
    assert not legacy.exists() and len(survived) == 1


@pytest.mark.parametrize("damage", ["garbage", "pages", "key"])
def test_a_damaged_file_starts_empty_and_recovers(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "eligibility.db"
    key = KEY
    if damage == "garbage":
        path.write_bytes(b"not a database at all " * 500)
    else:
        cache = open_cache(tmp_path)
        cache.apply_snapshot([rec(i) for i in range(3000)], NOW)
        cache.store.close()
        if damage == "pages":
            size = path.stat().st_size
            with path.open("r+b") as f:
                f.seek(8192)
                f.write(secrets.token_bytes(size - 12_000))
        else:
            key = bytes(reversed(KEY))
    with caplog.at_level(logging.ERROR):
        cache = open_cache(tmp_path, key)
        answer = cache.lookup(ident(5))
    assert answer.source is EligibilitySource.NONE and answer.record is None
    assert "does not open" in caplog.text or "unreadable" in caplog.text
    assert cache.apply_snapshot([rec(5)], NOW) == 1
    assert cache.lookup(ident(5)).record is not None


def test_lookups_see_old_or_new_never_a_mix_during_a_snapshot(tmp_path: Path) -> None:
    n = 6000
    cache = open_cache(tmp_path)
    cache.apply_snapshot([rec(i, facility="11111") for i in range(n)], NOW - DAY)
    expected = {NOW - DAY: "11111", NOW: "22222"}
    seen: list[tuple[dt.datetime | None, str | None]] = []
    applying = threading.Event()
    done = threading.Event()
    during = 0

    def reader() -> None:
        nonlocal during
        i = 0
        while not done.is_set():
            answer = cache.lookup(ident(i % n))
            seen.append((answer.as_of, None if answer.record is None else answer.record.facility_code))
            during += applying.is_set()
            i += 37

    def snapshot() -> Iterator[dict[str, Any]]:
        applying.set()
        for i in range(n):
            yield rec(i, facility="22222")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    cache.apply_snapshot(snapshot(), NOW)
    applying.clear()
    done.set()
    for t in threads:
        t.join()
    assert during > 20  # readers were not blocked by the apply
    for as_of, facility in seen:
        assert as_of in expected and facility == expected[as_of]
    assert cache.lookup(ident(1)).record.facility_code == "22222"  # type: ignore[union-attr]


def test_a_path_that_cannot_hold_a_database_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "eligibility.db").mkdir()  # neither a database nor removable as a file
    with caplog.at_level(logging.ERROR):
        cache = open_cache(tmp_path)
    assert "keeping it in memory" in caplog.text
    assert cache.lookup(ident(1)).source is EligibilitySource.NONE
    cache.apply_snapshot([rec(1)], NOW)
    assert cache.lookup(ident(1)).record is not None and len(cache) == 1
