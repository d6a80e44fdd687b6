"""What the benchmarks measure with: percentiles, a process's memory and CPU from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the value below which a fraction ``p`` of ``values`` lies; NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def proc_status(field: str, pid: int | str = "self") -> float:
    """A /proc/PID/status memory field in MB (VmRSS, VmHWM); NaN when the process has none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
