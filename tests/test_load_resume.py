"""kill -9 of the agent's queue + uplink at random moments: resumed, every event reaches the hub exactly once."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.uplink.events import load_signing_key
from agent.uplink.hubmsg import public_pem
from sim.hub.hub import Hub
from sim.infra.mosquitto import Mosquitto

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_kill_9_and_resume(tmp_path: Path, mosquitto: Mosquitto) -> None:
    state = tmp_path / "state"
    key = load_signing_key(state / "terminal.key")
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": key.public_key()}).start()
    (state / "hub.pub").write_bytes(public_pem(hub.signing_key.public_key()))  # pinned, as at enrolment
    assert hub.connected.wait(10)
    total = 400
    cmd = [sys.executable, "-m", "sim", "load", "--terminal", "gate-1", "--events", str(total),
           "--broker", mosquitto.url, "--state", str(state), "--rate", "400"]  # fmt: skip
    rng = random.Random(7)
    try:
        for _ in range(3):
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.4, 1.0))
            proc.send_signal(signal.SIGKILL)  # a power cut, as far as the process can tell
            proc.wait(10)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.splitlines()[-1])
        assert result["event"] == "done" and result["made"] == total and result["pending"] == 0
        deadline = time.monotonic() + 10
        while hub.count() < total and time.monotonic() < deadline:
            time.sleep(0.05)
        events = hub.events()
        assert len(events) == total  # after dedup: each event exactly once
        assert sorted(e["seq"] for e in events) == list(range(1, total + 1))  # no gap, no sequence reused
    finally:
        hub.stop()
