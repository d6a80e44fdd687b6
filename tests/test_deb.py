"""The Debian package, as an installer gets it: built from this tree, installed by dpkg into a scratch root.

The package is built once per test session (debian/build-deb, about 40 s) and installed with
``dpkg --root`` and chrootless maintainer scripts (they honour ``DPKG_ROOT``, as Debian's
convention asks), so nothing lands on this machine's own /usr or /etc.  The installed unit is
verified by systemd itself, and the installed ``gate-agent`` (its own interpreter and venv, no
source tree on the path) checks the shipped config and runs the doctor against the simulator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.infra.mosquitto import Mosquitto
from sim.infra.pcscd import Pcscd

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parent.parent
PREFIX = "usr/lib/gate-agent"


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([str(SRC / "debian" / "build-deb"), str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    (built,) = out.glob("gate-agent_*.deb")
    return built


def dpkg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends", "--force-not-root",
           "--force-confold", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def scratch_root(path: Path) -> Path:
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (path / d).mkdir(parents=True, exist_ok=True)
    (path / "var/lib/dpkg/status").touch()
    return path


def install(root: Path, deb: Path) -> None:
    res = dpkg(root, "-i", str(deb))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="session")
def installed(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = scratch_root(tmp_path_factory.mktemp("root"))
    install(root, deb)
    return root


def gate_agent(root: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """The installed console script under the installed interpreter (its shebang names the final path)."""
    clean = {k: v for k, v in (env or os.environ).items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    cmd = [str(root / PREFIX / "bin" / "python"), str(root / "usr/bin/gate-agent"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=clean, cwd=cwd or root)


def test_package_metadata_and_contents(deb: Path) -> None:
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line and not line.startswith(" "))
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    assert fields["Package"] == "gate-agent" and fields["Architecture"] == arch
    assert deb.name == f"gate-agent_{fields['Version']}_{arch}.deb"
    assert "python3 (>= 3.11)" in fields["Depends"] and "pcscd" in fields["Depends"]
    assert "python3-libgpiod" in fields["Suggests"] and "cage" in fields["Suggests"]
    assert {"python3-gi", "gir1.2-fprint-2.0"} <= set(fields["Recommends"].split(", "))  # a USB sensor
    control = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True, check=True)
    assert control.stdout.split() == ["/etc/gate-agent/agent.toml"]
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[5].removeprefix(".") for line in listing.splitlines()}
    for want in ("/usr/bin/gate-agent", "/lib/systemd/system/gate-agent.service", "/etc/gate-agent/agent.toml",
                 "/lib/systemd/system/gate-agent-kiosk.service",
                 f"/{PREFIX}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages/agent/kiosk/static/index.html",
                 f"/{PREFIX}/share/gate-agent/firmware_profiles/r503.toml", "/usr/share/doc/gate-agent/install.md"):
        assert want in paths, want
    assert [p for p in paths if p.endswith("/site-packages/afis/_native/libafis_lfs.so")], "the NBIS matcher"
    assert not [p for p in paths if "/site-packages/sim/" in p], "the simulator is not shipped"
    assert not [p for p in paths if p.endswith(".pyc")], "compiled at install, not shipped"


def test_installed_tree_owns_no_build_paths_and_state_is_made(installed: Path) -> None:
    assert os.readlink(installed / "usr/bin/gate-agent") == "../lib/gate-agent/bin/gate-agent"
    assert (installed / PREFIX / "bin/gate-agent").read_text().startswith(f"#!/{PREFIX}/bin/python")
    assert (installed / "var/lib/gate-agent/trust").is_dir()  # postinst
    assert list((installed / PREFIX).rglob("*.pyc")), "postinst compiles the Python files"
    conf = (installed / "etc/gate-agent/agent.toml").read_text()
    assert conf == (SRC / "docs" / "agent.example.toml").read_text()


def test_installed_agent_matches_fingers_on_the_host_and_reaches_libfprint(installed: Path, tmp_path: Path) -> None:
    """The packaged matcher scores a genuine pair above an impostor, and Debian's python3-gi opens libfprint."""
    from agent.bio.matcher import DEFAULT_THRESHOLD
    from sim.finger import synth

    for name, (seed, finger, number) in {"ref": (21, 0, 0), "live": (21, 0, 1), "other": (22, 3, 1)}.items():
        imp = synth.impression(synth.master(seed, finger), number)
        (tmp_path / name).write_bytes(imp.pixels)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from agent.bio import matcher\n"
        "from agent.bio.image import GrayImage\n"
        "assert matcher.available() is None, matcher.available()\n"
        "print(matcher.library_path())\n"
        "m = matcher.NbisMatcher()\n"
        "t = {n: m.extract(GrayImage(256, 288, Path(sys.argv[1], n).read_bytes())) for n in ('ref', 'live', 'other')}\n"
        "print(m.compare(t['live'], t['ref']), m.compare(t['other'], t['ref']))\n"
        "import gi\n"
        "gi.require_version('FPrint', '2.0')\n"
        "from gi.repository import FPrint\n"
        "print(FPrint.Context.__name__)\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GATE_AGENT"))}
    res = subprocess.run([str(installed / PREFIX / "bin" / "python"), "-c", script, str(tmp_path)],
                         capture_output=True, text=True, timeout=60, env=clean, cwd=installed)  # fmt: skip
    assert res.returncode == 0, res.stderr
    library, scores, fprint = res.stdout.splitlines()
    assert library.startswith(str(installed / PREFIX)), "the package's own build, not the developer's"
    genuine, impostor = map(int, scores.split())
    assert genuine >= DEFAULT_THRESHOLD > impostor
    assert fprint == "Context"


def test_installed_unit_passes_systemd_analyze_verify(installed: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze comes with systemd (./run setup installs it)"
    # the base system the package lands on: its units (sysinit.target ...) and /bin/kill (ExecReload)
    root = tmp_path / "root"
    shutil.copytree(installed, root, symlinks=True)
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy2("/bin/kill", root / "bin/kill")
    unit = root / "lib/systemd/system/gate-agent.service"
    res = subprocess.run([analyze, "verify", f"--root={root}", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
    # the check has teeth: without the binary it fails, as the issue saw with /usr/local/bin
    (root / "usr/bin/gate-agent").unlink()
    res = subprocess.run([analyze, "verify", f"--root={root}", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "/usr/bin/gate-agent" in res.stderr


def test_installed_kiosk_unit_verifies_and_is_not_enabled(installed: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze
    root = tmp_path / "root"
    shutil.copytree(installed, root, symlinks=True)
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    (root / "bin").mkdir(exist_ok=True)
    for tool in ("/bin/kill", "/bin/rm"):
        shutil.copy2(tool, root / tool.lstrip("/"))
    # cage (the compositor) comes with the terminal's display, not with this machine: a stand-in executable
    (root / "usr/bin/cage").write_text("#!/bin/sh\n")
    (root / "usr/bin/cage").chmod(0o755)
    unit = root / "lib/systemd/system/gate-agent-kiosk.service"
    res = subprocess.run([analyze, "verify", f"--root={root}", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Requires=gate-agent.service" in unit.read_text()
    assert not list((root / "etc/systemd").rglob("gate-agent-kiosk.service")), "installed, not enabled"


def installer_config(root: Path, tmp_path: Path, extra: str = "") -> Path:
    """The shipped config as an installer edits it: the identity set; the state directory is the scratch root's."""
    text = (root / "etc/gate-agent/agent.toml").read_text()
    text = text.replace('# facility_id = "01001"', 'facility_id = "01001"').replace(
        '# terminal_id = "gate-1"', 'terminal_id = "gate-1"'
    )
    text = text.replace('state_dir = "/var/lib/gate-agent"', f'state_dir = "{root}/var/lib/gate-agent"')
    path = tmp_path / "agent.toml"
    path.write_text(text + extra)
    return path


def test_installed_config_check(installed: Path, tmp_path: Path) -> None:
    version = gate_agent(installed, "--version")
    assert version.returncode == 0 and version.stdout.startswith("gate-agent ")
    shipped = gate_agent(installed, "config", "check", "--config", str(installed / "etc/gate-agent/agent.toml"))
    assert shipped.returncode == 2 and "terminal.facility_id: required key is missing" in shipped.stderr
    edited = installer_config(installed, tmp_path)
    ok = gate_agent(installed, "config", "check", "--config", str(edited), "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["effective"]["reader"]["trust_dir"] == f"{installed}/var/lib/gate-agent/trust"
    # the device profiles come with the package (a pip install used to drop them)
    text = edited.read_text().replace('profile = "r307"', 'profile = "r503"')
    edited.write_text(text.replace("enabled = false", 'enabled = true\nurl = "/dev/ttyUSB0"', 1))
    assert gate_agent(installed, "config", "check", "--config", str(edited)).returncode == 0
    probe = gate_agent(installed, "finger", "--help")
    assert probe.returncode == 0


def test_conffile_kept_state_kept_on_remove_and_purged(deb: Path, tmp_path: Path) -> None:
    root = scratch_root(tmp_path / "root")
    install(root, deb)
    conf = root / "etc/gate-agent/agent.toml"
    conf.write_text(conf.read_text().replace('# facility_id = "01001"', 'facility_id = "79001"'))
    (root / "var/lib/gate-agent/queue").mkdir()
    (root / "var/lib/gate-agent/queue/segment").write_bytes(b"events")
    install(root, deb)  # reinstall / upgrade: the administrator's config stays
    assert 'facility_id = "79001"' in conf.read_text()
    res = dpkg(root, "-r", "gate-agent")
    assert res.returncode == 0, res.stderr
    assert not (root / "usr/bin/gate-agent").exists() and not (root / PREFIX).exists()
    assert (root / "var/lib/gate-agent/queue/segment").read_bytes() == b"events"  # remove keeps the state
    assert 'facility_id = "79001"' in conf.read_text()  # and the config
    res = dpkg(root, "-P", "gate-agent")
    assert res.returncode == 0, res.stderr
    assert not (root / "var/lib/gate-agent").exists() and not (root / "etc/gate-agent").exists()


@pytest.mark.pcscd
@pytest.mark.pty
@pytest.mark.broker
def test_installed_doctor_against_the_simulator(installed: Path, tmp_path: Path, pcscd: Pcscd,
                                                mosquitto: Mosquitto) -> None:  # fmt: skip
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from sim.card import build_card
    from sim.card.eac import eac_pki
    from sim.finger.module import PROFILES, PtyModule, SimModule

    state = tmp_path / "state"
    (state / "trust").mkdir(parents=True)
    build_card("cccd", seed=7).write_trust(str(state / "trust"))
    credentials = eac_pki(0).write_credentials(state / "terminal")
    hub = ed25519.Ed25519PrivateKey.generate().public_key()  # the hub key enrolment pins
    (state / "hub.pub").write_bytes(hub.public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    module = PtyModule(SimModule(PROFILES["r307"], speed=0), tmp_path / "finger").start()
    try:
        config = installer_config(installed, tmp_path)
        text = config.read_text().replace(f'state_dir = "{installed}/var/lib/gate-agent"', f'state_dir = "{state}"')
        text = text.replace('name = ""', f'name = "{pcscd.reader_names[0]}"', 1)
        text = text.replace('# terminal_credentials = "/var/lib/gate-agent/terminal"',
                            f'terminal_credentials = "{credentials}"')  # fmt: skip
        text = text.replace("enabled = false", f'enabled = true\nurl = "{tmp_path / "finger"}"', 1)
        text = text.replace('# broker_urls = ["mqtts://hub.clinic.lan:8883"]', f'broker_urls = ["{mosquitto.url}"]')
        text = text.replace("allow_plaintext = false", "allow_plaintext = true")  # the test broker has no TLS
        config.write_text(text)
        res = gate_agent(installed, "doctor", "--config", str(config), "--json", env={**os.environ, **pcscd.env})
    finally:
        module.stop()
    report = json.loads(res.stdout)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert res.returncode == 0 and report["ok"] is True, report
    for name in ("disk space", "queue", "pcscd", "reader", "fingerprint module", "trust anchors",
                 "terminal credentials", f"broker 127.0.0.1:{mosquitto.port}",
                 f"broker 127.0.0.1:{mosquitto.port} mqtt", "hub key"):  # fmt: skip
        assert statuses.get(name) == "ok", (name, report)


def test_source_tree_scripts_are_valid_shell() -> None:
    for script in ("postinst", "prerm", "postrm", "build-deb"):
        res = subprocess.run(["sh" if script != "build-deb" else "bash", "-n", str(SRC / "debian" / script)],
                             capture_output=True, text=True)  # fmt: skip
        assert res.returncode == 0, (script, res.stderr)
    assert sys.version_info >= (3, 11)
