"""The real daemon serves the kiosk page: faults as they are, a desk entry's outcome on it, a reload keeps it up."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent.app.attendant import send
from agent.app.outputs import MultiOutput
from agent.app.wiring import build_outputs, close_outputs
from agent.config import parse_config
from agent.kiosk.output import KioskOutput
from agent.kiosk.speech import SpeechOutput
from sim.infra.net import free_port
from tests.daemon_harness import readerless_daemon_config, start_daemon, stop_daemon

pytestmark = pytest.mark.slow
ID_NUMBER = "001090012345"


def state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "state", timeout=5) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


def wait_state(url: str, check: Any, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = state(url)
            if check(last):
                return last
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the page never got there: {last}")


def test_daemon_serves_the_page_with_its_faults_and_outcomes(tmp_path: Path) -> None:
    port = free_port()
    config, env = readerless_daemon_config(tmp_path, f"""[outputs]
kinds = ["log", "kiosk"]
kiosk_port = {port}
kiosk_hold = 30.0
""")
    daemon = start_daemon(config, env)  # no pcscd: no reader
    url = f"http://127.0.0.1:{port}/"
    try:
        idle = wait_state(url, lambda s: {f["code"] for f in s.get("faults", [])} == {"reader", "offline"})
        assert idle["kind"] == "idle" and idle["masked_id"] is None
        answer = send(tmp_path / "state" / "attendant.sock", {"id_number": ID_NUMBER, "no_card": True})
        assert answer["ok"], answer
        shown = wait_state(url, lambda s: s["kind"] == "outcome")
        assert (shown["code"], shown["tone"], shown["masked_id"]) == ("admitted_provisional", "amber", "001******345")
        assert ID_NUMBER not in json.dumps(shown)
        daemon.send_signal(signal.SIGHUP)  # a reload keeps the page (same address) and what it shows
        time.sleep(1.0)
        assert state(url)["seq"] >= shown["seq"] and state(url)["kind"] == "outcome"
    finally:
        code, err = stop_daemon(daemon)
    assert code == 0, err[-3000:]
    assert "config reloaded from" in err  # the SIGHUP above was applied, the page kept through it
    assert ID_NUMBER not in err
    with pytest.raises(OSError):
        state(url)  # the page goes with the daemon


def test_reload_reuses_the_kiosk_and_replaces_speech() -> None:
    base = {"terminal": {"facility_id": "1", "terminal_id": "g"}}
    cfg = parse_config({**base, "outputs": {"kinds": ["kiosk"], "kiosk_port": 0, "speech": "espeak"}})
    first = build_outputs(cfg)
    kiosk = next(o for o in first.outputs if isinstance(o, KioskOutput))
    speech = next(o for o in first.outputs if isinstance(o, SpeechOutput))
    second = build_outputs(parse_config({**base, "outputs": {"kinds": ["kiosk"], "kiosk_port": 0, "kiosk_hold": 3.0}}),
                           first)  # fmt: skip
    try:
        assert second.outputs == [kiosk] and kiosk.model.hold == 3.0
        assert speech.mode == "espeak" and not any(isinstance(o, SpeechOutput) for o in second.outputs)
        third = build_outputs(parse_config({**base, "outputs": {"kinds": ["log"]}}), second)
        assert not any(isinstance(o, KioskOutput) for o in third.outputs)
        with pytest.raises(OSError):
            state(kiosk.url)  # closed when the config dropped it
    finally:
        close_outputs(MultiOutput([kiosk]))


class Holder:
    """An output that holds something (as the GPIO relay holds its lines) and says when it lets go."""

    def __init__(self) -> None:
        self.closed = 0

    def show(self, shown: object) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


def test_a_reload_and_a_stop_let_go_of_every_output_that_holds_something() -> None:
    base = {"terminal": {"facility_id": "1", "terminal_id": "g"}}
    relay = Holder()
    fresh = build_outputs(parse_config({**base, "outputs": {"kinds": ["log"]}}), MultiOutput([relay]))  # type: ignore[list-item]
    assert relay.closed == 1  # before the new outputs ask for the same lines
    other = Holder()
    close_outputs(MultiOutput([*fresh.outputs, other]))  # type: ignore[list-item]
    assert other.closed == 1  # at shutdown: the relay drops, the gate closes
