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


def config(tmp_path: Path, terminal: str = "gate-1", **uplink: object) -> object:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return parse_config(
        {
            "terminal": {"facility_id": "01001", "terminal_id": terminal, "state_dir": str(state)},
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
    (tmp_path / "state" / "trust").mkdir()
    (tmp_path / "state" / "trust" / "csca.pem").write_text("x")
    assert by_name(doctor.run_checks(cfg, [doctor.check_trust_dir]))["trust anchors"] == "ok"  # type: ignore[arg-type]


@pytest.mark.broker
def test_broker_reachability(tmp_path: Path, mosquitto: Mosquitto) -> None:
    dead = free_port()
    cfg = config(tmp_path, broker_urls=[mosquitto.url, f"mqtt://127.0.0.1:{dead}"], allow_plaintext=True)
    checks = doctor.run_checks(cfg, [doctor.check_brokers])  # type: ignore[arg-type]
    got = by_name(checks)
    assert got == {f"broker 127.0.0.1:{mosquitto.port}": "ok", f"broker 127.0.0.1:{mosquitto.port} mqtt": "ok",
                   f"broker 127.0.0.1:{dead}": "fail"}  # fmt: skip
    dead_check = next(c for c in checks if c.status == "fail")
    assert "uplink.broker_urls" in dead_check.fix and "uplink.broker_urls" in dead_check.fix_vi
    none = by_name(doctor.run_checks(config(tmp_path), [doctor.check_brokers]))  # type: ignore[arg-type]
    assert none == {"broker": "warn"}


def test_hub_key_and_plaintext(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    cfg = config(tmp_path, broker_urls=["mqtt://127.0.0.1:1883"], allow_plaintext=True)
    checks = doctor.run_checks(cfg, [doctor.check_hub_trust])  # type: ignore[arg-type]
    assert by_name(checks) == {"plaintext": "warn", "hub key": "fail"}
    assert all(c.fix and c.fix_vi for c in checks)
    assert "gate-agent enroll" in next(c.fix for c in checks if c.name == "hub key")
    pin = tmp_path / "state" / "hub.pub"
    pin.write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    tls = config(tmp_path, broker_urls=["mqtts://127.0.0.1:8883"])
    assert by_name(doctor.run_checks(tls, [doctor.check_hub_trust])) == {"hub key": "ok"}  # type: ignore[arg-type]
    pin.write_text("not a key")
    assert by_name(doctor.run_checks(tls, [doctor.check_hub_trust])) == {"hub key": "fail"}  # type: ignore[arg-type]
    assert list(doctor.check_hub_trust(config(tmp_path))) == []  # type: ignore[arg-type]  # no uplink: no hub


def test_queue_key_beside_the_queue_warns(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "state" / "queue").mkdir()
    (tmp_path / "state" / "queue" / "key").write_bytes(b"k" * 32)
    (check,) = doctor.run_checks(cfg, [doctor.check_queue_key])  # type: ignore[arg-type]
    assert check.status == "warn" and "beside the queue" in check.detail and "queue-key" in check.fix
    assert check.fix_vi
    outside = tmp_path / "keys" / "queue.key"
    outside.parent.mkdir()
    outside.write_bytes(b"k" * 32)
    state = tmp_path / "state"
    cfg = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(state),
                                     "queue_key": str(outside)}})  # fmt: skip
    assert by_name(doctor.run_checks(cfg, [doctor.check_queue_key])) == {"queue key": "ok"}


def test_certificate_expiry(tmp_path: Path) -> None:
    cfg = config(tmp_path, broker_urls=["mqtts://127.0.0.1:8883"], tls_ca=str(cert(tmp_path / "ca.pem", 400)))
    assert by_name(doctor.run_checks(cfg, [doctor.check_certificates])) == {"uplink.tls_ca": "fail"}  # type: ignore[arg-type]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=500)
    expired = list(doctor.check_certificates(cfg, later))  # type: ignore[arg-type]
    assert "is not valid now" in expired[0].detail
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=390)
    assert "expires in" in next(iter(doctor.check_certificates(cfg, soon))).detail  # type: ignore[arg-type]
    (tmp_path / "ca.pem").write_text("garbage")
    assert "cannot load" in next(c.detail for c in doctor.check_certificates(cfg) if c.name == "uplink.tls_ca")  # type: ignore[arg-type]


def tls_uplink(pki: Path, cert_of: str, ca: str = "ca.crt", port: int = 8883) -> dict[str, object]:
    return {"broker_urls": [f"mqtts://127.0.0.1:{port}"], "tls_ca": str(pki / ca),
            "tls_cert": str(pki / f"{cert_of}.crt"), "tls_key": str(pki / f"{cert_of}.key")}  # fmt: skip


def test_certificate_identity_and_ca(tmp_path: Path) -> None:
    from sim.pki import make_pki

    make_pki(tmp_path / "pki", "01001", ["gate-1", "gate-2"])
    make_pki(tmp_path / "other", "01002", ["gate-1"])
    pki = tmp_path / "pki"
    good = list(doctor.run_checks(config(tmp_path, **tls_uplink(pki, "gate-1")), [doctor.check_certificates]))  # type: ignore[arg-type]
    assert {c.status for c in good} == {"ok"} and "uplink.tls_cert identity" in by_name(good)
    # a certificate issued to another terminal: the broker's ACL would drop every message
    (wrong,) = [c for c in doctor.check_certificates(config(tmp_path, **tls_uplink(pki, "gate-2")))  # type: ignore[arg-type]
                if c.status == "fail"]  # fmt: skip
    assert "issued to gate-2, this terminal is 'gate-1'" in wrong.detail and "CN=gate-1" in wrong.fix
    # the CA file holds a terminal certificate, not a CA
    not_ca = [c for c in doctor.run_checks(config(tmp_path, **tls_uplink(pki, "gate-1", ca="gate-2.crt")),  # type: ignore[arg-type]
                                           [doctor.check_certificates]) if c.status == "fail"]  # fmt: skip
    assert any("is not a CA certificate" in c.detail for c in not_ca)
    assert any("not issued by any CA" in c.detail for c in not_ca)
    # a CA, but not the one that issued the client certificate
    other = tls_uplink(pki, "gate-1")
    other["tls_ca"] = str(tmp_path / "other" / "ca.crt")
    (foreign,) = [c for c in doctor.check_certificates(config(tmp_path, **other)) if c.status == "fail"]  # type: ignore[arg-type]
    assert "not issued by any CA" in foreign.detail and foreign.fix


@pytest.mark.broker
def test_real_tls_handshake_and_acl_against_the_shipped_broker_config(tmp_path: Path) -> None:
    from sim.pki import make_pki
    from tests.test_broker_acl import broker_conf

    pki = tmp_path / "pki"
    make_pki(pki, "01001", ["gate-1", "gate-2"])
    make_pki(tmp_path / "other", "01001", ["gate-1"])
    port = free_port()
    broker = Mosquitto(tmp_path / "broker", port, extra_conf=broker_conf(pki, port), anonymous=False).start()
    try:
        name = f"broker 127.0.0.1:{port}"
        ok = doctor.run_checks(config(tmp_path, **tls_uplink(pki, "gate-1", port=port)), [doctor.check_brokers])  # type: ignore[arg-type]
        assert by_name(ok) == {name: "ok", f"{name} tls": "ok", f"{name} mqtt": "ok"}, ok
        # gate-2's certificate on gate-1: TLS and the session pass, the ACL refuses gate-1's topics
        wrong = {c.name: c for c in doctor.run_checks(config(tmp_path, **tls_uplink(pki, "gate-2", port=port)),  # type: ignore[arg-type]
                                                      [doctor.check_brokers])}  # fmt: skip
        assert wrong[f"{name} tls"].status == "ok"
        assert wrong[f"{name} mqtt"].status == "fail" and "ACL refuses gate/01001/gate-1/cmd/result" in \
            wrong[f"{name} mqtt"].detail and wrong[f"{name} mqtt"].fix  # fmt: skip
        # a CA that did not sign the broker's certificate: the handshake fails, with the fix
        foreign = tls_uplink(pki, "gate-1", port=port)
        foreign["tls_ca"] = str(tmp_path / "other" / "ca.crt")
        bad = {c.name: c for c in doctor.run_checks(config(tmp_path, **foreign), [doctor.check_brokers])}  # type: ignore[arg-type]
        assert bad[f"{name} tls"].status == "fail" and "not trusted" in bad[f"{name} tls"].detail
        assert "uplink.tls_ca" in bad[f"{name} tls"].fix and f"{name} mqtt" not in bad
    finally:
        broker.stop()


def test_terminal_credentials_are_required_with_the_finger(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(state)},
                        "finger": {"enabled": True, "url": "/dev/ttyUSB0"}})  # fmt: skip
    (check,) = doctor.run_checks(cfg, [doctor.check_terminal_credentials])
    assert check.status == "fail" and "cannot be matched" in check.detail and "terminal.key" in check.fix
    cfg = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(state)}})
    assert doctor.run_checks(cfg, [doctor.check_terminal_credentials])[0].status == "ok"


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
    state = next(c for c in report["checks"] if c["name"] == "state dir")
    assert state["status"] == "fail" and "terminal.state_dir" in state["fix"] and state["fix_vi"]
    table = subprocess.run(
        [sys.executable, "-m", "agent", "doctor", "--config", str(cfg_path), "--lang", "both"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    fixes = [line.strip() for line in lines if line.strip().startswith("->")]
    assert any("terminal.state_dir" in f for f in fixes) and any("thư mục" in f for f in fixes)
    assert lines[-1].endswith("ok") and "failed" in lines[-1]
    # a config that does not load: the error object, not a traceback
    broken = tmp_path / "broken.toml"
    broken.write_text('[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\n[uplink]\nbroker_url = "x"\n')
    res = subprocess.run([sys.executable, "-m", "agent", "doctor", "--config", str(broken), "--json"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    known = ("broker_urls, username, password, tls_ca, tls_cert, tls_key, protocol, keepalive, inflight, rate, "
             "batch, ack_timeout, backoff_min, backoff_max, heartbeat, allow_plaintext, hub_key, clock_skew, "
             "persistent_session, session_expiry")  # fmt: skip
    error = json.loads(res.stdout)["error"]
    assert res.returncode == 2 and error.endswith(f"uplink.broker_url: unknown key (known: {known})")


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


def test_queue_health_with_the_key_kept_apart(tmp_path: Path) -> None:
    """The queue sealed with a key outside the state directory opens with that key (no key beside it is made)."""
    from agent.store.queue import EventQueue

    state, secrets = tmp_path / "state", tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    key_file = secrets / "queue.key"
    queue = EventQueue(state / "queue", capacity=10, key_file=key_file)
    queue.append("event-1", b"body")
    queue.close()
    cfg = parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(state),
                                     "queue_key": str(key_file)}})  # fmt: skip
    (check,) = doctor.check_queue(cfg)
    assert check.status == doctor.OK and check.detail.startswith("1 pending of 10")
    assert not (state / "queue" / "key").exists()


@pytest.mark.broker
def test_the_clock_is_compared_with_the_hubs_signed_time(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """MQTT carries no time: the doctor asks the hub, verifies its signed answer with the pinned key, compares."""
    import time

    from cryptography.hazmat.primitives.asymmetric import ed25519

    from agent.uplink.hubmsg import public_pem
    from sim.hub.hub import Hub

    hub_key = ed25519.Ed25519PrivateKey.generate()
    cfg = config(tmp_path, broker_urls=[mosquitto.url], allow_plaintext=True)
    # no hub on the broker yet: the clocks cannot be compared (a warning, not a pass)
    (tmp_path / "state" / "hub.pub").write_bytes(public_pem(hub_key.public_key()))
    got = {c.name: c for c in doctor.run_checks(cfg, [lambda c: doctor.check_brokers(c, timeout=1.0)])}
    assert got["clock vs hub"].status == "warn" and "did not answer" in got["clock vs hub"].detail
    terminal = ed25519.Ed25519PrivateKey.generate()
    hub = Hub(mosquitto.url, "01001", tmp_path / "hub.db", {"gate-1": terminal.public_key()},
              signing_key=hub_key).start()  # fmt: skip
    try:
        got = {c.name: c for c in doctor.run_checks(cfg, [doctor.check_brokers])}  # type: ignore[arg-type]
        assert got["clock vs hub"].status == "ok", got["clock vs hub"]
        hub.signer.clock = lambda: time.time() + 1000  # the hub's clock runs 1000 s ahead of this terminal's
        got = {c.name: c for c in doctor.run_checks(cfg, [doctor.check_brokers])}  # type: ignore[arg-type]
        clock = got["clock vs hub"]
        assert clock.status == "fail" and "+100" in clock.detail and "uplink.clock_skew" in clock.detail
        assert clock.fix and clock.fix_vi
        # an answer signed by another key is not believed: no comparison
        (tmp_path / "state" / "hub.pub").write_bytes(public_pem(ed25519.Ed25519PrivateKey.generate().public_key()))
        got = {c.name: c for c in doctor.run_checks(cfg, [lambda c: doctor.check_brokers(c, timeout=1.0)])}
        assert got["clock vs hub"].status == "warn"
    finally:
        hub.stop()


@pytest.mark.broker
def test_beside_a_running_daemon_the_broker_session_is_left_alone(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """With the shipped broker config the client id is the terminal's name: a probe would take the daemon's over."""
    import socket as socket_mod

    cfg = config(tmp_path, broker_urls=[mosquitto.url], allow_plaintext=True)
    with socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM) as daemon:  # the daemon's attendant socket
        daemon.bind(str(tmp_path / "state" / "attendant.sock"))
        daemon.listen()
        got = {c.name: c for c in doctor.run_checks(cfg, [doctor.check_brokers])}  # type: ignore[arg-type]
    mqtt_check = got[f"broker 127.0.0.1:{mosquitto.port} mqtt"]
    assert mqtt_check.status == "warn" and "not probed" in mqtt_check.detail  # not checked is not ok
    assert "clock vs hub" not in got
