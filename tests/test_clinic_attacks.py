"""The adversarial corpus through a whole clinic: real gate-agent daemons, pcscd + vpcd, ptys and mosquitto.

Every attack ends with the patient kept out (referred to the desk, refused, or told the card could not
be read), the genuine controls are admitted, and the summary's attack -> outcome table says so."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sim.clinic.patients import ADMITTED, ATTACK_ROUND, ATTACKS, NOT_READ, Kind, Patient
from sim.clinic.run import Clinic, Visit, attack_table, not_read_prompt, render
from sim.commands.clinic import exit_status
from sim.population import make_person


@pytest.mark.pcscd
@pytest.mark.broker
@pytest.mark.pty
@pytest.mark.slow
def test_every_attack_is_stopped_and_the_controls_get_in(tmp_path: Path) -> None:
    rounds = 2
    clinic = Clinic(2, rounds * len(ATTACK_ROUND), tmp_path, seed=11, progress=False, attacks=True)
    at_hub: list[dict[str, Any]] = []

    def read_hub(running: Clinic) -> None:
        assert running.hub is not None
        at_hub.extend(e["body"] for e in running.hub.events() if e["type"] == "checkin")

    summary, codes = clinic.run_once(read_hub)
    assert set(codes.values()) == {0}
    visits = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    by_kind: dict[str, Counter[tuple[str, str]]] = {}
    for v in visits:
        by_kind.setdefault(v["kind"], Counter())[(v["outcome"], v["reason"])] += 1
    assert {k: sum(c.values()) for k, c in by_kind.items()} == {k.value: rounds for k in ATTACK_ROUND}

    # the new attacks, each with the reason the fail-closed policy gives
    assert by_kind["finger_withheld"] == {("refer_desk", "FINGER_REQUIRED_NOT_CHECKED"): rounds}
    assert by_kind["clone_hiding"] == {("refused", "CLONE_SUSPECTED"): rounds}
    for hostile in ("hostile_chaining", "hostile_oversize"):
        assert by_kind[hostile] == {(NOT_READ, "READ_FAILED"): rounds}, hostile
    # the older ones still hold
    assert by_kind["cloned"] == {("refused", "CLONE_SUSPECTED"): rounds}
    assert by_kind["tampered"] == {("refused", "PA_FAILED"): rounds}
    assert by_kind["borrowed_card"] == {("refer_desk", "FINGER_NO_MATCH"): rounds}
    # the control group: a genuine card, and one that must be read by SELECT instead of short file identifiers
    for control in ("insured", "no_sfi"):
        assert set(o for o, _ in by_kind[control]) == {"admitted"}, by_kind[control]

    assert summary["unexpected"] == [] and all(v["as_expected"] for v in visits)
    assert summary["attacks_tried"] == summary["attacks_stopped"] == 7 * rounds
    assert summary["attacks_admitted"] == 0
    rows = {row["kind"]: row for row in summary["attacks"]}
    assert [r["kind"] for r in summary["attacks"] if not r["attack"]] == ["insured", "no_sfi"]
    assert rows["hostile_chaining"]["stopped"] == rounds and rows["no_sfi"]["admitted"] == rounds
    assert exit_status(summary, codes) == 0

    # a hostile chip leaves no check-in: the hub holds exactly the outcomes shown, and none is a hostile patient's
    not_read = [v for v in visits if v["outcome"] == NOT_READ]
    assert len(not_read) == 2 * rounds and all(v["event_id"] is None for v in not_read)
    assert summary["shown"] == summary["at_hub"] == len(visits) - len(not_read)
    assert summary["shown_missing_at_hub"] == []
    hostile_ids = {p.person.id_number for p in clinic.patients if p.kind in (Kind.HOSTILE_CHAINING,
                                                                             Kind.HOSTILE_OVERSIZE)}  # fmt: skip
    assert len(at_hub) == summary["at_hub"] and not {b["id_number"] for b in at_hub} & hostile_ids

    lines = render(summary).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("attack (control)"))
    end = next(i for i, line in enumerate(lines) if line.startswith("attacks stopped:"))
    table = lines[head + 1 : end]
    assert table[0].split()[:4] == ["borrowed_card", "refer_desk", "FINGER_NO_MATCH", str(rounds)]
    assert any(row.split() == ["finger_withheld", "refer_desk", "FINGER_REQUIRED_NOT_CHECKED", str(rounds),
                               f"{rounds}/{rounds}"] for row in table)  # fmt: skip
    assert any(row.split()[:3] == ["hostile_oversize", NOT_READ, "READ_FAILED"] for row in table)
    assert any(row.split()[0] == "(no_sfi)" and row.split()[-1] == "control" for row in table)
    assert f"attacks stopped: {7 * rounds}/{7 * rounds}, admitted: 0 (every attack stopped)" in lines
    # no personal data of any patient in the daemons' logs
    logs = "".join((tmp_path / "work" / f"gate-{i}" / "agent.log").read_text() for i in (1, 2))
    for p in clinic.patients:
        assert p.person.id_number not in logs and p.person.full_name not in logs


def _visit(index: int, kind: Kind, outcome: str | None, reason: str | None) -> Visit:
    person = make_person(index, min_age=20, max_age=40)
    return Visit(Patient(index, kind, person, "pupils", index), "gate-1", outcome, reason)


def test_an_admitted_attack_fails_the_run_and_says_so() -> None:
    visits = [
        _visit(0, Kind.CLONE_HIDING, "refused", "CLONE_SUSPECTED"),
        _visit(1, Kind.CLONE_HIDING, "admitted", "OK"),  # a gate that let a copy in
        _visit(2, Kind.HOSTILE_CHAINING, None, None),  # a gate that never answered
        _visit(3, Kind.INSURED, "admitted", "OK"),
    ]
    table = attack_table(visits)
    assert table["attacks_tried"] == 3 and table["attacks_stopped"] == 1 and table["attacks_admitted"] == 1
    clone = next(r for r in table["attacks"] if r["kind"] == "clone_hiding")
    assert clone["outcomes"] == [{"outcome": "admitted", "reason": "OK", "count": 1},
                                 {"outcome": "refused", "reason": "CLONE_SUSPECTED", "count": 1}]  # fmt: skip
    assert clone["as_expected"] == 1 and clone["stopped"] == 1
    hostile = next(r for r in table["attacks"] if r["kind"] == "hostile_chaining")
    assert hostile["stopped"] == 0 and hostile["outcomes"][0]["outcome"] == "none"
    assert [v.as_expected for v in visits] == [True, False, False, True]
    summary = {"unexpected": [v.as_dict() for v in visits if not v.as_expected], "shown_missing_at_hub": [],
               **table}  # fmt: skip
    assert exit_status(summary, {"gate-1": 0}) == 1
    assert exit_status({**summary, "unexpected": []}, {"gate-1": 0}) == 1  # the admitted attack alone fails it
    assert exit_status({**summary, "unexpected": [], "attacks_admitted": 0}, {"gate-1": 0}) == 0
    assert exit_status({**summary, "unexpected": [], "attacks_admitted": 0}, {"gate-1": 1}) == 1
    base = {"patients": 4, "terminals": 1, "seconds": 1.0, "checkins_per_minute_per_terminal": 1.0,
            "latency_p50": 0.1, "latency_p95": 0.2, "outcomes": {}, "kinds": {}, "as_expected": 2, "shown": 2,
            "at_hub": 2, "hub_duplicates_removed": 0, "discrepancies_by_category": {}, "fault_log": []}  # fmt: skip
    text = render({**base, **summary})
    assert "attacks stopped: 1/3, admitted: 1 (ATTACKS ADMITTED)" in text
    assert any(line.split() == ["clone_hiding", "admitted", "OK", "1", "1/2"] for line in text.splitlines())
    # a clinic without attacks has no attack table
    assert attack_table([visits[3]]) == {}
    assert "attack (control)" not in render({**base, **summary, "attacks": []})
    assert ATTACKS.isdisjoint({Kind.INSURED, Kind.NO_SFI}) and "admitted" in ADMITTED


def test_the_clinic_reads_the_card_could_not_be_read_prompt_from_the_daemon_log(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_bytes(b"2026-11-30 09:00:00,000 INFO agent.app.outputs: prompt read_failed: The card could not be "
                    b"read. Please try again.\n")  # fmt: skip
    offset = log.stat().st_size
    assert not_read_prompt(log, 0) == "read_failed"
    assert not_read_prompt(log, offset) is None  # only what came after the patient arrived
    with log.open("ab") as fh:
        fh.write(b"... INFO agent.app.outputs: prompt reading: Reading the card, please keep it still.\n")
        fh.write(b"... INFO agent.app.outputs: prompt wrong_keys: The scanned details do not open this card.\n")
    assert not_read_prompt(log, offset) == "wrong_keys"
