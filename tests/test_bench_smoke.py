"""Every benchmark starts: its imports resolve and its options parse (a refactor must not leave one broken).

The benchmarks themselves run by hand (they measure, they do not pass or fail); this only catches
a benchmark that no longer starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
#: the benchmark scripts (bench/measure.py is their shared helper module, not one of them)
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__":' in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_starts(script: str) -> None:
    result = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                            timeout=120, cwd=BENCH.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 10
