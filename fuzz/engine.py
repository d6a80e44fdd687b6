"""Two ways to run a target: atheris (coverage-guided libFuzzer, the campaign) and a plain seeded mutator.

The mutator needs nothing beyond the standard library: the CI smoke runs it in-process, so the harness and
every target's seeds are exercised on each test run even where atheris is not installed.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.targets import Target, one_input

INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x81", b"\x82\xff\xff", b"\x83\xff\xff\xff",
               b"\x84\xff\xff\xff\xff", b"\x9f\x1d", b"\x1c", b"\x1d", b"<", b"|", b"\n",
               b"\xd8\x1c", b"\xd8\x1d")  # fmt: skip


@dataclass
class Report:
    target: str
    executions: int = 0
    crashes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return f"{self.target}: {self.executions} executions, {len(self.crashes)} crashes, {self.seconds:.1f} s"


def mutate(data: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:  # flip bits
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # a random byte
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 2:  # insert an interesting value
            out[pos:pos] = rng.choice(INTERESTING)
        elif op == 3 and out:  # delete a run
            del out[pos : pos + rng.randint(1, 16)]
        elif op == 4:  # truncate
            del out[pos:]
        elif op == 5 and seeds:  # splice another seed
            other = rng.choice(seeds)
            start = rng.randrange(len(other) + 1)
            out[pos:pos] = other[start : start + rng.randint(1, 64)]
        elif op == 6 and out:  # duplicate a run (lengths that no longer match)
            chunk = out[pos : pos + rng.randint(1, 32)]
            out[pos:pos] = chunk
    return bytes(out)


def run_mutator(target: Target, runs: int, seed: int = 0, max_seconds: float | None = None) -> Report:
    """``runs`` inputs: the seeds, then mutations of them; every crash is recorded (input hex + traceback)."""
    rng = random.Random(f"{target.name}:{seed}")
    seeds = target.seeds() or [b""]
    report = Report(target.name)
    start = time.monotonic()
    pool = list(seeds)
    for i in range(runs):
        data = pool[i] if i < len(pool) else mutate(rng.choice(pool), seeds, rng)
        report.executions += 1
        try:
            one_input(target, data)
        except Exception:
            report.crashes.append(data.hex() + "\n" + traceback.format_exc())
        else:
            if i >= len(seeds) and len(pool) < 256 and rng.random() < 0.05:
                pool.append(data)  # keep some inputs the parser got through to mutate further
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            break
    report.seconds = time.monotonic() - start
    return report


def run_atheris(target: Target, runs: int, max_seconds: float | None, artifacts: Path | None,
                extra: list[str]) -> None:  # fmt: skip
    """libFuzzer through atheris: never returns (libFuzzer exits; status 0, or non-zero on a crash)."""
    import atheris

    seeds = target.seeds()
    for data in seeds:  # import every module the target touches before instrumenting them
        try:
            one_input(target, data)
        except Exception:
            traceback.print_exc()
            print(f"{target.name}: a seed crashes the target", file=sys.stderr)
            raise SystemExit(1) from None
    atheris.instrument_all()
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-"))
    for i, data in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(data)
    args = [sys.argv[0], f"-runs={runs}"]
    if max_seconds is not None:
        args.append(f"-max_total_time={int(max_seconds)}")
    if artifacts is not None:
        artifacts.mkdir(parents=True, exist_ok=True)
        args.append(f"-artifact_prefix={artifacts}/{target.name}-")
    atheris.Setup([*args, *extra, str(corpus)], lambda data: one_input(target, data))
    atheris.Fuzz()
