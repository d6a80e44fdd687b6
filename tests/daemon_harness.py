"""A real `gate-agent run` daemon for end-to-end tests: its config, starting and stopping it, its outcomes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sim.card import SimulatedCard
from sim.card.vpcd import VpcdPlug
from sim.hub.hub import Hub
from sim.scanner import PtyScanner, scan_text
from tests.card_fixtures import wait_for_card


def outcomes(path: Path) -> list[dict[str, Any]]:
    """The outcomes the recorder output has written so far (JSON lines)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_outcome(path: Path, count: int, timeout: float = 30) -> dict[str, Any]:
    """The ``count``-th outcome (1-based), waiting up to ``timeout`` seconds for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = outcomes(path)
        if len(got) >= count:
            return got[count - 1]
        time.sleep(0.05)
    raise AssertionError(f"no outcome #{count} within {timeout} s: {outcomes(path)}")


def gate_config(
    *,
    state: Path,
    reader: str,
    trust: Path,
    qr: Path,
    recorder: Path,
    broker_url: str,
    reader_extra: str = "",
    timeouts_extra: str = "",
    sections: str = "",
) -> str:
    """agent.toml for gate-1 of facility 01001: a reader, a QR scanner, the recorder output, a plaintext broker.

    ``reader_extra`` and ``timeouts_extra`` are lines added to [reader] and [timeouts]; ``sections`` whole sections.
    """
    return f"""
[terminal]
facility_id = "01001"
terminal_id = "gate-1"
state_dir = "{state}"
[reader]
name = "{reader}"
trust_dir = "{trust}"
{reader_extra}
{sections}
[scanners]
qr_url = "{qr}"
[timeouts]
{timeouts_extra}
card_removal = 5.0
[outputs]
kinds = ["log", "recorder"]
recorder_path = "{recorder}"
[uplink]
broker_urls = ["{broker_url}"]
allow_plaintext = true
backoff_min = 0.2
backoff_max = 1.0
"""


def start_daemon(config: Path, env: Mapping[str, str], log: Path | None = None) -> subprocess.Popen[str]:
    """`gate-agent run --config config` with ``env`` added to this environment; stderr is captured, or written
    to ``log`` (a test that reads the log while the daemon runs; a pipe nobody reads could fill and block it)."""
    if log is None:
        return subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config)],
                                env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)  # fmt: skip
    with log.open("w") as sink:
        return subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config)],
                                env={**os.environ, **env}, stderr=sink, text=True)  # fmt: skip


def stop_daemon(daemon: subprocess.Popen[str], log: Path | None = None) -> tuple[int, str]:
    """SIGTERM, wait up to 20 s (killed if still alive), and return its exit code and stderr (or ``log``)."""
    daemon.send_signal(signal.SIGTERM)
    try:
        code = daemon.wait(20)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    if log is not None:
        return code, log.read_text()
    err = daemon.stderr.read() if daemon.stderr else ""
    return code, err


def apply_eligibility(hub: Hub, terminal: str, records: Iterable[Mapping[str, Any]], timeout: float = 20) -> None:
    """The hub pushes its eligibility data until the terminal says it applied it."""
    rows = list(records)
    deadline = time.monotonic() + timeout
    result = None
    while result is None and time.monotonic() < deadline:
        cid = hub.push_eligibility(terminal, rows, dt.datetime.now(dt.UTC).isoformat())
        result = hub.wait_result(cid, 2)
    assert result is not None and result["ok"], result


def readerless_daemon_config(tmp_path: Path, sections: str) -> tuple[Path, dict[str, str]]:
    """A gate config with no reader and no pcscd (the daemon runs, the reader is a fault) plus ``sections``
    (TOML tables), and the environment that points PC/SC at a socket nobody serves."""
    (tmp_path / "trust").mkdir(exist_ok=True)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[terminal]
facility_id = "01001"
terminal_id = "gate-1"
state_dir = "{tmp_path / "state"}"
[reader]
name = "No Such Reader"
trust_dir = "{tmp_path / "trust"}"
{sections}""")
    return config, {"PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.sock")}


def present_card(plug: VpcdPlug, reader: str, scanner: PtyScanner, card: SimulatedCard, recorder: Path,
                 n: int) -> dict[str, Any]:  # fmt: skip
    """A patient at the gate: the card on the reader, its QR on the scanner, the ``n``-th outcome shown (returned),
    the card taken away."""
    plug.insert(card)
    wait_for_card(reader)
    scanner.emit(scan_text(card.person, "qr"))
    shown = wait_outcome(recorder, n)
    plug.remove()
    wait_for_card(reader, present=False)
    return shown
