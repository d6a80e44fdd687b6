"""Cost of trusting the hub: verifying a signed hub message, and enrolling a terminal.

    .venv/bin/python bench/hubmsg.py [--n 2000]

Per message: COSE_Sign1 (Ed25519) verification, the strict payload decode and the
checks, with and without the durable high-water mark (one fsync'd atomic write);
for a small command and an eligibility snapshot of 1,000 records.  Enrolment: the
terminal's request (three keys, CSR, CV request), the hub's answer and the install.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

from agent.app import enrol  # noqa: E402
from agent.config import parse_config  # noqa: E402
from agent.uplink.hubmsg import HighWaterMark, HubSigner, HubVerifier  # noqa: E402
from bench.measure import percentile  # noqa: E402
from sim.card import shared_pki  # noqa: E402
from sim.hub.enrol import Authority, enroll_terminal  # noqa: E402
from sim.pki import make_pki  # noqa: E402


class _MemoryMarks(HighWaterMark):
    """The same checks without the disk write: isolates the cryptography and decoding."""

    def advance(self, kind: str, counter: int) -> None:
        if counter <= self.marks.get(kind, 0):
            raise RuntimeError("replay")
        self.marks[kind] = counter


def per_message(work: Path, body: dict[str, object], n: int, durable: bool) -> tuple[float, float, int]:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = HubSigner(key, "01001")
    path = work / f"ctr-{durable}-{len(str(body))}"
    marks = HighWaterMark(path) if durable else _MemoryMarks(path)
    verifier = HubVerifier(key.public_key(), "01001", "gate-1", marks)
    sealed = [signer.seal("gate-1", "cmd", body) for _ in range(n)]
    times = []
    for data in sealed:
        start = time.perf_counter()
        verifier.open(data, "cmd")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, percentile(times, 0.99) * 1000, len(sealed[0])


def enrolment(work: Path, n: int) -> list[float]:
    pki = work / "pki"
    make_pki(pki, "01001", [])
    authority = Authority.load(pki, ed25519.Ed25519PrivateKey.generate(), shared_pki().csca)
    out = []
    for i in range(n):
        state = work / f"t{i}"
        cfg = parse_config({"terminal": {"facility_id": "01001", "terminal_id": f"gate-{i}", "state_dir": str(state)},
                            "reader": {"terminal_credentials": str(state / "eac")}})  # fmt: skip
        start = time.perf_counter()
        enrol.request(cfg, state / "req")
        enroll_terminal(state / "req", f"gate-{i}", authority, work / "keys", state / "answer")
        enrol.install(cfg, state / "answer")
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hubmsg-bench-"))
    small = {"id": "c1", "type": "policy", "policy": {"not_insured": "refer_desk"}}
    record = {"id_number": "001090012345", "card_number": "GD4010012345678", "valid_from": "2026-01-01",
              "valid_to": "2026-12-31", "facility_code": "01001", "benefit_level": 4, "category": "GD",
              "full_name": "Nguyen Van A", "birth": "1990-05-17", "sex": "M"}  # fmt: skip
    snapshot = {"id": "c2", "type": "eligibility_snapshot", "as_of": "2026-11-30T00:00:00+00:00",
                "records": [dict(record, id_number=f"{i:012d}") for i in range(1000)]}  # fmt: skip
    print(f"hub message verification, {args.n} messages each (ms)      p50      p99   bytes")
    for name, body, n in (("command", small, args.n), ("snapshot 1,000 records", snapshot, max(20, args.n // 50))):
        for durable in (False, True):
            p50, p99, size = per_message(work, body, n, durable)
            label = f"{name}, {'with fsync of the counter' if durable else 'in memory counter'}"
            print(f"  {label:<52} {p50:7.3f}  {p99:7.3f}  {size:6d}")
    times = enrolment(work, 5)
    print(f"enrolment (request + hub answer + install), 5 terminals: "
          f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
