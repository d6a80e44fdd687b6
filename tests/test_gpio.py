"""GPIO output on both libgpiod Python APIs, chosen at run time.

Debian 12 ships python3-libgpiod 1.6 (``Chip.get_line().request(type=LINE_REQ_DIR_OUT)``);
libgpiod 2.x (PyPI ``gpiod``, later Debian) has ``request_lines(config={...: LineSettings})``.
No GPIO chip exists where the tests run (no gpio-sim), so each API is an in-process stand-in
with the binding's call signatures; a call the real binding would refuse fails here too.
"""

from __future__ import annotations

import time
import types
from typing import Any

import pytest

from agent.app.outputs import GpioOutput
from agent.app.ports import Shown
from agent.errors import ConfigError, GateAgentError

RELAY, GREEN, RED = 17, 27, 22


def v1_module(log: list[tuple[int, int]], fail_open: bool = False) -> Any:
    class Line:
        def __init__(self, offset: int) -> None:
            self.offset = offset
            self.requested = False

        def request(self, consumer: str, type: int = 0, flags: int = 0, default_val: int = 0) -> None:
            assert type == LINE_REQ_DIR_OUT and consumer == "gate-agent"
            self.requested = True
            log.append((self.offset, default_val))

        def set_value(self, value: int) -> None:
            assert self.requested and value in (0, 1)
            log.append((self.offset, value))

        def release(self) -> None:
            self.requested = False

    class Chip:
        closed = False

        def __init__(self, path: str, open_mode: int = 0) -> None:
            if fail_open:
                raise OSError(2, "No such file or directory")
            assert path == "/dev/gpiochip0"

        def get_line(self, offset: int) -> Line:
            return Line(offset)

        def close(self) -> None:
            Chip.closed = True

    LINE_REQ_DIR_OUT = 3
    return types.SimpleNamespace(Chip=Chip, LINE_REQ_DIR_OUT=LINE_REQ_DIR_OUT, __version__="1.6.3")


def v2_module(log: list[tuple[int, int]]) -> Any:
    class Direction:
        OUTPUT = "output"

    class Value:
        ACTIVE, INACTIVE = 1, 0

    class LineSettings:
        def __init__(self, *, direction: str = "as-is", output_value: int = 0) -> None:
            self.direction, self.output_value = direction, output_value

    class Request:
        released = False

        def __init__(self, offsets: tuple[int, ...]) -> None:
            self.offsets = offsets

        def set_value(self, offset: int, value: int) -> None:
            assert offset in self.offsets and not self.released
            log.append((offset, value))

        def release(self) -> None:
            self.released = True

    def request_lines(path: str, *, consumer: str, config: dict[tuple[int, ...], LineSettings]) -> Request:
        ((offsets, settings),) = config.items()
        assert path == "/dev/gpiochip0" and settings.direction == Direction.OUTPUT
        log.extend((o, settings.output_value) for o in offsets)
        return Request(offsets)

    return types.SimpleNamespace(request_lines=request_lines, LineSettings=LineSettings,
                                 line=types.SimpleNamespace(Direction=Direction, Value=Value))  # fmt: skip


def shown(outcome: str, event_id: str | None = "e1") -> Shown:
    return Shown(outcome=outcome, reason="OK", message_vi="", message_en="", event_id=event_id, provisional=False)


def last(log: list[tuple[int, int]], line: int) -> int:
    return [v for o, v in log if o == line][-1]


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_admission_opens_the_relay_for_its_time_and_refusal_lights_red(api: str) -> None:
    log: list[tuple[int, int]] = []
    module = v1_module(log) if api == "v1" else v2_module(log)
    out = GpioOutput("/dev/gpiochip0", RELAY, GREEN, RED, 0.2, gpiod=module)
    assert sorted(log) == [(RELAY, 0), (RED, 0), (GREEN, 0)]  # every line starts off: the gate is closed
    out.show(shown("admitted"))
    assert (last(log, RELAY), last(log, GREEN), last(log, RED)) == (1, 1, 0)
    time.sleep(0.4)
    assert last(log, RELAY) == 0  # closed again after relay_seconds
    out.show(shown("refused"))
    assert (last(log, RELAY), last(log, GREEN), last(log, RED)) == (0, 0, 1)
    out.show(shown("admitted", event_id=None))  # not durable: never opens
    assert last(log, RELAY) == 0 and last(log, RED) == 1
    out.close()
    assert all(last(log, line) == 0 for line in (RELAY, GREEN, RED))


def test_unknown_binding_and_missing_chip_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"neither libgpiod 1\.x nor 2\.x"):
        GpioOutput("/dev/gpiochip0", RELAY, GREEN, RED, 1.0, gpiod=types.SimpleNamespace(__version__="0.1"))
    with pytest.raises(GateAgentError, match="cannot open GPIO chip /dev/gpiochip0"):
        GpioOutput("/dev/gpiochip0", RELAY, GREEN, RED, 1.0, gpiod=v1_module([], fail_open=True))
