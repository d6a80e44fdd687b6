"""A whole clinic through the real daemons, pcscd, ptys and mosquitto — with a power cut, a broker outage
and cards pulled mid-read: every outcome shown reaches the hub exactly once, and matches the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.clinic.patients import Kind, Mix
from sim.clinic.run import Clinic, parse_clinic_faults

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.pty, pytest.mark.slow]


def test_clinic_with_faults(tmp_path: Path) -> None:
    mix = Mix(problem_rate=0.2, uninsured=0.1, expired=0.1, child_no_card=0.1, tampered=0.1, cloned=0.1,
              borrowed_card=0.1)
    faults = parse_clinic_faults("broker-down=3@4,power-cut@9,card-pull=0.15")
    clinic = Clinic(2, 24, tmp_path, seed=8, faults=faults, progress=False, mix=mix)
    try:
        clinic.setup()
        summary = clinic.run()
    finally:
        codes = clinic.teardown()
    assert set(codes.values()) == {0}  # SIGTERM: each daemon finished and flushed
    kinds = {Kind.TAMPERED, Kind.CLONED, Kind.BORROWED_CARD, Kind.CHILD_NO_CARD, Kind.INSURED}
    assert {k.value for k in kinds} <= set(summary["kinds"])
    assert summary["unexpected"] == []
    assert summary["shown"] == 24 and summary["shown_missing_at_hub"] == []
    assert summary["at_hub"] == 24
    lines = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    assert len(lines) == 24 and all(line["event_id"] for line in lines)
    assert json.loads((tmp_path / "summary.json").read_text())["patients"] == 24


def test_fault_spec_errors() -> None:
    with pytest.raises(ValueError, match="bad fault"):
        parse_clinic_faults("meteor@3")
