"""A whole clinic through the real daemons, pcscd, ptys and mosquitto — with a power cut, a broker outage
and cards pulled mid-read: every outcome shown reaches the hub exactly once, and matches the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.clinic.patients import Kind, Mix
from sim.clinic.run import Clinic, parse_clinic_faults, render

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.pty, pytest.mark.slow]


def test_clinic_with_faults(tmp_path: Path) -> None:
    # an outage changes what VNeID and gateway-coded patients get (no verification, the cache instead of the
    # gateway's code): they have their own run below, without faults
    mix = Mix(problem_rate=0.2, uninsured=0.1, expired=0.1, child_no_card=0.1, tampered=0.1, cloned=0.1,
              borrowed_card=0.1, child_temp_card=0, gateway_other=0, vneid_valid=0, vneid_expired=0,
              vneid_wrong_level=0, vneid_offline=0)
    faults = parse_clinic_faults("broker-down=3@4,power-cut@9,card-pull=0.15")
    clinic = Clinic(2, 24, tmp_path, seed=8, faults=faults, progress=False, mix=mix)
    summary, codes = clinic.run_once()
    assert set(codes.values()) == {0}  # SIGTERM: each daemon finished and flushed
    kinds = {Kind.TAMPERED, Kind.CLONED, Kind.BORROWED_CARD, Kind.CHILD_NO_CARD, Kind.INSURED}
    assert {k.value for k in kinds} <= set(summary["kinds"])
    assert summary["unexpected"] == []
    assert summary["shown"] == 24 and summary["shown_missing_at_hub"] == []
    assert summary["at_hub"] == 24
    lines = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    assert len(lines) == 24 and all(line["event_id"] for line in lines)
    assert json.loads((tmp_path / "summary.json").read_text())["patients"] == 24
    # the fault log says what happened, where and when
    log = summary["fault_log"]
    assert [f["t"] for f in log] == sorted(f["t"] for f in log) and all(f["t"] >= 0 for f in log)
    assert summary["faults"]["broker-down"] == 1 and summary["faults"]["power-cut"] == 1
    assert [f["kind"] for f in log].count("broker-up") == 1
    assert {f["gate"] for f in log if f["kind"] in ("power-cut", "card-pull")} <= {"gate-1", "gate-2"}
    assert summary["faults"].get("card-pull", 0) == sum(1 for f in log if f["kind"] == "card-pull")
    assert sum(line["attempts"] - 1 for line in lines) >= summary["faults"].get("card-pull", 0)
    text = render(summary)
    assert "fault log" in text and "power-cut" in text


def test_clinic_with_vneid_patients_and_gateway_codes(tmp_path: Path) -> None:
    mix = Mix(problem_rate=0.15, uninsured=0.05, expired=0.05, child_no_card=0, tampered=0, cloned=0,
              borrowed_card=0, child_temp_card=0.1, gateway_other=0.15, vneid_valid=0.15, vneid_expired=0.08,
              vneid_wrong_level=0.08, vneid_offline=0.08)  # fmt: skip
    clinic = Clinic(1, 16, tmp_path, seed=5, progress=False, mix=mix)
    summary, codes = clinic.run_once()
    assert set(codes.values()) == {0}
    assert summary["unexpected"] == [] and summary["at_hub"] == 16
    routes = summary["by_route"]
    assert set(routes) == {"chip", "vneid", "desk"}, routes
    assert sum(sum(r.values()) for r in routes.values()) == 16
    kinds = summary["kinds"]
    vneid = sum(n for k, n in kinds.items() if k.startswith("vneid_"))
    assert sum(routes["vneid"].values()) == vneid
    assert summary["vneid_verifications"].get("unverified", 0) == kinds.get("vneid_offline", 0)
    by_code = summary["by_gateway_code"]
    chip_and_desk = sum(sum(routes[r].values()) for r in ("chip", "desk"))
    verified_vneid = summary["vneid_verifications"].get("valid", 0)
    assert sum(sum(v.values()) for c, v in by_code.items() if c != "none") == chip_and_desk + verified_vneid
    assert "130" in by_code and set(by_code["130"]) == {"admitted_provisional"}
    lines = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    assert {line["route"] for line in lines} == {"chip", "vneid", "desk"}
    text = render(summary)
    assert "gateway code" in text and "vneid" in text


def test_fault_spec_errors() -> None:
    with pytest.raises(ValueError, match="bad fault"):
        parse_clinic_faults("meteor@3")


def test_fault_report_table_and_log() -> None:
    summary = {
        "patients": 3, "terminals": 1, "seconds": 9.0, "checkins_per_minute_per_terminal": 20.0, "latency_p50": 1.0,
        "latency_p95": 2.0, "outcomes": {"admitted": 3}, "kinds": {"insured": 3}, "as_expected": 3, "shown": 3,
        "at_hub": 3, "shown_missing_at_hub": [], "hub_duplicates_removed": 0, "discrepancies_by_category": {},
        "faults": {"power-cut": 1, "card-pull": 2},
        "fault_log": [{"t": 1.25, "gate": "gate-1", "kind": "card-pull", "detail": "patient 0, attempt 1"},
                      {"t": 3.5, "gate": "gate-1", "kind": "power-cut", "detail": "before patient 1"},
                      {"t": 7.0, "gate": "gate-1", "kind": "card-pull", "detail": "patient 2, attempt 1"}],
    }  # fmt: skip
    lines = render(summary).splitlines()
    assert any(line.split() == ["card-pull", "2"] for line in lines)
    assert any(line.split() == ["power-cut", "1"] for line in lines)
    log = lines[lines.index("fault log (seconds since the start):") + 1 :]
    assert log[1].split()[:4] == ["+", "3.5", "s", "gate-1"] and "power-cut" in log[1]
    assert "fault" not in render({**summary, "faults": {}, "fault_log": []})
