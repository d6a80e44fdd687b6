"""gate-agent doctor: every check can pass and fail, the table and the exit status."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.app import doctor
from agent.config import parse_config
from sim.infra.mosquitto import Mosquitto
from sim.infra.net import free_port


def config(tmp_path: Path, **uplink: object) -> object:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    trust = tmp_path / "trust"
    return parse_config(
        {
            "terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(state)},
            "reader": {"trust_dir": str(trust)},
            "uplink": dict(uplink),
        }
    )


def cert(path: Path, days: int) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gate-1")])
    now = dt.datetime.now(dt.UTC)
    c = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    return path


def by_name(checks: list[doctor.Check]) -> dict[str, str]:
    return {c.name: c.status for c in checks}


def test_state_dir_and_trust_anchors(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    got = by_name(doctor.run_checks(cfg, [doctor.check_state_dir, doctor.check_trust_dir]))  # type: ignore[arg-type]
    assert got == {"disk space": "ok", "trust anchors": "fail"}
    (tmp_path / "trust").mkdir()
    (tmp_path / "trust" / "csca.pem").write_text("x")
    assert by_name(doctor.run_checks(cfg, [doctor.check_trust_dir]))["trust anchors"] == "ok"  # type: ignore[arg-type]


@pytest.mark.broker
def test_broker_reachability(tmp_path: Path, mosquitto: Mosquitto) -> None:
    dead = free_port()
    cfg = config(tmp_path, broker_urls=[mosquitto.url, f"mqtt://127.0.0.1:{dead}"])
    got = by_name(doctor.run_checks(cfg, [doctor.check_brokers]))  # type: ignore[arg-type]
    assert got == {f"broker 127.0.0.1:{mosquitto.port}": "ok", f"broker 127.0.0.1:{dead}": "fail"}
    none = by_name(doctor.run_checks(config(tmp_path), [doctor.check_brokers]))  # type: ignore[arg-type]
    assert none == {"broker": "warn"}


def test_certificate_expiry(tmp_path: Path) -> None:
    cfg = config(tmp_path, tls_ca=str(cert(tmp_path / "ca.pem", 400)), tls_cert=str(cert(tmp_path / "t.pem", 10)))
    assert by_name(doctor.run_checks(cfg, [doctor.check_certificates])) == {  # type: ignore[arg-type]
        "uplink.tls_ca": "ok",
        "uplink.tls_cert": "warn",
    }
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=500)
    expired = list(doctor.check_certificates(cfg, later))  # type: ignore[arg-type]
    assert {c.status for c in expired} == {"fail"}
    (tmp_path / "t.pem").write_text("garbage")
    assert "cannot load" in next(c.detail for c in doctor.check_certificates(cfg) if c.name == "uplink.tls_cert")  # type: ignore[arg-type]


def test_clock_flag(tmp_path: Path) -> None:
    flag = tmp_path / "timesync" / "synchronized"
    assert doctor.clock_synchronised(flag) is None
    flag.parent.mkdir()
    assert doctor.clock_synchronised(flag) is False
    flag.touch()
    assert doctor.clock_synchronised(flag) is True


def test_doctor_command_fails_on_a_broken_terminal(tmp_path: Path) -> None:
    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text(
        f'[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\nstate_dir = "{tmp_path / "nope"}"\n'
        f'[reader]\ntrust_dir = "{tmp_path / "trust"}"\n'
    )
    res = subprocess.run(
        [sys.executable, "-m", "agent", "doctor", "--config", str(cfg_path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] is False
    assert {c["name"]: c["status"] for c in report["checks"]}["state dir"] == "fail"
    table = subprocess.run(
        [sys.executable, "-m", "agent", "doctor", "--config", str(cfg_path)], capture_output=True, text=True, timeout=60
    )
    assert table.stdout.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]


@pytest.mark.pcscd
def test_pcscd_and_reader(tmp_path: Path, pcscd: object) -> None:
    from sim.infra.pcscd import Pcscd

    assert isinstance(pcscd, Pcscd)
    cfg = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(tmp_path)},
                        "reader": {"name": pcscd.reader_names[0][:6]}})  # fmt: skip
    checks = {c.name: c for c in doctor.check_pcscd(cfg)}
    assert checks["pcscd"].status == doctor.OK and checks["reader"].status == doctor.OK
    cfg = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(tmp_path)},
                        "reader": {"name": "OMNIKEY 5022"}})  # fmt: skip
    checks = {c.name: c for c in doctor.check_pcscd(cfg)}
    assert checks["reader"].status == doctor.FAIL and "no reader matches 'OMNIKEY 5022'" in checks["reader"].detail


@pytest.mark.pty
def test_serial_devices_against_their_profiles(tmp_path: Path) -> None:
    from sim.finger.module import PROFILES, PtyModule, SimModule

    def cfg(profile: str, url: Path, qr: str = "") -> object:
        return parse_config({
            "terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(tmp_path)},
            "finger": {"enabled": True, "url": str(url), "profile": profile},
            "scanners": {"qr_url": qr},
        })  # fmt: skip

    served = PtyModule(SimModule(PROFILES["r307"], speed=0), tmp_path / "finger").start()
    try:
        (check,) = doctor.check_serial_devices(cfg("r307", tmp_path / "finger"))  # type: ignore[arg-type]
        assert check.status == doctor.OK and "capacity 1000, packet 128, 57600 baud" in check.detail
        (check,) = doctor.check_serial_devices(cfg("r503", tmp_path / "finger"))  # type: ignore[arg-type]
        assert check.status == doctor.WARN and "capacity 1000 (profile 200)" in check.detail
    finally:
        served.stop()
    broken = cfg("r307", tmp_path / "gone", str(tmp_path / "no-qr"))
    checks = list(doctor.check_serial_devices(broken))  # type: ignore[arg-type]
    assert [c.status for c in checks] == [doctor.FAIL, doctor.FAIL]
    assert checks[1].name == "QR scanner"
    # beside a running daemon the serial lines are left alone
    import socket

    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "attendant.sock"))
        server.listen()
        (check,) = doctor.check_serial_devices(broken)  # type: ignore[arg-type]
    assert check.status == doctor.OK and "not probed" in check.detail


def test_queue_health(tmp_path: Path) -> None:
    from agent.store.queue import EventQueue

    def cfg(capacity: int) -> object:
        return parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(tmp_path),
                                          "queue_capacity": capacity}})  # fmt: skip

    (check,) = doctor.check_queue(cfg(10))  # type: ignore[arg-type]
    assert check.status == doctor.OK and "not created yet" in check.detail
    queue = EventQueue(tmp_path / "queue", capacity=10)
    for i in range(9):
        queue.append(f"event-{i}", b"body")
    queue.close()
    (check,) = doctor.check_queue(cfg(100))  # type: ignore[arg-type]
    assert check.status == doctor.OK and check.detail.startswith("9 pending of 100")
    (check,) = doctor.check_queue(cfg(10))  # type: ignore[arg-type]
    assert check.status == doctor.WARN
    (check,) = doctor.check_queue(cfg(9))  # type: ignore[arg-type]
    assert check.status == doctor.FAIL and "full" in check.detail
