"""Spoken prompts: Debian's espeak-ng speaks Vietnamese, recordings win when present, the switch is honoured."""

from __future__ import annotations

import shutil
import sys
import wave
from pathlib import Path

import pytest

from agent.app.flow import PROMPTS
from agent.config import parse_config
from agent.errors import ConfigError
from agent.kiosk.speech import SpeechOutput, espeak_argv, record_prompts
from agent.model import Shown
from tests.flow_fakes import PERSON


def seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_espeak_says_each_prompt_in_vietnamese(tmp_path: Path) -> None:
    assert shutil.which("espeak-ng"), "./run setup installs espeak-ng"
    speech = SpeechOutput("espeak", wav_dir=tmp_path)
    speech.prompt("ready", *PROMPTS["ready"])
    speech.wait()
    speech.show(Shown("e1", "admitted", "OK", "Đã tiếp nhận. Mời vào.", "Checked in.", identity=PERSON))
    speech.wait()
    files = sorted(tmp_path.glob("*.wav"))
    assert [f.name for f in files] == ["000-ready.wav", "001-admitted.wav"]
    assert all(seconds(f) > 0.8 for f in files)
    assert speech.spoken == [("ready", "espeak"), ("admitted", "espeak")]


def test_espeak_command_line_and_no_personal_data() -> None:
    assert espeak_argv("Mời vào", "vi-vn-x-south", 120) == ["espeak-ng", "-v", "vi-vn-x-south", "-s", "120", "--",
                                                            "Mời vào"]  # fmt: skip
    said: list[str] = []
    speech = SpeechOutput("off")
    speech.say = lambda code, text: said.append(text)  # type: ignore[method-assign]
    speech.show(Shown("e1", "admitted", "OK", "Đã tiếp nhận. Mời vào.", "Checked in.", identity=PERSON))
    speech.show(Shown(None, "admitted", "OK", "x", "x"))
    assert said[0] == "Mời vào. Đã tiếp nhận. Mời vào." and said[1].startswith("Mời đến quầy")
    assert all(PERSON.id_number not in s and "An" not in s.split() for s in said)


def test_recorded_prompts_play_and_missing_ones_fall_back(tmp_path: Path) -> None:
    recordings = tmp_path / "voice"
    made = record_prompts(recordings, [("ready", PROMPTS["ready"][0])])
    assert made == [recordings / "ready.wav"] and seconds(made[0]) > 0.8
    played = tmp_path / "played.wav"
    player = [sys.executable, "-c", f"import shutil, sys; shutil.copy(sys.argv[1], {str(played)!r})"]
    speech = SpeechOutput("recorded", recorded_dir=recordings, player=player)
    speech.prompt("ready", *PROMPTS["ready"])
    speech.wait()
    assert played.read_bytes() == made[0].read_bytes()
    speech.prompt("reading", *PROMPTS["reading"])  # no recording: espeak says it
    speech.close()
    assert speech.spoken == [("ready", "recorded"), ("reading", "espeak")]


def test_the_switch_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"outputs\.speech"):
        SpeechOutput("loud")
    with pytest.raises(ConfigError, match="recorded_dir"):
        SpeechOutput("recorded", recorded_dir=Path("/nonexistent"))
    base = {"terminal": {"facility_id": "1", "terminal_id": "g"}}
    with pytest.raises(ConfigError, match=r"outputs\.speech"):
        parse_config({**base, "outputs": {"speech": "loud"}})
    with pytest.raises(ConfigError, match=r"outputs\.recorded_dir"):
        parse_config({**base, "outputs": {"speech": "recorded"}})
    with pytest.raises(ConfigError, match=r"outputs\.kiosk_port"):
        parse_config({**base, "outputs": {"kinds": ["kiosk"], "kiosk_port": 70000}})
    assert parse_config({**base, "outputs": {"kinds": ["kiosk"], "speech": "espeak"}}).outputs.kiosk_port == 8080
