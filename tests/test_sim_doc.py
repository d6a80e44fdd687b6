"""docs/sim.md's worked example, run as written: reader, broker, card, module, scanner, daemon and hub as
background shells (free ports substituted through the environment), then a scan; the check-in must reach
the hub.  Every block is bounded; every process group is stopped by the PID it was started with."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.infra.net import free_port

pytestmark = [pytest.mark.pcscd, pytest.mark.broker, pytest.mark.pty, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "sim.md"
MARKER = re.compile(r"^# doc-test: (?P<name>[\w-]+) (?P<mode>run|background)(?: ready: (?P<ready>.+))?$")


@dataclass
class Block:
    name: str
    mode: str
    ready: str | None
    script: str


def doc_blocks(text: str) -> list[Block]:
    """The fenced ``sh`` blocks whose first line is a ``# doc-test:`` marker, in document order."""
    blocks = []
    for body in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        first, _, rest = body.partition("\n")
        match = MARKER.match(first)
        if match:
            blocks.append(Block(match["name"], match["mode"], match["ready"], rest))
    return blocks


def test_doc_blocks_are_well_formed() -> None:
    blocks = doc_blocks(DOC.read_text())
    names = [b.name for b in blocks]
    assert names == ["reader", "broker", "card", "finger", "scanner", "config", "daemon", "hub", "scan"]
    assert all(b.ready for b in blocks if b.mode == "background")
    assert len(set(names)) == len(names)


def _wait_ready(block: Block, proc: subprocess.Popen[bytes], env: dict[str, str], log: Path, timeout: float) -> None:
    assert block.ready is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{block.name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        check = subprocess.run(["bash", "-c", block.ready], env=env, capture_output=True, timeout=10)
        if check.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{block.name} not ready after {timeout} s ({block.ready}):\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group this test started (its leader's PID), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def test_worked_example_checks_in_at_the_hub(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "WORK": str(work),
        "VPCD_PORT": str(free_port(2)),
        "MQTT_PORT": str(free_port()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PCSCLITE_CSOCK_NAME", None)  # the daemon's block takes it from the reader's environment file
    running: list[subprocess.Popen[bytes]] = []
    try:
        for block in doc_blocks(DOC.read_text()):
            log = logs / f"{block.name}.log"
            with log.open("wb") as out:
                if block.mode == "run":
                    done = subprocess.run(["bash", "-euc", block.script], env=env, cwd=ROOT, stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
                    assert done.returncode == 0, f"{block.name}:\n{log.read_text()[-3000:]}"
                    continue
                proc = subprocess.Popen(["bash", "-euc", block.script], env=env, cwd=ROOT, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)  # fmt: skip
            running.append(proc)
            _wait_ready(block, proc, env, log, 60)

        hub_out = work / "hub.out"
        deadline = time.monotonic() + 120
        stored: list[str] = []
        while time.monotonic() < deadline and not stored:
            stored = [line for line in hub_out.read_text().splitlines() if line.startswith("stored checkin gate-1")]
            time.sleep(0.3)
        daemon_log = (logs / "daemon.log").read_text()[-3000:]
        assert stored, f"no check-in reached the hub; daemon:\n{daemon_log}"
        assert re.fullmatch(r"stored checkin gate-1 seq \d+ id \S+ \w+", stored[0])
        outcome = stored[0].rsplit(" ", 1)[1]
        assert outcome == "admitted", f"{stored[0]}\n{daemon_log}"
        shown = (work / "outcomes.jsonl").read_text()
        assert '"admitted"' in shown
    finally:
        for proc in reversed(running):
            _stop(proc)
    assert all(p.returncode is not None for p in running)
