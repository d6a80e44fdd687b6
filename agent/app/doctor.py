"""``gate-agent doctor``: what an installer checks at a terminal, one line per check, each with its fix.

Each check returns :class:`Check`: ``ok`` / ``warn`` / ``fail``, what it found (never
personal data) and, when not ok, the fix in one sentence, in English and Vietnamese
(:data:`FIXES`, by check name, unless the check gives a more precise one).  ``fail``
makes the command exit 1; ``warn`` (clock not yet synchronised, certificate expiring
within 30 days) does not.  A check that cannot be made is a ``fail``, never an ``ok``.

Why one piece: the checks are one ordered list (:data:`CHECKS`) sharing one result
type, one table of fixes in two languages (:data:`FIXES`) and one runner that turns
a check that breaks into a ``fail``; each check is short and reads only the config
and the system, so splitting them would scatter the fixes from their checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from agent.config import Config
from agent.errors import GateAgentError

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_BYTES = 200 * 1024 * 1024
CERT_WARN_DAYS = 30
QUEUE_WARN_AGE = 24 * 3600.0  # seconds an event may wait for the hub before the doctor warns
SYNC_FLAG = Path("/run/systemd/timesync/synchronized")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""  # one sentence, English
    fix_vi: str = ""  # the same, Vietnamese

    def as_dict(self) -> dict[str, str]:
        out = {"name": self.name, "status": self.status, "detail": self.detail}
        if self.status != OK:
            out["fix"], out["fix_vi"] = self.fix, self.fix_vi
        return out


CheckFn = Callable[[Config], Iterable[Check]]


def check_state_dir(cfg: Config) -> Iterable[Check]:
    state = cfg.state_dir
    if not state.is_dir():
        yield Check("state dir", FAIL, f"{state} does not exist")
        return
    if not os.access(state, os.W_OK):
        yield Check("state dir", FAIL, f"{state} is not writable by this user")
        return
    free = shutil.disk_usage(state).free
    status = OK if free >= MIN_FREE_BYTES else FAIL
    yield Check("disk space", status, f"{free // (1024 * 1024)} MiB free in {state}")


def clock_synchronised(flag: Path = SYNC_FLAG) -> bool | None:
    """True when systemd-timesyncd says so; None when this system cannot tell."""
    if flag.exists():
        return True
    if flag.parent.is_dir():
        return False
    return None


def check_clock(cfg: Config, flag: Path = SYNC_FLAG) -> Iterable[Check]:
    synced = clock_synchronised(flag)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if synced is True:
        yield Check("clock", OK, f"synchronised ({now})")
    elif synced is False:
        yield Check("clock", WARN, f"not synchronised yet ({now}); events are stamped unsynced")
    else:
        yield Check("clock", WARN, f"cannot tell whether the clock is synchronised ({now})")


def _broker_urls(cfg: Config) -> list[str]:
    return list(cfg.uplink.broker_urls)


def _tls_context(cfg: Config) -> ssl.SSLContext:
    """The context the uplink's TLS uses: the configured CA (or the system's) and the client certificate."""
    u = cfg.uplink
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if u.tls_ca:
        context.load_verify_locations(cafile=u.tls_ca)
    else:
        context.load_default_certs()
    if u.tls_cert:
        context.load_cert_chain(u.tls_cert, u.tls_key or None)
    return context


def _tls_handshake(cfg: Config, host: str, port: int, timeout: float) -> tuple[Check, dt.datetime | None]:
    """A real TLS handshake with the configured client certificate; the broker certificate's start of validity."""
    name = f"broker {host}:{port} tls"
    try:
        context = _tls_context(cfg)
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:  # fmt: skip
            der = tls.getpeercert(binary_form=True)
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return Check(name, FAIL, f"the broker's certificate is not trusted: {exc.verify_message}",
                     "Set uplink.tls_ca to the facility CA that signed the broker's certificate, and use the host "
                     "name in the broker's certificate in uplink.broker_urls.",
                     "Đặt uplink.tls_ca là CA của cơ sở đã ký chứng thư của broker, và dùng đúng tên máy ghi trong "
                     "chứng thư đó trong uplink.broker_urls."), None  # fmt: skip
    except (ssl.SSLError, OSError, ValueError) as exc:
        return Check(name, FAIL, f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}"), None
    if der is None:
        return Check(name, FAIL, "the broker sent no certificate"), None
    broker = x509.load_der_x509_certificate(der)
    detail = f"{version}, broker certificate {broker.subject.rfc4514_string()}, " \
             f"valid until {broker.not_valid_after_utc:%Y-%m-%d}"  # fmt: skip
    return Check(name, OK, detail), broker.not_valid_before_utc


def _mqtt_session(cfg: Config, url: str, timeout: float, clock_checks: list[Check]) -> Check:
    """CONNECT with the terminal's credentials, then publish a harmless message under its own topics:
    MQTT 5's PUBACK says whether the broker's ACL lets this terminal publish (mosquitto otherwise drops
    refused messages silently)."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    parts = urlsplit(url)
    tls = parts.scheme in ("mqtts", "ssl")
    host, port = parts.hostname or "localhost", parts.port or (8883 if tls else 1883)
    u, t = cfg.uplink, cfg.terminal
    name = f"broker {host}:{port} mqtt"
    v5 = u.protocol != "3.1.1"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{t.facility_id}-{t.terminal_id}-doctor",
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)  # fmt: skip
    if u.username:
        client.username_pw_set(u.username, u.password or None)
    if tls:
        client.tls_set_context(_tls_context(cfg))
    connected, published = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result["connect"] = reason
        connected.set()

    def on_publish(c: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        result["publish"] = reason
        published.set()

    def on_disconnect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result.setdefault("connect", reason)
        connected.set()
        published.set()

    client.on_connect, client.on_publish, client.on_disconnect = on_connect, on_publish, on_disconnect
    # a command result for no command: the hub files it under this id and nothing else happens
    topic = f"gate/{t.facility_id}/{t.terminal_id}/cmd/result"
    probe = cbor2.dumps({"id": "doctor-probe", "ok": True, "reason": "gate-agent doctor: ACL probe"})
    try:
        client.connect(host, port, u.keepalive)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return Check(name, FAIL, f"cannot connect: {exc}")
    client.loop_start()
    try:
        if not connected.wait(timeout):
            return Check(name, FAIL, f"no CONNACK within {timeout:g} s")
        reason = result["connect"]
        if getattr(reason, "is_failure", True):
            return Check(name, FAIL, f"the broker refused the session: {reason}",
                         "Check uplink.username/password or the client certificate (uplink.tls_cert) against "
                         "the broker's configuration.",
                         "Kiểm tra uplink.username/password hoặc chứng thư máy khách (uplink.tls_cert) với cấu "
                         "hình của broker.")  # fmt: skip
        client.publish(topic, probe, qos=1)
        if not published.wait(timeout) or "publish" not in result:
            return Check(name, FAIL, f"no PUBACK for {topic} within {timeout:g} s")
        code = result["publish"]
        if getattr(code, "is_failure", False):
            return Check(name, FAIL, f"session accepted but the broker's ACL refuses {topic} ({code}): every "
                                     "event would be dropped",
                         "Issue the client certificate to this terminal id (CN = terminal.terminal_id) or fix "
                         "terminal.terminal_id / the broker ACL.",
                         "Cấp chứng thư máy khách cho đúng mã cổng này (CN = terminal.terminal_id) hoặc sửa "
                         "terminal.terminal_id / ACL của broker.")  # fmt: skip
        if not v5:
            return Check(name, WARN, "session accepted; MQTT 3.1.1 cannot say whether the ACL lets this terminal "
                                     "publish", "Use uplink.protocol = \"auto\" or \"5\" so the broker can say.",
                         "Dùng uplink.protocol = \"auto\" hoặc \"5\" để broker trả lời được.")  # fmt: skip
        session = Check(name, OK, f"session accepted (MQTT 5), may publish under gate/{t.facility_id}/{t.terminal_id}")
        result["clock"] = _hub_clock(cfg, client, timeout)
        return session
    finally:
        client.disconnect()
        client.loop_stop()
        clock_checks.extend(c for c in (result.get("clock"),) if isinstance(c, Check))


def _hub_clock(cfg: Config, client: Any, timeout: float) -> Check | None:
    """Ask the hub for its time (a signed reply, verified with the pinned key) and compare the clocks.

    MQTT carries no time; the hub's signed reply does.  Hub messages dated more than
    ``uplink.clock_skew`` ahead are refused, and events are stamped with this clock.
    None when no hub key is pinned (its own check says so).
    """
    import threading
    import uuid

    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from agent.uplink.hubmsg import HubKeyError, HubMessageError, load_public_key, open_signed

    u, t = cfg.uplink, cfg.terminal
    pin = cfg.hub_key_path
    try:
        key = load_public_key(pin)
    except HubKeyError:
        return None
    base = f"gate/{t.facility_id}/{t.terminal_id}"
    corr, answered, box = uuid.uuid4().bytes, threading.Event(), []

    def on_message(c: Any, userdata: Any, message: Any) -> None:
        if message.topic == f"{base}/reply":
            box.append(bytes(message.payload))
            answered.set()

    client.on_message = on_message
    client.subscribe(f"{base}/reply", qos=1)
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic, props.CorrelationData = f"{base}/reply", corr
    sent = time.time()
    client.publish(f"{base}/query", cbor2.dumps({"kind": "time", "corr": corr}), qos=1, properties=props)
    fix_en = "Let the terminal synchronise its clock (systemd-timesyncd with the facility's NTP server)."
    fix_vi = "Cho cổng đồng bộ đồng hồ (systemd-timesyncd với máy chủ NTP của cơ sở)."
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and answered.wait(left):
        received = time.time()
        answered.clear()
        try:
            doc = open_signed(box.pop(), key, t.facility_id, t.terminal_id, "reply")
        except HubMessageError:
            continue  # not a reply this doctor can read (another one in flight): keep waiting
        body = doc["body"]
        if body.get("corr") != corr or not isinstance(body.get("now"), int | float):
            continue
        skew = float(body["now"]) - (sent + received) / 2
        detail = f"the hub's clock is {skew:+.1f} s from this terminal's (round trip {received - sent:.2f} s)"
        if abs(skew) <= 2 + (received - sent):
            return Check("clock vs hub", OK, detail)
        status = WARN if abs(skew) <= u.clock_skew else FAIL
        more = "" if status == WARN else f": beyond uplink.clock_skew ({u.clock_skew:g} s), hub messages are refused"
        return Check("clock vs hub", status, detail + more, fix_en, fix_vi)
    return Check("clock vs hub", WARN, f"the hub did not answer a time query within {timeout:g} s: clocks not compared",
                 "Start the facility hub, or check that it answers this terminal's queries.",
                 "Khởi động máy chủ cơ sở, hoặc kiểm tra máy chủ có trả lời cổng này không.")  # fmt: skip


def check_brokers(cfg: Config, timeout: float = 3.0) -> Iterable[Check]:
    """Each broker: reachable, a real TLS handshake with this terminal's certificate, an MQTT session the ACL
    accepts; and the clock against the broker certificate's validity."""
    urls = _broker_urls(cfg)
    if not urls:
        yield Check("broker", WARN, "no [uplink] broker_urls configured: check-ins stay queued on this terminal")
        return
    usable = 0
    for url in urls:
        parts = urlsplit(url)
        tls = parts.scheme in ("mqtts", "ssl")
        port = parts.port or (8883 if tls else 1883)
        host = parts.hostname or "localhost"
        start = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            yield Check(f"broker {host}:{port}", FAIL, f"unreachable: {exc.strerror or exc}")
            continue
        yield Check(f"broker {host}:{port}", OK, f"reachable in {1000 * (time.monotonic() - start):.0f} ms")
        if tls:
            handshake, not_before = _tls_handshake(cfg, host, port, timeout)
            yield handshake
            if handshake.status != OK:
                continue
            now = dt.datetime.now(dt.UTC)
            if not_before is not None and now < not_before:
                yield Check("clock", FAIL, f"this terminal says {now:%Y-%m-%d %H:%M} UTC, before the broker's "
                                           f"certificate was issued ({not_before:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
        if daemon_running(cfg):
            # under the shipped broker config the client id is the terminal's user name: a second session
            # would take the running daemon's over
            # not probed is not ok: say so (a warning), and do not count the broker as failed either
            yield Check(f"broker {host}:{port} mqtt", WARN, "not probed: the running gate-agent holds this "
                        "terminal's session (its status heartbeat says whether it is connected)",
                        "Read the gate's status (uplink.connected) on the hub, or stop gate-agent and run the "
                        "doctor again.",
                        "Xem trạng thái của cổng (uplink.connected) trên máy chủ cơ sở, hoặc dừng gate-agent rồi "
                        "chạy lại doctor.")  # fmt: skip
            usable += 1
            continue
        clock: list[Check] = []
        session = _mqtt_session(cfg, url, timeout, clock)
        yield session
        yield from clock[:1] if not usable else []  # one hub clock is enough
        usable += session.status == OK
    if usable == 0 and len(urls) > 1:
        yield Check("broker", FAIL, "no broker accepts this terminal")


def _identities(cert: x509.Certificate) -> list[str]:
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    return names


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def check_certificates(cfg: Config, now: dt.datetime | None = None) -> Iterable[Check]:
    """The TLS files of [uplink]: the CA is a CA, the client certificate names this terminal and was issued
    by that CA, and neither has expired."""
    now = now or dt.datetime.now(dt.UTC)
    loaded: dict[str, list[x509.Certificate]] = {}
    for key in ("tls_ca", "tls_cert"):
        name = getattr(cfg.uplink, key)
        if not name:
            continue
        path = Path(str(name))
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            yield Check(f"uplink.{key}", FAIL, f"{path}: cannot load: {exc}")
            continue
        loaded[key] = certs
        for cert in certs if key == "tls_ca" else certs[:1]:
            left = cert.not_valid_after_utc - now
            subject = cert.subject.rfc4514_string()
            if left.total_seconds() <= 0 or cert.not_valid_before_utc > now:
                yield Check(
                    f"uplink.{key}", FAIL, f"{subject} is not valid now (until {cert.not_valid_after_utc:%Y-%m-%d})"
                )
            elif left.days < CERT_WARN_DAYS:
                yield Check(f"uplink.{key}", WARN, f"{subject} expires in {left.days} days")
            else:
                yield Check(f"uplink.{key}", OK, f"{subject} valid until {cert.not_valid_after_utc:%Y-%m-%d}")
    for cert in loaded.get("tls_ca", []):
        if not _is_ca(cert):
            yield Check("uplink.tls_ca", FAIL, f"{cert.subject.rfc4514_string()} is not a CA certificate "
                                               "(no basicConstraints CA:TRUE)",
                        "Put the facility CA certificate (ca.crt of the facility PKI) in uplink.tls_ca, not the "
                        "broker's or this terminal's own certificate.",
                        "Đặt chứng thư CA của cơ sở (ca.crt) vào uplink.tls_ca, không phải chứng thư của broker "
                        "hay của chính cổng này.")  # fmt: skip
    if "tls_cert" in loaded:
        cert = loaded["tls_cert"][0]
        ids = _identities(cert)
        terminal = cfg.terminal.terminal_id
        if terminal not in ids:
            yield Check("uplink.tls_cert", FAIL, f"issued to {', '.join(ids) or 'nobody'}, this terminal is "
                                                 f"{terminal!r}: the broker's ACL would drop every message",
                        f"Install the client certificate issued to {terminal} (CN={terminal}), or correct "
                        "terminal.terminal_id.",
                        f"Cài chứng thư máy khách cấp cho {terminal} (CN={terminal}), hoặc sửa "
                        "terminal.terminal_id.")  # fmt: skip
        else:
            yield Check("uplink.tls_cert identity", OK, f"names this terminal ({terminal})")
        cas = loaded.get("tls_ca", [])
        if cas and not any(_issued_by(cert, ca) for ca in cas):
            yield Check("uplink.tls_cert", FAIL, f"not issued by any CA in {cfg.uplink.tls_ca}",
                        "Use a client certificate signed by the facility CA in uplink.tls_ca.",
                        "Dùng chứng thư máy khách do CA của cơ sở (uplink.tls_ca) ký.")  # fmt: skip


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_trust_dir(cfg: Config) -> Iterable[Check]:
    trust = cfg.trust_dir
    if not trust.is_dir():
        yield Check("trust anchors", FAIL, f"{trust} does not exist: passive authentication cannot pass")
        return
    files = [p for p in trust.iterdir() if p.suffix.lower() in (".pem", ".der", ".crt", ".cer", ".ml", ".crl")]
    status = OK if files else FAIL
    yield Check("trust anchors", status, f"{len(files)} certificate, CRL and master list files in {trust}")


def check_terminal_credentials(cfg: Config, today: dt.date | None = None) -> Iterable[Check]:
    """The EAC chain (CVCA -> DV -> terminal) and key: without it the chip's fingerprints stay closed."""
    from agent.card.cvc import CvcError, load_credentials

    where = cfg.reader.terminal_credentials
    if not where:
        if cfg.finger.enabled:
            yield Check("terminal credentials", FAIL, "not configured: fingerprints cannot be matched against the "
                                                      "chip's DG3, every chip check-in is 'finger not checked'")
        else:
            yield Check("terminal credentials", OK, "not needed: [finger] is disabled")
        return
    day = today or dt.date.today()
    try:
        creds = load_credentials(where, day)
    except CvcError as exc:
        yield Check("terminal credentials", FAIL, f"{where}: {exc}")
        return
    term = creds.terminal
    left = (term.expiration - day).days
    if not creds.grants_dg3:
        yield Check("terminal credentials", FAIL, f"{term.chr} does not grant reading DG3 (fingerprints)")
    elif left < 7:
        yield Check("terminal credentials", WARN, f"{term.chr} expires in {left} days ({term.expiration})")
    else:
        yield Check("terminal credentials", OK, f"{term.chr} via {creds.chain[1].chr}, valid until {term.expiration}")


def check_pcscd(cfg: Config) -> Iterable[Check]:
    """pcscd answers and the configured reader is there (a card need not be)."""
    from agent.transport.pcsc import list_readers

    try:
        names = list_readers()
    except GateAgentError as exc:
        yield Check("pcscd", FAIL, str(exc))
        return
    yield Check("pcscd", OK, f"{len(names)} reader(s)")
    wanted = cfg.reader.name
    matches = [n for n in names if wanted.lower() in n.lower()]
    if matches:
        yield Check("reader", OK, matches[0] + (f" (matches {wanted!r})" if wanted else ""))
    else:
        yield Check("reader", FAIL, f"no reader matches {wanted!r} (readers: {', '.join(names) or 'none'})")


def daemon_running(cfg: Config) -> bool:
    """A gate-agent serves this state directory (its attendant socket accepts connections)."""
    path = cfg.state_dir / "attendant.sock"
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _check_host_finger(cfg: Config) -> Iterable[Check]:
    """A USB sensor through libfprint and the host matcher: the library loads, the sensor opens."""
    from agent.bio.matcher import available, library_path
    from agent.bio.sensor import FprintSensor, parse_url

    why = available()
    if why is None:
        yield Check("fingerprint matcher", OK, f"NBIS mindtct + Bozorth3 ({library_path().name}), threshold "
                                               f"{cfg.finger.host_threshold}")  # fmt: skip
    else:
        yield Check("fingerprint matcher", FAIL, why)
    try:
        url = parse_url(cfg.finger.url)
        sensor = FprintSensor(url.target, url.socket)
    except GateAgentError as exc:
        yield Check("fingerprint sensor", FAIL, f"{cfg.finger.url}: {exc}")
    else:
        yield Check("fingerprint sensor", OK, f"{sensor.name} at {cfg.finger.url}")
        sensor.close()


def check_serial_devices(cfg: Config) -> Iterable[Check]:
    """The fingerprint module answers and reports what its profile says; the scanners' ports open."""
    from agent import profiles

    if daemon_running(cfg):
        # two processes on one serial line garble each other's frames: leave the devices to the daemon
        yield Check("serial devices", OK, "in use by the running gate-agent: not probed (stop it to probe them)")
        return
    if cfg.finger.enabled and cfg.finger.url.startswith("fprint:"):
        yield from _check_host_finger(cfg)
    elif cfg.finger.enabled:
        from agent.bio.module import FingerprintModule

        try:
            profile = profiles.fingerprint_profile(cfg.finger.profile)
            module = FingerprintModule.open(cfg.finger.url, profile)
        except GateAgentError as exc:
            yield Check("fingerprint module", FAIL, str(exc))
        else:
            try:
                module.handshake()
                params = module.system_parameters()
            except GateAgentError as exc:
                yield Check("fingerprint module", FAIL, f"{cfg.finger.url}: {exc}")
            else:
                odd = [f"{name} {got} (profile {want})" for name, got, want in (
                    ("packet size", params.packet_size, profile.packet_size),
                    ("capacity", params.capacity, profile.capacity),
                    ("baud", params.baud, profile.baud),
                ) if got != want]  # fmt: skip
                detail = f"{cfg.finger.profile} at {cfg.finger.url}: capacity {params.capacity}, " \
                         f"packet {params.packet_size}, {params.baud} baud"  # fmt: skip
                yield Check("fingerprint module", WARN if odd else OK,
                            detail + (f"; differs from its profile: {', '.join(odd)}" if odd else ""))  # fmt: skip
            finally:
                module.close()
    for kind, url in (("MRZ scanner", cfg.scanners.mrz_url), ("QR scanner", cfg.scanners.qr_url)):
        if not url:
            continue
        from agent.errors import SerialTransportError
        from agent.transport.serial import SerialPort

        try:
            SerialPort(url, 9600).close()
        except SerialTransportError as exc:
            yield Check(kind, FAIL, str(exc))
        else:
            yield Check(kind, OK, f"{url} opens")


def check_queue(cfg: Config) -> Iterable[Check]:
    """The event queue opens, is not near its capacity, and nothing waits for the hub too long."""
    from agent.store.keysource import queue_key_file
    from agent.store.queue import EventQueue

    path = cfg.state_dir / "queue"
    if not path.is_dir():
        yield Check("queue", OK, f"{path} not created yet (no check-in so far)")
        return
    try:
        key_file, _ = queue_key_file(cfg.state_dir, cfg.terminal.queue_key)  # the key the daemon seals with
        queue = EventQueue(path, capacity=cfg.terminal.queue_capacity, key_file=key_file, read_only=True)
    except GateAgentError as exc:
        yield Check("queue", FAIL, f"{path}: {exc}")
        return
    try:
        stats = queue.stats()
    finally:
        queue.close()
    pending, capacity, age = stats["pending"], stats["capacity"], stats["oldest_pending_age"]
    detail = f"{pending} pending of {capacity}" + (f", oldest {age / 3600:.1f} h" if age is not None else "")
    if pending >= capacity:
        yield Check("queue", FAIL, detail + ": full, new check-ins are refused")
    elif pending > 0.8 * capacity or (age is not None and age > QUEUE_WARN_AGE):
        yield Check("queue", WARN, detail + ": the hub is not taking events")
    else:
        yield Check("queue", OK, detail)


def check_queue_key(cfg: Config) -> Iterable[Check]:
    """The key sealing the queue should not sit beside it (a pulled SD card would reveal the events)."""
    from agent.store.keysource import beside_state, queue_key_file

    path, _ = queue_key_file(cfg.state_dir, cfg.terminal.queue_key)  # KeyFileError: FAIL
    if beside_state(path, cfg.state_dir):
        yield Check("queue key", WARN, f"{path} sits beside the queue: a pulled SD card reveals the events",
                    "Load the key as the systemd credential queue-key (LoadCredentialEncrypted=) or set "
                    "terminal.queue_key to a file outside the state directory.",
                    "Nạp khóa bằng thông tin xác thực systemd queue-key (LoadCredentialEncrypted=) hoặc đặt "
                    "terminal.queue_key là một tệp nằm ngoài thư mục trạng thái.")  # fmt: skip
    elif not path.exists():
        yield Check("queue key", WARN, f"{path} (missing): the agent makes it at its first start",
                    "Start the agent once (systemctl start gate-agent), or check terminal.queue_key.",
                    "Chạy tác nhân một lần (systemctl start gate-agent), hoặc kiểm tra "
                    "terminal.queue_key.")  # fmt: skip
    else:
        yield Check("queue key", OK, f"{path}")


def check_hub_trust(cfg: Config) -> Iterable[Check]:
    """Plain MQTT, and the hub key pinned at enrolment (without it every hub message is refused)."""
    from agent.config import plaintext_brokers

    u = cfg.uplink
    if not u.broker_urls:
        return
    plain = plaintext_brokers(u)  # config check refuses them unless allow_plaintext = true
    if plain:
        yield Check("plaintext", WARN, f"allow_plaintext = true: {', '.join(plain)} without TLS (simulator only)",
                    "Use mqtts:// broker URLs with the facility CA (uplink.tls_ca) and set uplink.allow_plaintext "
                    "= false.",
                    "Dùng địa chỉ broker mqtts:// với CA của cơ sở (uplink.tls_ca) và đặt uplink.allow_plaintext "
                    "= false.")  # fmt: skip
    pin = cfg.hub_key_path
    if not pin.exists():
        yield Check("hub key", FAIL, f"{pin}: no hub key pinned; every hub message (acks, commands) is refused",
                    "Enrol the terminal: gate-agent enroll, then gate-agent enroll --install with the hub's answer.",
                    "Đăng ký cổng: gate-agent enroll, rồi gate-agent enroll --install với câu trả lời của máy chủ "
                    "cơ sở.")  # fmt: skip
        return
    from agent.uplink.hubmsg import HubKeyError, fingerprint, load_public_key

    try:
        yield Check("hub key", OK, f"pinned {fingerprint(load_public_key(pin))}")
    except HubKeyError as exc:
        yield Check("hub key", FAIL, str(exc),
                    "Enrol again (gate-agent enroll --install ... --repin) and compare the fingerprint with the "
                    "hub's.",
                    "Đăng ký lại (gate-agent enroll --install ... --repin) và so dấu vân tay với máy chủ "
                    "cơ sở.")  # fmt: skip


#: checks run in this order
CHECKS: list[CheckFn] = [
    check_state_dir, check_queue, check_clock, check_pcscd, check_serial_devices, check_trust_dir,
    check_terminal_credentials, check_certificates, check_brokers, check_hub_trust, check_queue_key,
]  # fmt: skip

#: check name (or its first word) -> the fix in one sentence, English and Vietnamese, when a check gives none
FIXES: dict[str, tuple[str, str]] = {
    "state dir": ("Install the package (it creates /var/lib/gate-agent) or set terminal.state_dir to a directory "
                  "the service user owns.",
                  "Cài gói (gói tạo /var/lib/gate-agent) hoặc đặt terminal.state_dir là thư mục thuộc người dùng "
                  "của dịch vụ."),
    "disk space": ("Free disk space: at least 200 MiB must stay free for the event queue.",
                   "Giải phóng ổ đĩa: cần còn trống ít nhất 200 MiB cho hàng đợi sự kiện."),
    "queue": ("Check the broker connection (see the broker lines): events leave the queue only when the hub "
              "acknowledges them.",
              "Kiểm tra kết nối tới broker (xem các dòng broker): sự kiện chỉ rời hàng đợi khi máy chủ cơ sở "
              "xác nhận."),
    "clock": ("Enable time synchronisation (timedatectl set-ntp true) and check the time zone and the NTP server.",
              "Bật đồng bộ thời gian (timedatectl set-ntp true) và kiểm tra múi giờ, máy chủ NTP."),
    "pcscd": ("Install and start pcscd (apt install pcscd; systemctl enable --now pcscd.socket).",
              "Cài và chạy pcscd (apt install pcscd; systemctl enable --now pcscd.socket)."),
    "reader": ("Plug the card reader in, or set reader.name to a part of a name that pcsc_scan shows.",
               "Cắm đầu đọc thẻ, hoặc đặt reader.name theo một phần tên mà pcsc_scan hiển thị."),
    "fingerprint matcher": ("Run ./run setup (or reinstall the package): the compiled NBIS matcher is missing.",
                            "Chạy ./run setup (hoặc cài lại gói): thiếu bộ so khớp NBIS đã biên dịch."),
    "fingerprint sensor": ("Plug the USB fingerprint sensor in (lsusb must list it) and check finger.url "
                           "(fprint:// takes the first sensor libfprint supports, fprint://DRIVER a given one).",
                           "Cắm cảm biến vân tay USB (lsusb phải thấy) và kiểm tra finger.url (fprint:// dùng cảm "
                           "biến đầu tiên libfprint hỗ trợ, fprint://DRIVER một cảm biến cụ thể)."),
    "fingerprint": ("Check the module's cable and finger.url, and set finger.profile to the module's model.",
                    "Kiểm tra cáp của mô-đun vân tay và finger.url, đặt finger.profile đúng mẫu mô-đun."),
    "MRZ": ("Check the MRZ reader's cable and scanners.mrz_url (the service user needs the dialout group).",
            "Kiểm tra cáp đầu đọc MRZ và scanners.mrz_url (người dùng dịch vụ cần nhóm dialout)."),
    "QR": ("Check the QR scanner's cable and scanners.qr_url (the service user needs the dialout group).",
           "Kiểm tra cáp máy quét QR và scanners.qr_url (người dùng dịch vụ cần nhóm dialout)."),
    "trust": ("Copy the CSCA certificates or master list (*.pem, *.der, *.ml, *.crl) into the trust directory, "
              "or let the hub push them.",
              "Chép chứng thư CSCA hoặc danh sách chủ (*.pem, *.der, *.ml, *.crl) vào thư mục tin cậy, hoặc để "
              "máy chủ cơ sở đẩy xuống."),
    "terminal": ("Install the terminal's EAC credentials (*.cvcert chain and terminal.key) in "
                 "reader.terminal_credentials, or let the hub push them.",
                 "Cài chứng thư EAC của cổng (chuỗi *.cvcert và terminal.key) vào reader.terminal_credentials, "
                 "hoặc để máy chủ cơ sở đẩy xuống."),
    "uplink.tls_ca": ("Replace uplink.tls_ca with the facility CA certificate before it expires.",
                      "Thay uplink.tls_ca bằng chứng thư CA của cơ sở trước khi hết hạn."),
    "uplink.tls_cert": ("Renew this terminal's client certificate (uplink.tls_cert and uplink.tls_key).",
                        "Gia hạn chứng thư máy khách của cổng (uplink.tls_cert và uplink.tls_key)."),
    "broker": ("Check the network and firewall to the broker, and uplink.broker_urls (host and port).",
               "Kiểm tra mạng và tường lửa tới broker, và uplink.broker_urls (tên máy và cổng)."),
}


def _with_fix(check: Check) -> Check:
    if check.status == OK or check.fix:
        return check
    for key in (check.name, check.name.split()[0], check.name.split(".")[0]):
        if key in FIXES:
            en, vi = FIXES[key]
            return dataclasses.replace(check, fix=en, fix_vi=vi)
    return check


def run_checks(cfg: Config, checks: Iterable[CheckFn] | None = None) -> list[Check]:
    """Every check; one that breaks is a FAIL saying so (never an ok by omission)."""
    out: list[Check] = []
    for fn in checks if checks is not None else CHECKS:
        name = getattr(fn, "__name__", "check").removeprefix("check_").replace("_", " ")
        try:
            out.extend(fn(cfg))
        except GateAgentError as exc:
            out.append(Check(name, FAIL, str(exc)))
        except (OSError, ValueError, ssl.SSLError) as exc:
            out.append(Check(name, FAIL, f"the check could not be made: {type(exc).__name__}: {exc}"))
    return [_with_fix(c) for c in out]


def render_table(checks: list[Check], lang: str = "en") -> str:
    """One line per check; under each warning or failure, its fix (``lang``: en, vi or both)."""
    width = max((len(c.name) for c in checks), default=5)
    lines = [f"{'CHECK'.ljust(width)}  STATUS  DETAIL"]
    for c in checks:
        lines.append(f"{c.name.ljust(width)}  {c.status.upper().ljust(6)}  {c.detail}")
        fixes = {"en": [c.fix], "vi": [c.fix_vi], "both": [c.fix, c.fix_vi]}[lang]
        lines += [f"{''.ljust(width)}  {'':6}  -> {text}" for text in fixes if text]
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    lines.append(f"{failed} failed, {warned} warnings, {len(checks) - failed - warned} ok")
    return "\n".join(lines)
