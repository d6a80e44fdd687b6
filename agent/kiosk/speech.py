"""Spoken prompts: many patients cannot read the screen, so the gate says each state aloud.

``[outputs] speech``: ``off``, ``espeak`` (Debian's ``espeak-ng`` with its Vietnamese
voice, from the prompt's text) or ``recorded`` (``<recorded_dir>/<code>.wav`` played
with ``aplay``; a code without a recording falls back to espeak).  A new prompt cuts
the one still playing.  :func:`record_prompts` makes the recordings with espeak-ng,
for a clinic that wants to replace them with a human voice file by file.  Speech never
says personal data: outcomes are spoken by their title and reason only.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from agent.errors import ConfigError, GateAgentError
from agent.kiosk.screen import OUTCOMES, prompt_screen
from agent.model import Shown

log = logging.getLogger(__name__)

MODES = ("off", "espeak", "recorded")
ESPEAK = "espeak-ng"
PLAYER = ("aplay", "-q")


def espeak_argv(text: str, voice: str = "vi", speed: int = 140, wav: Path | None = None) -> list[str]:
    """The espeak-ng command line for ``text`` (to the sound card, or into ``wav``)."""
    argv = [ESPEAK, "-v", voice, "-s", str(speed)]
    if wav is not None:
        argv += ["-w", str(wav)]
    return [*argv, "--", text]


class SpeechOutput:
    """An :class:`agent.app.ports.Output` that speaks: one utterance at a time, the newest wins."""

    def __init__(self, mode: str, *, voice: str = "vi", speed: int = 140, recorded_dir: Path | None = None,
                 player: Sequence[str] = PLAYER, wav_dir: Path | None = None) -> None:  # fmt: skip
        if mode not in MODES:
            raise ConfigError(f"outputs.speech: {mode!r} is not one of {', '.join(MODES)}")
        if mode == "espeak" and shutil.which(ESPEAK) is None:
            raise ConfigError("outputs.speech = 'espeak' but espeak-ng is not installed (apt-get install espeak-ng)")
        if mode == "recorded" and (recorded_dir is None or not Path(recorded_dir).is_dir()):
            raise ConfigError(f"outputs.speech = 'recorded' needs outputs.recorded_dir, a directory ({recorded_dir})")
        self.mode = mode
        self.voice = voice
        self.speed = speed
        self.recorded_dir = Path(recorded_dir) if recorded_dir else None
        self.player = list(player)
        #: tests and the recordings: write each utterance to a numbered WAV file here instead of the sound card
        self.wav_dir = Path(wav_dir) if wav_dir else None
        self.spoken: list[tuple[str, str]] = []  # (code, how) of each utterance, in order
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        self.say(code, prompt_screen(code, message_vi, message_en).title_vi)

    def show(self, shown: Shown) -> None:
        title = OUTCOMES.get(shown.outcome, OUTCOMES["refer_desk"])[0]
        if shown.outcome.startswith("admitted") and shown.event_id is None:
            title = OUTCOMES["refer_desk"][0]
        self.say(shown.outcome, f"{title}. {shown.message_vi}")

    def say(self, code: str, text: str) -> None:
        if self.mode == "off":
            return
        recording = self.recorded_dir / f"{code}.wav" if self.recorded_dir else None
        if self.mode == "recorded" and recording is not None and recording.is_file() and self.wav_dir is None:
            argv, how = [*self.player, str(recording)], "recorded"
        else:
            wav = None
            if self.wav_dir is not None:
                self.wav_dir.mkdir(parents=True, exist_ok=True)
                wav = self.wav_dir / f"{len(self.spoken):03d}-{code}.wav"
            argv, how = espeak_argv(text, self.voice, self.speed, wav), "espeak"
        with self._lock:
            self._cut()
            try:
                self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)  # fmt: skip
            except OSError as exc:
                raise GateAgentError(f"cannot speak the prompt {code}: {exc}") from exc
            self.spoken.append((code, how))

    def _cut(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(1)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def wait(self, timeout: float = 10.0) -> None:
        """Until the current utterance ends (tests, and a clean stop)."""
        proc = self._proc
        if proc is not None:
            proc.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._cut()


def record_prompts(
    out_dir: Path, prompts: Iterable[tuple[str, str]], voice: str = "vi", speed: int = 140
) -> list[Path]:
    """Write ``<code>.wav`` for each (code, Vietnamese text) with espeak-ng: a starting set for ``recorded``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for code, text in prompts:
        wav = out_dir / f"{code}.wav"
        result = subprocess.run(espeak_argv(text, voice, speed, wav), capture_output=True, timeout=30, check=False)
        if result.returncode != 0:
            raise GateAgentError(f"espeak-ng failed for {code}: {result.stderr.decode(errors='replace').strip()}")
        made.append(wav)
    return made
