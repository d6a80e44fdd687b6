"""``python -m sim fingerprint`` as a background device: stdin closed, commands on a socket or a FIFO,
its model read from the firmware profiles, and ``gate-agent finger`` talking to it over a real pty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.errors import ConfigError
from sim.card.eac import finger_identity
from sim.finger.control import resolve_identity
from sim.finger.module import PROFILES, load_profile, profile_names
from sim.infra.control import send
from sim.population import make_person
from tests.sim_procs import child, sim


def finger(link: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "agent", "finger", *args, "--port", str(link), "--json", "--timeout", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.pty
def test_background_module_with_a_control_socket(tmp_path: Path) -> None:
    link, ctl = tmp_path / "finger", tmp_path / "finger.ctl"
    argv = sim("fingerprint", "--pty-link", str(link), "--control", str(ctl), "--profile", "r503",
               "--finger", "person:12", "--speed", "0")  # fmt: skip
    with child(argv, stdin=subprocess.DEVNULL, stderr_path=tmp_path / "err") as module:
        ready = module.read_json(30)
        assert ready["event"] == "ready" and ready["finger"] == finger_identity(make_person(12).id_number)
        time.sleep(1.0)
        assert module.proc.poll() is None  # end of stdin is not the end of the module

        probe = finger(link, "probe")
        assert probe.returncode == 0, probe.stderr
        assert json.loads(probe.stdout)["capacity"] == 200  # firmware_profiles/r503.toml

        lifted = send(ctl, "lift")
        assert lifted["ok"] and lifted["finger"] is None and lifted["commands"] > 0  # the probe's commands
        none = finger(link, "capture", "--timeout", "0.5")
        assert none.returncode == 1 and "no finger" in json.loads(none.stdout)["error"]
        placed = send(ctl, "place 001090012345:2")
        assert placed["ok"] and placed["finger"] == "001090012345:2"
        assert finger(link, "capture").returncode == 0
        assert send(ctl, "wave")["ok"] is False and "unknown command" in send(ctl, "wave")["error"]
        assert send(ctl, "place")["ok"] is False

        assert module.stop() == 0  # SIGTERM: clean stop
    assert not link.exists() and not ctl.exists()


@pytest.mark.pty
def test_fifo_commands_and_quit(tmp_path: Path) -> None:
    link, fifo = tmp_path / "finger", tmp_path / "finger.in"
    argv = sim("fingerprint", "--pty-link", str(link), "--fifo", str(fifo), "--no-finger", "--speed", "0")
    with child(argv, stdin=subprocess.DEVNULL, stderr_path=tmp_path / "err") as module:
        assert module.read_json(30)["finger"] is None
        for command in ("place person:3", "status"):
            with open(fifo, "w") as fh:  # a shell's `echo ... > FIFO`: open, write, close
                fh.write(command + "\n")
            answer = json.loads(module.readline(10))
            assert answer["ok"] and answer["finger"] == f"{make_person(3).id_number}:2"
        with open(fifo, "w") as fh:
            fh.write("quit\n")
        module.readline(10)
        assert module.proc.wait(10) == 0
    assert not link.exists()


@pytest.mark.pty
def test_interactive_stdin_still_works(tmp_path: Path) -> None:
    link = tmp_path / "finger"
    argv = sim("fingerprint", "--pty-link", str(link), "--finger", "x", "--speed", "0")
    with child(argv, stdin=subprocess.PIPE, stderr_path=tmp_path / "err") as module:
        module.read_json(30)
        assert module.proc.stdin is not None
        module.proc.stdin.write("lift\nquit\n")
        module.proc.stdin.flush()
        assert json.loads(module.readline(10))["finger"] is None
        assert module.proc.wait(10) == 0


def test_identity_format() -> None:
    person = make_person(12)
    assert resolve_identity("person:12") == f"{person.id_number}:2" == finger_identity(person.id_number)
    assert resolve_identity("person:12:7") == f"{person.id_number}:7"
    assert resolve_identity("alice") == "alice"


def test_help_example_matches_a_simulated_card() -> None:
    out = subprocess.run(sim("fingerprint", "--help"), capture_output=True, text=True, timeout=60).stdout
    assert "person:12" in out and "sim card --seed 12" in out and "ID_NUMBER:POSITION" in out


def test_profiles_come_from_the_firmware_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"r307", "r503", "as608", "zfm20"} <= set(profile_names())
    assert load_profile("zfm20").capacity == 162 and load_profile("r503").template_size == 1536
    (tmp_path / "acme.toml").write_text(
        'kind = "fingerprint"\nmodel = "ACME"\nbaud = 115200\naddress = 0x12345678\npassword = 7\n'
        "packet_size = 64\ntemplate_size = 768\ncapacity = 77\ncommand_timeout = 1.0\nslow_timeout = 2.0\n"
        "retries = 2\nfinger_poll = 0.1\n"
    )
    monkeypatch.setenv("GATE_AGENT_PROFILES", str(tmp_path))
    acme = PROFILES["acme"]
    assert (acme.capacity, acme.packet_size, acme.packet_code, acme.baud, acme.address, acme.password) == (
        77, 64, 1, 115200, 0x12345678, 7)  # fmt: skip
    assert "acme" in profile_names()
    with pytest.raises(ConfigError, match="not a fingerprint profile"):
        load_profile("qr-scanner")
    with pytest.raises(KeyError):
        PROFILES["nope"]
    bad = subprocess.run(sim("fingerprint", "--pty-link", str(tmp_path / "f"), "--profile", "nope"),
                         capture_output=True, text=True, timeout=60, env=os.environ)  # fmt: skip
    assert bad.returncode == 2 and "no device profile named 'nope'" in bad.stderr
