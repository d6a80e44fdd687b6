"""The daemon's life with an in-process runtime: sd_notify, watchdog, heartbeats, reload, stop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.app.attendant import send, trigger_from_request
from agent.app.eligibility import EligibilityCache, EligibilityChain
from agent.app.flow import CheckinFlow
from agent.app.outputs import MemoryOutput
from agent.app.policy import Policy
from agent.app.ports import KeysEntered, ManualEntry, Trigger
from agent.app.sdnotify import Notifier
from agent.app.sources import AttendantSocket
from agent.app.wiring import Runtime
from agent.card.errors import InputError
from agent.config import Config
from agent.daemon import Daemon
from agent.errors import GateAgentError
from tests.flow_fakes import FakeReader, MemorySink

CONFIG = """
[terminal]
facility_id = "01001"
terminal_id = "gate-7"
state_dir = "{state}"
[timeouts]
keys = 0.5
"""


class Publisher:
    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []

    def publish_status(self, status: dict[str, Any]) -> None:
        self.statuses.append(status)


class Source:
    name = "probe"

    def __init__(self) -> None:
        self.submit: Callable[[Trigger], None] | None = None
        self.stopped = False

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self.submit = submit

    def stop(self) -> None:
        self.stopped = True

    def state(self) -> str:
        return "ok"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Any:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield path, sock
    sock.close()


def build_daemon(tmp_path: Path, notify: Path) -> tuple[Daemon, Source, Publisher, MemorySink, list[Config]]:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state"))
    source, publisher, sink, reloaded = Source(), Publisher(), MemorySink(), []

    def build(config: Config) -> Runtime:
        flow = CheckinFlow(
            reader=FakeReader(),
            eligibility=EligibilityChain(EligibilityCache()),
            sink=sink,
            output=MemoryOutput(),
            policy=Policy.from_config(config.policy),
            facility_code=config.terminal.facility_id,
        )
        return Runtime(flow, [source], publisher, reconfigure=reloaded.append)

    notifier = Notifier({"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"})
    return Daemon(cfg, build, notifier, heartbeat=0.2), source, publisher, sink, reloaded


def messages(sock: socket.socket, until: str, limit: float = 5.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got.append(sock.recv(4096).decode())
        if until in got[-1]:
            return got
    raise AssertionError(f"{until} never arrived: {got}")


def test_ready_watchdog_heartbeat_checkin_reload_and_stop(tmp_path: Path, notify_socket: Any) -> None:
    path, sock = notify_socket
    daemon, source, publisher, sink, reloaded = build_daemon(tmp_path, path)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        assert messages(sock, "READY=1")[-1].startswith("READY=1")
        messages(sock, "WATCHDOG=1")
        messages(sock, "WATCHDOG=1")  # keeps pinging while idle
        assert source.submit is not None
        source.submit(ManualEntry("001090012345"))
        deadline = time.monotonic() + 5
        while not sink.records and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.records) == 1
        daemon._reload.set()
        messages(sock, "RELOADING=1")
        messages(sock, "serving (reloaded)")  # READY=1 comes after the runtime took the new config
        assert len(reloaded) == 1 and reloaded[0].terminal.terminal_id == "gate-7"
        (tmp_path / "agent.toml").write_text("[terminal]\nfacility_id = 'x y'\n")
        daemon._reload.set()
        assert "reload refused" in messages(sock, "reload refused")[-1]
        assert daemon.config.terminal.terminal_id == "gate-7"  # the old config stays
        time.sleep(0.3)
        status = publisher.statuses[-1]
        assert status["terminal_id"] == "gate-7" and status["checkins"] == 1 and status["devices"] == {"probe": "ok"}
    finally:
        daemon.request_stop()
        thread.join(10)
    assert not thread.is_alive()
    assert source.stopped
    messages(sock, "STOPPING=1")


def test_notifier_is_silent_outside_systemd() -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_interval is None
    assert n.notify("READY=1") is False
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 15.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_attendant_requests(tmp_path: Path) -> None:
    keys = trigger_from_request({"id_number": "001090012345", "birth": "17051990", "issued": "01022021"})
    assert isinstance(keys, KeysEntered) and keys.keys.can == "012345" and len(keys.keys.mrz_keys) == 1
    assert isinstance(trigger_from_request({"id_number": "001090012345", "no_card": True}), ManualEntry)
    for bad, field in [({"id_number": "12"}, "id_number"), ({"id_number": "001090012345"}, "birth")]:
        with pytest.raises(InputError) as err:
            trigger_from_request(bad)
        assert err.value.field == field
    got: list[Trigger] = []
    server = AttendantSocket(tmp_path / "a.sock")
    server.start(got.append)
    try:
        assert send(tmp_path / "a.sock", {"id_number": "001090012345", "no_card": True}) == {"ok": True}
        answer = send(tmp_path / "a.sock", {"id_number": "001090012345", "birth": "31021990"})
        assert answer["ok"] is False and "birth" in answer["error"]
    finally:
        server.stop()
    assert got == [ManualEntry("001090012345")]
    assert not (tmp_path / "a.sock").exists()


def test_heartbeat_period_comes_from_the_uplink_table(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state") + "\n[uplink]\nheartbeat = 7.5\n")
    assert Daemon(cfg).heartbeat == 7.5
    cfg.write_text(CONFIG.format(state=tmp_path / "state"))
    assert Daemon(cfg).heartbeat == 30.0


def test_a_reload_says_which_tables_need_a_restart(tmp_path: Path, notify_socket: Any) -> None:
    """SIGHUP applies [policy], [timeouts] and [outputs]; a changed device or uplink table is named, not ignored."""
    path, sock = notify_socket
    daemon, _source, _publisher, _sink, reloaded = build_daemon(tmp_path, path)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        messages(sock, "READY=1")
        config = tmp_path / "agent.toml"
        config.write_text(config.read_text().replace("keys = 0.5", "keys = 0.5\ncard = 12.0"))
        daemon._reload.set()
        assert "serving (reloaded)" in messages(sock, "serving (reloaded")[-1]  # a live table: nothing to say
        config.write_text(config.read_text().replace('terminal_id = "gate-7"', 'terminal_id = "gate-8"')
                          + '\n[eligibility]\nonline_timeout = 0.5\n')  # fmt: skip
        daemon._reload.set()
        status = messages(sock, "restart needed")[-1]
        assert "restart needed for [terminal], [eligibility]" in status
        assert len(reloaded) == 2 and reloaded[-1].timeouts.card == 12.0
    finally:
        daemon.request_stop()
        thread.join(10)


def test_a_reload_that_cannot_be_applied_is_said_and_the_daemon_serves_on(tmp_path: Path, notify_socket: Any) -> None:
    """A new config that loads but cannot be applied (a port taken, GPIO lines busy) must not end the daemon."""
    path, sock = notify_socket
    daemon, _source, _publisher, _sink, _reloaded = build_daemon(tmp_path, path)
    real = daemon.build

    def build(config: Config) -> Runtime:
        runtime = real(config)

        def refuse(fresh: Config) -> None:
            raise GateAgentError("outputs.kiosk_port: 8080 is taken")

        runtime.reconfigure = refuse
        return runtime

    daemon.build = build
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        messages(sock, "READY=1")
        before = daemon.config
        daemon._reload.set()
        assert "reload failed: outputs.kiosk_port: 8080 is taken" in messages(sock, "reload failed")[-1]
        assert thread.is_alive() and daemon.config is before  # still serving, on the config it runs
    finally:
        daemon.request_stop()
        thread.join(10)
    assert not thread.is_alive()
