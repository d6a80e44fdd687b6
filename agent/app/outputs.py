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


class _GpioV2:
    """libgpiod 2.x bindings (``gpiod`` on PyPI, Debian 13's python3-libgpiod): one request for all lines."""

    def __init__(self, gpiod: Any, chip: str, lines: Sequence[int]) -> None:
        self._value = gpiod.line.Value
        settings = gpiod.LineSettings(direction=gpiod.line.Direction.OUTPUT, output_value=self._value.INACTIVE)
        self._request = gpiod.request_lines(chip, consumer="gate-agent", config={tuple(lines): settings})

    def set(self, line: int, on: bool) -> None:
        self._request.set_value(line, self._value.ACTIVE if on else self._value.INACTIVE)

    def close(self) -> None:
        self._request.release()


class _GpioV1:
    """libgpiod 1.x bindings (Debian 12's python3-libgpiod 1.6): a chip, then one request per line."""

    def __init__(self, gpiod: Any, chip: str, lines: Sequence[int]) -> None:
        self._chip = gpiod.Chip(chip)  # a path, a name or a number (gpiod_chip_open_lookup)
        self._lines: dict[int, Any] = {}
        try:
            for offset in lines:
                line = self._chip.get_line(offset)
                line.request(consumer="gate-agent", type=gpiod.LINE_REQ_DIR_OUT, default_val=0)
                self._lines[offset] = line
        except (OSError, ValueError):
            self.close()
            raise

    def set(self, line: int, on: bool) -> None:
        self._lines[line].set_value(1 if on else 0)

    def close(self) -> None:
        for line in self._lines.values():
            line.release()
        self._chip.close()


def gpio_backend(gpiod: Any, chip: str, lines: Sequence[int]) -> _GpioV1 | _GpioV2:
    """The binding's API, told apart at run time: v2 has ``request_lines``, v1 ``Chip.get_line``."""
    if hasattr(gpiod, "request_lines") and hasattr(gpiod, "LineSettings"):
        return _GpioV2(gpiod, chip, lines)
    if hasattr(gpiod, "Chip") and hasattr(gpiod, "LINE_REQ_DIR_OUT"):
        return _GpioV1(gpiod, chip, lines)
    version = getattr(gpiod, "__version__", "unknown")
    raise ConfigError(f"outputs.kinds: the gpiod module (version {version}) is neither libgpiod 1.x nor 2.x")


class GpioOutput:
    """Gate relay and green/red LEDs through libgpiod, v1 (Debian 12's ``python3-libgpiod``) or v2 (``gpiod``)."""

    def __init__(self, chip: str, relay: int, green: int, red: int, relay_seconds: float, gpiod: Any = None) -> None:
        if gpiod is None:
            try:
                import gpiod  # type: ignore[import-not-found,no-redef,unused-ignore]
            except ImportError as exc:
                raise ConfigError("outputs.kinds has 'gpio' but the gpiod Python module is not installed "
                                  "(apt install python3-libgpiod)") from exc  # fmt: skip
        self.relay_seconds = relay_seconds
        self.lines = {"relay": relay, "green": green, "red": red}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        try:
            self._backend = gpio_backend(gpiod, chip, list(self.lines.values()))
        except (OSError, ValueError) as exc:
            raise GateAgentError(f"cannot open GPIO chip {chip} lines {sorted(self.lines.values())}: {exc}") from exc

    def _set(self, name: str, on: bool) -> None:
        with self._lock:
            self._backend.set(self.lines[name], on)

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        self._set("green", False)
        self._set("red", False)

    def show(self, shown: Shown) -> None:
        admitted = shown.gate_opens
        self._set("green", admitted)
        self._set("red", not admitted)
        if admitted:
            if self._timer is not None:
                self._timer.cancel()  # a second admission keeps the gate open for its full time
            self._set("relay", True)
            self._timer = threading.Timer(self.relay_seconds, self._set, args=("relay", False))
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        """Relay open (gate closed), LEDs off, lines released."""
        if self._timer is not None:
            self._timer.cancel()
        for name in self.lines:
            self._set(name, False)
        self._backend.close()


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
