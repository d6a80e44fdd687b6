"""The configuration file: defaults, the shipped example, and errors that name the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config, parse_config
from agent.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "agent.example.toml"


def test_shipped_example_is_valid_and_matches_the_defaults() -> None:
    cfg = load_config(EXAMPLE)
    minimal = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1"}})
    for section in ("reader", "finger", "scanners", "eligibility", "timeouts", "outputs"):
        assert getattr(cfg, section) == getattr(minimal, section), section


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "terminal: required table is missing"),
        ({"terminal": {"facility_id": "01001"}}, "terminal.terminal_id: required key is missing"),
        ({"terminal": {"facility_id": "01001", "terminal_id": "g", "colour": 1}}, "terminal.colour: unknown key"),
        ({"terminal": {"facility_id": "01 001", "terminal_id": "g"}}, "terminal.facility_id"),
        (
            {"terminal": {"facility_id": "1", "terminal_id": "g"}, "reader": {"chunk_size": "big"}},
            "reader.chunk_size: expected an integer",
        ),
        (
            {"terminal": {"facility_id": "1", "terminal_id": "g"}, "reader": {"chunk_size": 70000}},
            "reader.chunk_size: must be",
        ),
        ({"terminal": {"facility_id": "1", "terminal_id": "g"}, "finger": {"enabled": True}}, "finger.url: required"),
        (
            {"terminal": {"facility_id": "1", "terminal_id": "g"}, "timeouts": {"read": 0}},
            "timeouts.read: must be positive",
        ),
        (
            {"terminal": {"facility_id": "1", "terminal_id": "g"}, "timeouts": {"read": True}},
            "timeouts.read: expected a number",
        ),
        (
            {"terminal": {"facility_id": "1", "terminal_id": "g"}, "outputs": {"kinds": ["siren"]}},
            "outputs.kinds: unknown output",
        ),
        (
            {"terminal": {"facility_id": "1", "terminal_id": "g"}, "outputs": {"kinds": ["recorder"]}},
            "outputs.recorder_path",
        ),
        ({"terminal": {"facility_id": "1", "terminal_id": "g"}, "policy": {"pa_failed": "shrug"}}, "policy.pa_failed"),
        ({"terminal": {"facility_id": "1", "terminal_id": "g"}, "gate": {}}, "gate: unknown table"),
        (
            {"terminal": {"facility_id": "1", "terminal_id": "g"}, "reader": {"files": ["dg1", 13]}},
            r"reader.files\[1\]",
        ),
    ],
)
def test_errors_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(doc, Path("agent.toml"))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[terminal\nfacility_id = 1")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_config(bad)


def test_config_check_command(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "agent", "config", "check", "--config", str(EXAMPLE), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["terminal_id"] == "gate-1"
    bad = tmp_path / "agent.toml"
    bad.write_text('[terminal]\nfacility_id = "01001"\nterminal_id = "g"\n[finger]\nthreshhold = 3\n')
    res = subprocess.run(
        [sys.executable, "-m", "agent", "config", "check", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "finger.threshhold: unknown key" in res.stderr
