"""``python -m fuzz --target sod --runs 100000``: fuzz one parser (``--list`` names them).

``--engine atheris`` (the default when atheris is installed) is coverage-guided: libFuzzer prints its
progress (``cov:``, ``exec/s``) on stderr and writes a crashing input to ``--artifacts``.  ``--engine
mutate`` is a seeded mutator without coverage, for machines without atheris and for the CI smoke.
Exit status 0 when nothing crashed, 1 when a target let an untyped exception escape.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from fuzz.engine import run_atheris, run_mutator
from fuzz.targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="a target name, or 'all' (mutate engine only)")
    parser.add_argument("--runs", type=int, default=10_000, help="inputs to run (default 10000)")
    parser.add_argument("--max-time", type=float, help="stop after this many seconds")
    parser.add_argument("--engine", choices=("atheris", "mutate"),
                        default="atheris" if importlib.util.find_spec("atheris") else "mutate")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the mutate engine's random seed")
    parser.add_argument("--artifacts", type=Path, help="where atheris writes crashing inputs")
    parser.add_argument("--list", action="store_true", help="list the targets")
    args, extra = parser.parse_known_args(argv)
    if args.list or not args.target:
        for target in TARGETS.values():
            print(f"{target.name:<14} {target.about}")
        return 0
    names = list(TARGETS) if args.target == "all" else [args.target]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r} (known: {', '.join(TARGETS)})")
    if args.engine == "atheris":
        if len(names) != 1:
            parser.error("the atheris engine fuzzes one target per process")
        run_atheris(TARGETS[names[0]], args.runs, args.max_time, args.artifacts, extra)
        return 0  # not reached: libFuzzer exits
    crashed = False
    for name in names:
        report = run_mutator(TARGETS[name], args.runs, args.seed, args.max_time)
        print(report.line())
        for crash in report.crashes[:3]:
            print(crash, file=sys.stderr)
        crashed |= bool(report.crashes)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
