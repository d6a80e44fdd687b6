"""``python -m fuzz.campaign --seconds 40``: every target under atheris in turn, one summary table.

Each target runs in its own process (libFuzzer exits when done) at the lowest CPU priority, for
``--seconds`` or ``--runs``.  The table gives, per target, the executions, the coverage libFuzzer reached
(``cov``: edges, ``ft``: features) and whether it crashed (the crashing input is in ``--artifacts``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from fuzz.targets import TARGETS

_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)")
_DONE = re.compile(r"^Done (\d+) runs")


def run_one(name: str, seconds: float, runs: int, artifacts: Path, log_dir: Path) -> dict[str, object]:
    log = log_dir / f"{name}.log"
    start = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "fuzz", "--engine", "atheris", "--target", name, "--runs", str(runs),
             "--max-time", str(seconds), "--artifacts", str(artifacts), "-print_final_stats=1"],
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(19), check=False,
        )  # fmt: skip
    execs, cov, ft = 0, 0, 0
    crash = ""
    for line in log.read_text(errors="replace").splitlines():
        if m := _STATUS.match(line):
            execs, cov, ft = int(m[1]), int(m[2]), int(m[3])
        elif m := _DONE.match(line):
            execs = int(m[1])
        elif line.startswith("stat::number_of_executed_units:"):
            execs = int(line.split(":")[-1])
        elif "Uncaught Python exception" in line or "ERROR: libFuzzer" in line:
            crash = crash or line.strip()
    return {"target": name, "executions": execs, "cov": cov, "ft": ft, "seconds": round(time.monotonic() - start),
            "exit": proc.returncode, "crash": crash}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.campaign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40, help="per target (default 40)")
    parser.add_argument("--runs", type=int, default=-1, help="per target (default: unbounded, until --seconds)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: all)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-campaign"), help="logs and crash artifacts")
    args = parser.parse_args(argv)
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    rows = []
    print("| target | executions | cov | ft | seconds | crash |\n|---|---:|---:|---:|---:|---|", flush=True)
    for name in args.targets.split(","):
        row = run_one(name, args.seconds, args.runs, args.out / "artifacts", args.out / "logs")
        rows.append(row)
        print(f"| {name} | {row['executions']} | {row['cov']} | {row['ft']} | {row['seconds']} | "
              f"{row['crash'] or 'none'} |", flush=True)  # fmt: skip
    return 1 if any(row["crash"] or row["exit"] not in (0,) for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
