"""The fuzzing harness cannot rot: every target runs its seeds and a couple of thousand mutations here.

A crash is an untyped exception escaping a parser; the report carries the input (hex) and the traceback,
and the input becomes a regression test in tests/test_fuzz_regressions.py.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fuzz.engine import run_mutator
from fuzz.targets import TARGETS, Target, one_input

#: what the campaign covers: every parser that takes bytes from outside the terminal
EXPECTED = {"tlv", "mrz", "com", "dg1", "dg2", "dg3", "dg13", "dg14", "dg15", "cardaccess", "sod", "cvc",
            "finger_packet", "scan_qr", "scan_mrz", "event", "hub_command", "config"}  # fmt: skip


def test_every_outside_parser_has_a_target() -> None:
    assert set(TARGETS) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_smoke(name: str) -> None:
    target = TARGETS[name]
    seeds = target.seeds()
    assert seeds, f"{name}: no seeds from the simulator"
    start = time.monotonic()
    report = run_mutator(target, 2000, seed=1)
    assert report.executions == 2000
    assert report.crashes == [], report.crashes[0]
    assert time.monotonic() - start < 20


def test_a_target_lets_only_typed_errors_through() -> None:
    def parser(data: bytes) -> None:
        if data == b"bad":
            raise IndexError("an untyped escape")
        from agent.card.errors import ParseError

        raise ParseError("typed")

    target = Target("probe", parser, lambda: [b"ok"])
    one_input(target, b"ok")  # the typed error is swallowed
    with pytest.raises(IndexError):
        one_input(target, b"bad")
    report = run_mutator(Target("probe", parser, lambda: [b"bad", b"ok"]), 10)
    assert len(report.crashes) == 1 and report.crashes[0].startswith(b"bad".hex())


def test_the_atheris_engine_runs() -> None:
    pytest.importorskip("atheris", reason="atheris publishes wheels for x86-64 only")
    res = subprocess.run([sys.executable, "-m", "fuzz", "--engine", "atheris", "--target", "tlv", "--runs", "500"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Done 500 runs" in res.stderr and "cov:" in res.stderr
