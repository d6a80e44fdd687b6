"""``gate-agent doctor``: what an installer checks at a terminal, one line per check.

Each check returns :class:`Check` (``ok`` / ``warn`` / ``fail`` and a detail that
never contains personal data).  ``fail`` makes the command exit 1; ``warn``
(clock not yet synchronised, certificate expiring within 30 days) does not.
Checks that need a device module are registered by that module's layer, so
the doctor grows with the terminal.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

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

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


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
    urls = cfg.uplink.get("broker_urls", [])
    return [str(u) for u in urls] if isinstance(urls, list) else []


def check_brokers(cfg: Config, timeout: float = 3.0) -> Iterable[Check]:
    urls = _broker_urls(cfg)
    if not urls:
        yield Check("broker", WARN, "no [uplink] broker_urls configured: check-ins stay queued on this terminal")
        return
    reachable = 0
    for url in urls:
        parts = urlsplit(url)
        tls = parts.scheme in ("mqtts", "ssl", "tls")
        port = parts.port or (8883 if tls else 1883)
        host = parts.hostname or "localhost"
        start = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            yield Check(f"broker {host}:{port}", FAIL, f"unreachable: {exc.strerror or exc}")
            continue
        reachable += 1
        yield Check(f"broker {host}:{port}", OK, f"reachable in {1000 * (time.monotonic() - start):.0f} ms")
    if reachable == 0 and len(urls) > 1:
        yield Check("broker", FAIL, "no broker reachable")


def check_certificates(cfg: Config, now: dt.datetime | None = None) -> Iterable[Check]:
    """Expiry of the TLS files named in [uplink] (ca, cert)."""
    now = now or dt.datetime.now(dt.UTC)
    for key in ("tls_ca", "tls_cert"):
        name = cfg.uplink.get(key)
        if not name:
            continue
        path = Path(str(name))
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            yield Check(f"uplink.{key}", FAIL, f"{path}: cannot load: {exc}")
            continue
        for cert in certs:
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


def check_trust_dir(cfg: Config) -> Iterable[Check]:
    trust = Path(cfg.reader.trust_dir)
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
        yield Check("terminal credentials", WARN if cfg.finger.enabled else OK,
                    "not configured: fingerprints cannot be matched against the chip's DG3")  # fmt: skip
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


def check_serial_devices(cfg: Config) -> Iterable[Check]:
    """The fingerprint module answers and reports what its profile says; the scanners' ports open."""
    from agent import profiles

    if daemon_running(cfg):
        # two processes on one serial line garble each other's frames: leave the devices to the daemon
        yield Check("serial devices", OK, "in use by the running gate-agent: not probed (stop it to probe them)")
        return
    if cfg.finger.enabled:
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
    from agent.store.queue import EventQueue

    path = cfg.state_dir / "queue"
    if not path.is_dir():
        yield Check("queue", OK, f"{path} not created yet (no check-in so far)")
        return
    try:
        queue = EventQueue(path, capacity=cfg.terminal.queue_capacity, read_only=True)
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
        advice = "load it as a systemd credential (queue-key) or set terminal.queue_key outside the state directory"
        yield Check("queue key", WARN, f"{path} sits beside the queue: {advice}")
    else:
        yield Check("queue key", OK if path.exists() else WARN, f"{path}" + ("" if path.exists() else " (missing)"))


def check_hub_trust(cfg: Config) -> Iterable[Check]:
    """Plain MQTT, and the hub key pinned at enrolment (without it every hub message is refused)."""
    if not cfg.uplink.get("broker_urls"):
        return
    from agent.uplink.config import UplinkConfig

    up = UplinkConfig.from_table(cfg.uplink, cfg.terminal.facility_id, cfg.terminal.terminal_id)  # ConfigError: FAIL
    plain = [u for u in up.broker_urls if urlsplit(u).scheme in ("mqtt", "tcp")]
    if plain:
        yield Check("plaintext", WARN, f"allow_plaintext = true: {', '.join(plain)} without TLS (simulator only)")
    pin = Path(up.hub_key) if up.hub_key else cfg.state_dir / "hub.pub"
    if not pin.exists():
        yield Check("hub key", FAIL, f"{pin}: no hub key pinned; run `gate-agent enroll` (hub commands are refused)")
        return
    from agent.uplink.hubmsg import HubKeyError, fingerprint, load_public_key

    try:
        yield Check("hub key", OK, f"pinned {fingerprint(load_public_key(pin))}")
    except HubKeyError as exc:
        yield Check("hub key", FAIL, str(exc))


#: checks run in this order
CHECKS: list[CheckFn] = [
    check_state_dir, check_queue, check_clock, check_pcscd, check_serial_devices, check_trust_dir,
    check_terminal_credentials, check_brokers, check_certificates, check_hub_trust, check_queue_key,
]  # fmt: skip


def run_checks(cfg: Config, checks: Iterable[CheckFn] | None = None) -> list[Check]:
    out: list[Check] = []
    for fn in checks if checks is not None else CHECKS:
        try:
            out.extend(fn(cfg))
        except GateAgentError as exc:
            out.append(Check(getattr(fn, "__name__", "check").removeprefix("check_"), FAIL, str(exc)))
    return out


def render_table(checks: list[Check]) -> str:
    width = max((len(c.name) for c in checks), default=5)
    lines = [f"{'CHECK'.ljust(width)}  STATUS  DETAIL"]
    lines += [f"{c.name.ljust(width)}  {c.status.upper().ljust(6)}  {c.detail}" for c in checks]
    return "\n".join(lines)
