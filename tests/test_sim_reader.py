"""``python -m sim reader``: a private pcscd a developer can use from other shells."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.infra.net import wait_for
from tests.sim_procs import card_port_flag, child, sim

pytestmark = [pytest.mark.pcscd, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_reader_card_and_gate_agent_read(tmp_path: Path) -> None:
    with child(sim("reader", "--json", "--workdir", str(tmp_path / "pcscd")), stderr_path=tmp_path / "r.err") as reader:
        info = reader.read_json(30)
        assert info["event"] == "ready" and info["private"]
        assert set(info["env"]) == {"PCSCLITE_CSOCK_NAME"} and Path(info["env"]["PCSCLITE_CSOCK_NAME"]).exists()
        assert len(info["readers"]) == 2 and info["vpcd_ports"][1] == info["vpcd_ports"][0] + 1
        with child(sim("card", "--seed", "12", card_port_flag(), str(info["vpcd_ports"][0]),
                       "--trust-out", str(tmp_path / "trust")), stderr_path=tmp_path / "c.err") as card:  # fmt: skip
            ready = card.read_json(60)
            person = ready["person"]
            birth = dt.date.fromisoformat(person["birth"]).strftime("%d%m%Y")
            res = subprocess.run(
                [sys.executable, "-m", "agent", "read", "--reader", info["readers"][0], "--id-number",
                 person["id_number"], "--birth", birth, "--trust", str(tmp_path / "trust"), "--wait", "15", "--json"],
                env={**os.environ, **info["env"]}, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert res.returncode == 0, res.stderr[-2000:]
            assert person["id_number"] in res.stdout
        pid = int(info["pid"])
        assert _alive(pid)
        assert reader.stop() == 0  # SIGTERM: stops its pcscd and exits cleanly
    assert not _alive(pid)


def test_reader_prints_shell_exports(tmp_path: Path) -> None:
    env_file = tmp_path / "reader.env"
    argv = sim("reader", "--workdir", str(tmp_path / "pcscd"), "--env-file", str(env_file))
    with child(argv, stderr_path=tmp_path / "r.err") as reader:
        lines = [reader.readline(30) for _ in range(5)]
        exports = dict(re.findall(r"^export (\w+)=(.*)$", "\n".join(lines), re.M))
        assert exports["PCSCLITE_CSOCK_NAME"].endswith("pcscd.comm")
        assert int(exports["GATE_SIM_VPCD_PORT1"]) == int(exports["GATE_SIM_VPCD_PORT0"]) + 1
        tail = reader.wait_for(lambda line: line.startswith("# plug a card"), 5)
        assert f"{card_port_flag()} {exports['GATE_SIM_VPCD_PORT0']}" in tail
        wait_for(env_file.exists, 5, "the environment file")
        sourced = subprocess.run(["bash", "-c", f'. "{env_file}" && echo "$PCSCLITE_CSOCK_NAME $GATE_SIM_READER0"'],
                                 capture_output=True, text=True, timeout=10)  # fmt: skip
        assert sourced.stdout.strip() == f"{exports['PCSCLITE_CSOCK_NAME']} Gate Sim Reader 00 00"
        assert reader.stop(sig=2) == 0  # Ctrl-C
    assert not env_file.exists()


def test_shell_lines_are_quoted() -> None:
    from sim.commands.reader import render

    info = {"env": {"PCSCLITE_CSOCK_NAME": "/x y/pcscd.comm"}, "readers": ["R 00 00", "R 00 01"], "vpcd_ports": [5, 6]}
    text = render(info)
    assert "export PCSCLITE_CSOCK_NAME='/x y/pcscd.comm'" in text
    assert "GATE_SIM_READER0='R 00 00'" in text
