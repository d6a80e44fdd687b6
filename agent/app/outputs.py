"""Where outcomes and prompts go: the log, a recorder file, GPIO (relay + LEDs), the attendant's screen.

All behind :class:`agent.app.ports.Output`; the daemon builds a :class:`MultiOutput`
from ``[outputs] kinds``.  The recorder writes one JSON line per outcome shown
(the clinic simulator's ``outcomes.jsonl``); it holds no personal data, only the
event id, the outcome and the reason.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from agent.app.ports import Output
from agent.errors import ConfigError, GateAgentError
from agent.model import Shown

log = logging.getLogger(__name__)


class LogOutput:
    """Prompts and outcomes in the journal (English; no personal data)."""

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        log.info("prompt %s: %s", code, message_en)

    def show(self, shown: Shown) -> None:
        log.info("outcome %s (%s) event %s: %s", shown.outcome, shown.reason, shown.event_id, shown.message_en)


class RecorderOutput:
    """Append every outcome shown as a JSON line, fsync'd (the simulator and audits read it)."""

    def __init__(self, path: Path | str, terminal_id: str = "") -> None:
        self.path = Path(path)
        self.terminal_id = terminal_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        pass

    def show(self, shown: Shown) -> None:
        line = {
            "time": time.time(),
            "terminal": self.terminal_id,
            "event_id": shown.event_id,
            "outcome": shown.outcome,
            "reason": shown.reason,
            "provisional": shown.provisional,
        }
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)


_MARKS = {"admitted": "OK", "admitted_provisional": "OK*", "refer_desk": "!!", "refused": "XX"}


class ScreenOutput:
    """A plain-text status screen for the attendant (a tty or the journal's console)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        self.stream.write(f"\r\x1b[K{message_vi} / {message_en}\n")
        self.stream.flush()

    def show(self, shown: Shown) -> None:
        mark = _MARKS.get(shown.outcome, "?")
        self.stream.write(f"[{mark}] {shown.message_vi} / {shown.message_en}\n")
        self.stream.flush()


class GpioOutput:
    """Gate relay and green/red LEDs through libgpiod (``python3-libgpiod`` / ``gpiod`` on PyPI)."""

    def __init__(self, chip: str, relay: int, green: int, red: int, relay_seconds: float) -> None:
        try:
            import gpiod  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigError("outputs.kinds has 'gpio' but the gpiod Python module is not installed") from exc
        self._gpiod: Any = gpiod
        self.relay_seconds = relay_seconds
        self.lines = {"relay": relay, "green": green, "red": red}
        try:
            settings = gpiod.LineSettings(direction=gpiod.line.Direction.OUTPUT)
            self._request = gpiod.request_lines(
                chip, consumer="gate-agent", config={tuple(self.lines.values()): settings}
            )
        except OSError as exc:
            raise GateAgentError(f"cannot open GPIO chip {chip}: {exc}") from exc

    def _set(self, name: str, on: bool) -> None:
        value = self._gpiod.line.Value.ACTIVE if on else self._gpiod.line.Value.INACTIVE
        self._request.set_value(self.lines[name], value)

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        self._set("green", False)
        self._set("red", False)

    def show(self, shown: Shown) -> None:
        admitted = shown.outcome in ("admitted", "admitted_provisional") and shown.event_id is not None
        self._set("green", admitted)
        self._set("red", not admitted)
        if admitted:
            self._set("relay", True)
            timer = threading.Timer(self.relay_seconds, self._set, args=("relay", False))
            timer.daemon = True
            timer.start()


class MultiOutput:
    """Fan out to several outputs; one failing output does not silence the others."""

    def __init__(self, outputs: Sequence[Output]) -> None:
        self.outputs = list(outputs)

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        for out in self.outputs:
            try:
                out.prompt(code, message_vi, message_en)
            except Exception:
                log.exception("output %s failed", type(out).__name__)

    def show(self, shown: Shown) -> None:
        for out in self.outputs:
            try:
                out.show(shown)
            except Exception:
                log.exception("output %s failed", type(out).__name__)


class MemoryOutput:
    """Keeps everything (tests, the simulator's in-process gates)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.shown: list[Shown] = []

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        self.prompts.append(code)

    def show(self, shown: Shown) -> None:
        self.shown.append(shown)
