"""Where the eligibility cache lives: SQLite (ours) vs TinyDB (sealed JSON storage) vs a dict + JSON file.

    .venv/bin/python bench/eligibility.py [--sizes 10000,100000,300000] [--lookups 2000]

For each size and backend, two fresh subprocesses (so one backend's memory never
inflates another's numbers):

* ``apply``: stream a synthetic snapshot into the store; report the time and the peak RSS;
  then one delta (100 records changed, 100 removed) and its time.
  For SQLite, a second snapshot is then applied while a thread keeps looking up, to show
  what readers see during an apply.
* ``hold``: a new process opens what ``apply`` left (the daemon's restart), answers random
  lookups (half hits, half misses, through the same code a check-in uses), and reports
  open time, lookup p50/p99, RSS and file size.

Targets (issue 10): lookup p99 <= 5 ms with 300 k records, daemon RSS < 60 MB.
The records are realistic in shape: 12-digit ID, BHYT card number, dates, facility code,
benefit level, category, a Vietnamese name with diacritics, birth date, sex.
"""

from __future__ import annotations

import abc
import argparse
import datetime as dt
import importlib.util
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import percentile, proc_status  # noqa: E402

TARGET_P99_MS = 5.0
TARGET_RSS_MB = 60.0
AS_OF = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
KEY = bytes(range(32))  # a fixed key: the bench measures, it protects nothing

SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô")
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Thu", "Xuân")
GIVEN = ("An", "Bình", "Châu", "Dũng", "Hương", "Khánh", "Lan", "Mai", "Nga", "Phúc", "Quân", "Sơn", "Thảo", "Tuấn")
CATEGORIES = ("enterprise_employees", "civil_servants", "household_health_insurance", "pupils", "pensioners",
              "children_under_6", "other")  # fmt: skip
CARD_PREFIXES = ("DN", "HC", "HT", "TE", "HS", "GD")
PROVINCES = ("001", "079", "048", "031", "092", "026", "036", "038")


def id_number(i: int) -> str:
    return f"{PROVINCES[i % len(PROVINCES)]}{(i >> 3) % 4}{i % 100:02d}{i:06d}"


def miss_id(i: int) -> str:
    return f"999{i % 10}{i % 100:02d}{i:06d}"  # province 999 does not exist: never in the snapshot


def records(n: int, seed: int = 10) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(n):
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(95 * 365))
        start = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(300))
        ident = id_number(i)
        yield {
            "id_number": ident,
            "card_number": f"{rng.choice(CARD_PREFIXES)}4{ident[1:3]}{rng.randrange(10**10):010d}",
            "valid_from": start.isoformat(),
            "valid_to": (start + dt.timedelta(days=365)).isoformat(),
            "facility_code": f"{ident[1:3]}{rng.randrange(1000):03d}",
            "benefit_level": rng.choice((1, 2, 3, 4, 4, 4, 5)),
            "category": rng.choice(CATEGORIES),
            "full_name": f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
            "birth": birth.isoformat(),
            "sex": rng.choice(("M", "F")),
        }


def files_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


# -- backends ---------------------------------------------------------------------------------


class Backend(abc.ABC):
    name = ""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @abc.abstractmethod
    def apply(self, n: int) -> int:
        """Write a snapshot of ``n`` synthetic records durably; the records written."""

    @abc.abstractmethod
    def delta(self, upserts: list[dict[str, Any]], deletes: list[str]) -> None:
        """Apply a delta to what ``apply`` wrote, durably."""

    @abc.abstractmethod
    def open(self) -> None:
        """Open what ``apply`` wrote, as a restarted daemon would."""

    @abc.abstractmethod
    def lookup(self, ident: str) -> object | None:
        """The record of ``ident``, or None."""


class SqliteBackend(Backend):
    """agent/store/eligibility.py through EligibilityCache: the code the daemon runs."""

    name = "sqlite3"

    def _cache(self) -> Any:
        from agent.app.eligibility import open_eligibility_cache

        return open_eligibility_cache(self.dir, KEY, dt.timedelta(hours=24))

    def apply(self, n: int) -> int:
        self.cache = self._cache()
        return int(self.cache.apply_snapshot(records(n), AS_OF))

    def delta(self, upserts: list[dict[str, Any]], deletes: list[str]) -> None:
        self.cache.apply_delta(upserts, deletes, AS_OF + dt.timedelta(minutes=1))

    def open(self) -> None:
        self.cache = self._cache()

    def lookup(self, ident: str) -> object | None:
        return self.cache.lookup(ident).record

    def apply_while_reading(self, n: int, idents: list[str]) -> dict[str, float]:
        """A second snapshot while a thread looks up: what a check-in waits during an apply."""
        times: list[float] = []
        wrong = 0
        done = threading.Event()

        def reader() -> None:
            nonlocal wrong
            i = 0
            while not done.is_set():
                ident = idents[i % len(idents)]
                t0 = time.perf_counter()
                answer = self.cache.lookup(ident)
                times.append(time.perf_counter() - t0)
                wrong += answer.record is None
                i += 1

        thread = threading.Thread(target=reader)
        thread.start()
        t0 = time.perf_counter()
        self.cache.apply_snapshot(records(n, seed=11), AS_OF + dt.timedelta(hours=1))
        elapsed = time.perf_counter() - t0
        done.set()
        thread.join()
        return {
            "reapply_s": elapsed,
            "during_p50_ms": percentile(times, 0.5) * 1e3,
            "during_p99_ms": percentile(times, 0.99) * 1e3,
            "during_max_ms": max(times) * 1e3,
            "during_lookups": len(times),
            "during_misses": wrong,
        }


class TinyBackend(Backend):
    """TinyDB 4 over a storage of ours: AES-256-GCM sealed JSON, temp file + fsync + rename + dir fsync."""

    name = "tinydb"

    def _storage(self) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from tinydb.storages import Storage

        directory = self.dir

        class SealedJSONStorage(Storage):  # type: ignore[misc]
            def __init__(self) -> None:
                self.path = directory / "eligibility.tinydb"
                self.aead = AESGCM(KEY)

            def read(self) -> dict[str, dict[str, Any]] | None:
                try:
                    blob = self.path.read_bytes()
                except FileNotFoundError:
                    return None
                doc: dict[str, dict[str, Any]] = json.loads(self.aead.decrypt(blob[:12], blob[12:], b"tinydb"))
                return doc

            def write(self, data: dict[str, dict[str, Any]]) -> None:
                nonce = secrets.token_bytes(12)
                blob = nonce + self.aead.encrypt(nonce, json.dumps(data, ensure_ascii=False).encode(), b"tinydb")
                tmp = self.path.with_name(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, blob)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
                dfd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)

        return SealedJSONStorage

    def apply(self, n: int) -> int:
        from tinydb import TinyDB
        from tinydb.table import Document

        db = TinyDB(storage=self._storage())
        table = db.table("records")
        table.truncate()
        table.insert_multiple(Document(r, doc_id=int(r["id_number"])) for r in records(n))
        return len(table)

    def delta(self, upserts: list[dict[str, Any]], deletes: list[str]) -> None:
        from tinydb import TinyDB
        from tinydb.middlewares import CachingMiddleware
        from tinydb.table import Document

        # Cached, then flushed once: without the middleware each upsert and remove rewrites the whole file.
        db = TinyDB(storage=CachingMiddleware(self._storage()))
        table = db.table("records")
        for r in upserts:
            table.upsert(Document(r, doc_id=int(r["id_number"])))
        table.remove(doc_ids=[int(d) for d in deletes])
        db.storage.flush()

    def open(self) -> None:
        from tinydb import TinyDB
        from tinydb.middlewares import CachingMiddleware

        # Without the caching middleware every lookup reads and decrypts the whole file.
        self.db = TinyDB(storage=CachingMiddleware(self._storage()))
        self.table = self.db.table("records")
        len(self.table)  # load it now, as the daemon would at start

    def lookup(self, ident: str) -> object | None:
        from agent.app.eligibility import record_from_dict

        doc = self.table.get(doc_id=int(ident))
        return None if doc is None else record_from_dict(doc)

    def query_lookup(self, ident: str) -> object | None:
        from tinydb import Query

        return self.table.get(Query().id_number == ident)


class DictJsonBackend(Backend):
    """Today's store before this change: every record a Python object, the whole cache one JSON file."""

    name = "dict+json"

    def apply(self, n: int) -> int:
        from agent.app.eligibility import record_from_dict

        self.records = {r.id_number: r for r in (record_from_dict(item) for item in records(n))}
        self._save()
        return len(self.records)

    def delta(self, upserts: list[dict[str, Any]], deletes: list[str]) -> None:
        from agent.app.eligibility import record_from_dict

        for item in upserts:
            r = record_from_dict(item)
            self.records[r.id_number] = r
        for d in deletes:
            self.records.pop(d, None)
        self._save()

    def _save(self) -> None:
        from agent.app.eligibility import record_to_dict

        doc = {"as_of": AS_OF.isoformat(), "records": [record_to_dict(r) for r in self.records.values()]}
        data = json.dumps(doc, ensure_ascii=False).encode()
        path = self.dir / "eligibility.json"
        fd = os.open(path.with_name(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(path.with_name(".tmp"), path)

    def open(self) -> None:
        from agent.app.eligibility import record_from_dict

        doc = json.loads((self.dir / "eligibility.json").read_text(encoding="utf-8"))
        self.records = {r.id_number: r for r in (record_from_dict(item) for item in doc["records"])}

    def lookup(self, ident: str) -> object | None:
        return self.records.get(ident)


BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (SqliteBackend, TinyBackend, DictJsonBackend)}


# -- one subprocess -----------------------------------------------------------------------------


def worker(backend_name: str, phase: str, n: int, directory: Path, lookups: int) -> dict[str, Any]:
    import agent.app.eligibility  # noqa: F401  (the daemon has it loaded: count its imports in the baseline)

    backend = BACKENDS[backend_name](directory)
    out: dict[str, Any] = {"rss_base_mb": proc_status("VmRSS")}
    rng = random.Random(n)
    hits = [id_number(rng.randrange(n - 100)) for _ in range(lookups // 2)]  # the delta removes the last 100
    if phase == "apply":
        t0 = time.perf_counter()
        for _ in records(min(n, 20_000)):
            pass
        out["gen_s"] = (time.perf_counter() - t0) * n / min(n, 20_000)  # making the records, inside apply_s
        t0 = time.perf_counter()
        count = backend.apply(n)
        out.update(apply_s=time.perf_counter() - t0, count=count, apply_peak_rss_mb=proc_status("VmHWM"))
        changed = [dict(r, facility_code="99001") for r in records(100, seed=12)]  # ids 0..99, new contents
        t0 = time.perf_counter()
        backend.delta(changed, [id_number(i) for i in range(n - 100, n)])
        out["delta_s"] = time.perf_counter() - t0
        if isinstance(backend, SqliteBackend):
            out.update(backend.apply_while_reading(n, hits))
        return out
    t0 = time.perf_counter()
    backend.open()
    out["open_s"] = time.perf_counter() - t0
    probes = [(ident, True) for ident in hits] + [(miss_id(rng.randrange(10**6)), False) for _ in range(lookups // 2)]
    rng.shuffle(probes)
    times: list[float] = []
    for ident, expect in probes:
        t0 = time.perf_counter()
        found = backend.lookup(ident)
        times.append(time.perf_counter() - t0)
        if (found is not None) != expect:
            raise SystemExit(f"{backend_name}: lookup of a {'hit' if expect else 'miss'} answered wrong")
    out.update(
        p50_ms=percentile(times, 0.5) * 1e3,
        p99_ms=percentile(times, 0.99) * 1e3,
        rss_mb=proc_status("VmRSS"),
        peak_rss_mb=proc_status("VmHWM"),
        file_mb=files_size(directory) / 2**20,
    )
    if isinstance(backend, TinyBackend):
        q = []
        for ident in hits[:10]:
            t0 = time.perf_counter()
            assert backend.query_lookup(ident) is not None
            q.append(time.perf_counter() - t0)
        out["query_p50_ms"] = percentile(q, 0.5) * 1e3
    return out


def run_worker(backend: str, phase: str, n: int, directory: Path, lookups: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", backend, "--phase", phase, "--n", str(n), "--dir", str(directory),
           "--lookups", str(lookups)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{backend} {phase} {n} failed:\n{result.stderr}")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,300000")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--worker", choices=list(BACKENDS))
    ap.add_argument("--phase", choices=("apply", "hold"))
    ap.add_argument("--n", type=int)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.phase, args.n, args.dir, args.lookups)))
        return

    print(f"targets: lookup p99 <= {TARGET_P99_MS} ms, RSS < {TARGET_RSS_MB} MB; {args.lookups} lookups (half misses)")
    head = (f"{'n':>8} {'backend':<10} {'apply s':>8} {'(gen s)':>7} {'delta s':>8} {'apply peak MB':>13} "
            f"{'open s':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99/tgt':>8} {'RSS MB':>7} {'RSS/tgt':>8} {'file MB':>8}"
            "  (RSS before open)")  # fmt: skip
    print(head)
    extra: list[str] = []
    names = args.backends.split(",")
    if "tinydb" in names and importlib.util.find_spec("tinydb") is None:
        print("tinydb is not installed (it is in the dev extra: pip install -e '.[dev]'); comparing without it")
        names.remove("tinydb")
    for n in (int(s) for s in args.sizes.split(",")):
        for name in names:
            with tempfile.TemporaryDirectory(prefix="elig-bench-") as tmp:
                a = run_worker(name, "apply", n, Path(tmp), args.lookups)
                h = run_worker(name, "hold", n, Path(tmp), args.lookups)
            print(f"{n:>8} {name:<10} {a['apply_s']:>8.2f} {a['gen_s']:>7.2f} {a['delta_s']:>8.3f} "
                  f"{a['apply_peak_rss_mb']:>13.1f} {h['open_s']:>7.2f} {h['p50_ms']:>8.4f} {h['p99_ms']:>8.4f} "
                  f"{h['p99_ms'] / TARGET_P99_MS:>8.4f} {h['rss_mb']:>7.1f} {h['rss_mb'] / TARGET_RSS_MB:>8.2f} "
                  f"{h['file_mb']:>8.1f}  (base {h['rss_base_mb']:.1f})", flush=True)  # fmt: skip
            if "during_p99_ms" in a:
                extra.append(f"{n:>8} {name}: second snapshot applied in {a['reapply_s']:.2f} s while a thread looked "
                             f"up {a['during_lookups']} times: p50 {a['during_p50_ms']:.3f} ms, p99 "
                             f"{a['during_p99_ms']:.3f} ms, max {a['during_max_ms']:.3f} ms, "
                             f"{a['during_misses']} wrong answers")  # fmt: skip
            if "query_p50_ms" in h:
                extra.append(f"{n:>8} {name}: lookup by Query (no doc_id) p50 {h['query_p50_ms']:.1f} ms (a full scan)")
    for line in extra:
        print(line)


if __name__ == "__main__":
    main()
