"""Enrolment: keys born on the terminal, the hub signs public parts, the terminal pins the hub."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.app import enrol
from agent.card.cvc import load_credentials
from agent.config import load_config
from agent.uplink.hubmsg import fingerprint
from sim.card import shared_pki
from sim.hub.enrol import Authority, EnrolRefused, enroll_terminal, parse_cv_request
from sim.pki import make_pki

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, terminal: str = "gate-1") -> Path:
    state = tmp_path / terminal / "state"
    path = tmp_path / f"{terminal}.toml"
    path.write_text(f"""
[terminal]
facility_id = "01001"
terminal_id = "{terminal}"
state_dir = "{state}"
[reader]
terminal_credentials = "{state / "eac"}"
""")
    return path


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    pki = tmp_path_factory.mktemp("pki")
    make_pki(pki, "01001", [])
    return Authority.load(pki, ed25519.Ed25519PrivateKey.generate(), shared_pki().csca)


def _gate_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)  # fmt: skip


def test_enrolment_round_trip_through_both_command_lines(tmp_path: Path, authority: Authority) -> None:
    config = _config(tmp_path)
    done = _gate_agent("enroll", "--config", str(config), "--out", str(tmp_path / "req"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    request_files = sorted(p.name for p in (tmp_path / "req").iterdir())
    assert request_files == ["gate-1.csr", "gate-1.cvreq", "gate-1.pub"]
    for file in (tmp_path / "req").iterdir():
        assert b"PRIVATE" not in file.read_bytes()
    cfg = load_config(config)
    assert (cfg.state_dir / "tls" / "terminal.key").stat().st_mode & 0o777 == 0o600
    assert (cfg.state_dir / "eac" / "terminal.key").stat().st_mode & 0o777 == 0o600
    holder, _ = parse_cv_request((tmp_path / "req" / "gate-1.cvreq").read_bytes())
    assert holder == summary["holder"] == "VNGATE100001"

    answer = enroll_terminal(tmp_path / "req", "gate-1", authority, tmp_path / "hub-keys", tmp_path / "answer")
    assert (tmp_path / "hub-keys" / "gate-1.pub").read_bytes() == (tmp_path / "req" / "gate-1.pub").read_bytes()
    assert answer["terminal_signing_key_fingerprint"] == summary["signing_key_fingerprint"]

    done = _gate_agent("enroll", "--config", str(config), "--install", str(tmp_path / "answer"), "--json")
    assert done.returncode == 0, done.stderr
    installed = json.loads(done.stdout)
    assert installed["hub_key_fingerprint"] == fingerprint(authority.hub_key.public_key())
    assert installed["hub_key_fingerprint"] == answer["hub_key_fingerprint"]
    assert installed["ml_root_fingerprint"] == answer["ml_root_fingerprint"]
    assert installed["hub_key_pinned"] == "new"
    credentials = load_credentials(cfg.state_dir / "eac")
    assert credentials.grants_dg3 and credentials.terminal.chr == "VNGATE100001"
    assert (cfg.state_dir / "hub.pub").exists() and (cfg.state_dir / "ml-root.pem").exists()
    assert (cfg.state_dir / "tls" / "terminal.crt").exists()

    # a second hub key is not silently accepted
    other = Authority(authority.ca_cert, authority.ca_key, authority.eac, authority.dv_key,
                      ed25519.Ed25519PrivateKey.generate(), authority.ml_root)  # fmt: skip
    enroll_terminal(tmp_path / "req", "gate-1", other, tmp_path / "hub-keys", tmp_path / "answer2")
    tls_before = (cfg.state_dir / "tls" / "terminal.crt").read_bytes()
    done = _gate_agent("enroll", "--config", str(config), "--install", str(tmp_path / "answer2"))
    assert done.returncode != 0 and "--repin" in done.stderr
    assert (cfg.state_dir / "hub.pub").read_bytes() == (tmp_path / "answer" / "hub.pub").read_bytes()
    assert (cfg.state_dir / "tls" / "terminal.crt").read_bytes() == tls_before  # refused whole: nothing half-installed


def test_an_answer_for_another_terminal_does_not_install(tmp_path: Path, authority: Authority) -> None:
    one, two = load_config(_config(tmp_path, "gate-1")), load_config(_config(tmp_path, "gate-2"))
    enrol.request(one, tmp_path / "req1")
    enrol.request(two, tmp_path / "req2")
    enroll_terminal(tmp_path / "req2", "gate-2", authority, tmp_path / "keys", tmp_path / "answer2")
    # gate-2's certificate in a bundle renamed for gate-1: the key does not match
    (tmp_path / "answer2" / "gate-2.crt").rename(tmp_path / "answer2" / "gate-1.crt")
    with pytest.raises(enrol.EnrolError, match="not for this terminal's TLS key"):
        enrol.install(one, tmp_path / "answer2")
    assert not (one.state_dir / "hub.pub").exists()


def test_a_bundle_with_a_private_key_is_refused(tmp_path: Path, authority: Authority) -> None:
    cfg = load_config(_config(tmp_path))
    enrol.request(cfg, tmp_path / "req")
    enroll_terminal(tmp_path / "req", "gate-1", authority, tmp_path / "keys", tmp_path / "answer")
    (tmp_path / "answer" / "terminal.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(enrol.EnrolError, match="private key"):
        enrol.install(cfg, tmp_path / "answer")


def test_the_hub_refuses_requests_without_proof_of_possession(tmp_path: Path, authority: Authority) -> None:
    cfg = load_config(_config(tmp_path))
    enrol.request(cfg, tmp_path / "req")
    cvreq = bytearray((tmp_path / "req" / "gate-1.cvreq").read_bytes())
    cvreq[-5] ^= 0x01  # the inner signature
    (tmp_path / "req" / "gate-1.cvreq").write_bytes(bytes(cvreq))
    with pytest.raises(EnrolRefused, match="proof of possession"):
        enroll_terminal(tmp_path / "req", "gate-1", authority, tmp_path / "keys", tmp_path / "answer")
    enrol.request(cfg, tmp_path / "req")
    for file in (tmp_path / "req").iterdir():  # gate-1's request presented as gate-9's
        file.rename(file.with_name("gate-9" + file.suffix))
    with pytest.raises(EnrolRefused, match="not gate-9"):
        enroll_terminal(tmp_path / "req", "gate-9", authority, tmp_path / "keys", tmp_path / "answer")
    assert not (tmp_path / "keys").exists()


def test_keys_stay_unless_renewed(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    enrol.request(cfg, tmp_path / "req")
    key = (cfg.state_dir / "tls" / "terminal.key").read_bytes()
    signing = (cfg.state_dir / "terminal.key").read_bytes()
    enrol.request(cfg, tmp_path / "req")
    assert (cfg.state_dir / "tls" / "terminal.key").read_bytes() == key
    enrol.request(cfg, tmp_path / "req", renew=True)
    assert (cfg.state_dir / "tls" / "terminal.key").read_bytes() != key
    assert (cfg.state_dir / "terminal.key").read_bytes() == signing  # events stay verifiable


def test_the_hub_command_line_enrols_a_terminal(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    config = _config(tmp_path)
    assert _gate_agent("enroll", "--config", str(config), "--out", str(tmp_path / "req")).returncode == 0
    pki = tmp_path / "pki"
    make_pki(pki, "01001", [])
    (tmp_path / "root.pem").write_bytes(shared_pki().csca.public_bytes(serialization.Encoding.PEM))
    hub = subprocess.run([sys.executable, "-m", "sim", "hub", "enroll", "--terminal", "gate-1", "--request",
                          str(tmp_path / "req"), "--out", str(tmp_path / "answer"), "--pki", str(pki),
                          "--keys", str(tmp_path / "keys"), "--hub-key", str(tmp_path / "hub.key"),
                          "--ml-root", str(tmp_path / "root.pem"), "--json"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert hub.returncode == 0, hub.stderr
    printed = json.loads(hub.stdout)
    done = _gate_agent("enroll", "--config", str(config), "--install", str(tmp_path / "answer"))
    assert done.returncode == 0, done.stderr
    assert printed["hub_key_fingerprint"] in done.stdout  # what the installer compares by eye
    assert (tmp_path / "keys" / "gate-1.pub").exists()


def test_enrolment_with_the_tls_paths_already_in_the_config(tmp_path: Path, authority: Authority) -> None:
    """The installer writes the final agent.toml first: enroll makes the files it names; run needs them."""
    config = _config(tmp_path)
    tls = tmp_path / "etc-tls"
    config.write_text(config.read_text() + f"""
[uplink]
broker_urls = ["mqtts://127.0.0.1:8883"]
tls_ca = "{tls / "ca.pem"}"
tls_cert = "{tls / "gate-1.pem"}"
tls_key = "{tls / "gate-1.key"}"
hub_key = "{tls / "hub.pub"}"
""")
    refused = _gate_agent("config", "check", "--config", str(config))
    assert refused.returncode == 2 and "uplink.tls_ca: file" in refused.stderr  # run would refuse it too
    done = _gate_agent("enroll", "--config", str(config), "--out", str(tmp_path / "req"), "--json")
    assert done.returncode == 0, done.stderr
    assert (tls / "gate-1.key").stat().st_mode & 0o777 == 0o600
    enroll_terminal(tmp_path / "req", "gate-1", authority, tmp_path / "hub-keys", tmp_path / "answer")
    done = _gate_agent("enroll", "--config", str(config), "--install", str(tmp_path / "answer"), "--json")
    assert done.returncode == 0, done.stderr
    assert (tls / "gate-1.pem").exists() and (tls / "ca.pem").exists()
    assert (tls / "hub.pub").exists()  # pinned where the daemon looks for it (uplink.hub_key)
    assert _gate_agent("config", "check", "--config", str(config)).returncode == 0
