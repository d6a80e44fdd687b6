"""The shipped systemd unit: verified by systemd itself, with the hardening the terminal relies on."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "gate-agent.service"


def service_section() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of systemd, which every Debian terminal runs"
    gate_agent = Path(sys.executable).with_name("gate-agent")
    text = UNIT.read_text().replace("/usr/bin/gate-agent", str(gate_agent))  # the package's path (test_deb)
    unit = tmp_path / "gate-agent.service"
    unit.write_text(text)
    res = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


def test_unit_is_notify_with_watchdog_and_hardening() -> None:
    s = service_section()
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"]
    assert int(s["WatchdogSec"][0]) > 0
    # the package's system user (postinst), not a dynamic one: files in /etc/gate-agent/tls are group-readable to it
    assert s["User"] == ["gate-agent"] and s["Group"] == ["gate-agent"] and "DynamicUser" not in s
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"] and s["RemoveIPC"] == ["yes"]
    assert s["ExecStart"] == ["/usr/bin/gate-agent run --config /etc/gate-agent/agent.toml"]
    assert s["StateDirectory"] == ["gate-agent"] and s["SupplementaryGroups"] == ["dialout"]
    assert "char-ttyUSB rw" in s["DeviceAllow"]
    assert all("*" not in d for d in s["DeviceAllow"])  # DeviceAllow takes no globs
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_unit_parses_as_ini() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert parser.sections() == ["Unit", "Service", "Install"]
