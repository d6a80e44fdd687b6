"""Hub workers sharing one subscription on a real mosquitto: the load is shared, a killed worker is taken over.

Two ``python -m sim hub --share`` processes (one database, one signing key) consume
the facility's events through MQTT 5 shared subscriptions; three terminals (the real
queue and uplink) publish while one worker is killed with SIGKILL.  What the broker
had handed the dead worker is lost with it, so the terminals send it again after
their ack timeout: every event must reach the database exactly once, and leave its
terminal's queue.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.uplink.hubmsg import load_or_create_private_key, public_pem
from sim.fleet import FleetTerminal
from sim.infra.mosquitto import Mosquitto
from tests.sim_procs import Child, sim

pytestmark = [pytest.mark.broker, pytest.mark.slow]

TERMINALS = ("gate-1", "gate-2", "gate-3")


def stored_ids(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return [(str(t), str(i)) for t, i in conn.execute("SELECT terminal, id FROM events")]


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[list[FleetTerminal], list[Child], Path]]:
    hub_key = load_or_create_private_key(tmp_path / "hub.key")
    keys = tmp_path / "keys"
    keys.mkdir()
    terminals = [FleetTerminal(tmp_path / "t", name, [mosquitto.url], hub_key.public_key(), ack_timeout=2.0,
                               inflight=64) for name in TERMINALS]  # fmt: skip
    for terminal in terminals:
        (keys / f"{terminal.name}.pub").write_bytes(public_pem(terminal.public_key))
    db = tmp_path / "hub.db"
    workers = []
    try:
        for n in range(2):
            worker = Child(sim("hub", "--broker", mosquitto.url, "--db", str(db), "--keys", str(keys), "--hub-key",
                               str(tmp_path / "hub.key"), "--share", "hubs"),
                           stderr_path=tmp_path / f"worker-{n}.log")  # fmt: skip
            workers.append(worker)
            assert worker.read_json(30)["event"] == "ready"
        for terminal in terminals:
            terminal.start()
        yield terminals, workers, db
    finally:
        for terminal in terminals:
            terminal.stop()
        for worker in workers:
            worker.stop()


def test_two_hub_workers_share_the_load_and_one_takes_over_when_the_other_is_killed(
    fleet: tuple[list[FleetTerminal], list[Child], Path],
) -> None:
    terminals, workers, db = fleet
    stop = threading.Event()

    def publish(terminal: FleetTerminal) -> None:
        for _ in range(60):  # 60 events each, 20 a second
            if stop.is_set():
                return
            terminal.emit(1)
            time.sleep(0.05)

    threads = [threading.Thread(target=publish, args=(t,)) for t in terminals]
    for thread in threads:
        thread.start()
    try:
        # both workers store events before one dies: the broker shares the subscription between them
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(sum(1 for s in w.seen if s.startswith("stored")) >= 5
                                                      for w in workers):  # fmt: skip
            for worker in workers:
                try:
                    worker.readline(0.1)
                except AssertionError:
                    pass
        counts = [sum(1 for s in w.seen if s.startswith("stored")) for w in workers]
        assert min(counts) >= 5, f"the load was not shared: {counts}"
        assert workers[0].stop(signal.SIGKILL) == -signal.SIGKILL
        at_kill = len(stored_ids(db))
        assert at_kill < 150  # most of the events come after the kill: the other worker must take them
    finally:
        for thread in threads:
            thread.join(30)
        stop.set()
    everything = {(t.name, i) for t in terminals for i in t.ids}
    assert len(everything) == 180
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (sum(len(t.queue) for t in terminals) or len(stored_ids(db)) < 180):
        time.sleep(0.2)
    rows = stored_ids(db)
    assert len(rows) == len(set(rows)) == 180  # each stored once
    assert set(rows) == everything  # none lost
    assert all(len(t.queue) == 0 for t in terminals)  # and every terminal got its acks
