"""The terminal's one configuration file (TOML): one declarative schema, validated at start.

Field terminals read ``/etc/gate-agent/agent.toml``; tests and the simulator pass
``--config FILE``.  Each table is a frozen dataclass below and each key a
:func:`key` carrying its type (the annotation), default, range, allowed values,
what must exist on disk and its meaning.  Everything that reads the file takes its
values from here: ``gate-agent config check``, ``run``, the SIGHUP reload, the hub's
policy push (:mod:`agent.app.effective_policy`) and ``docs/agent.example.toml``
(rendered by :func:`render_example`, compared by a test).

A key we do not know, a wrong type, an impossible value, a file that is not there, a
URL the uplink cannot use, a profile that does not exist or an output this terminal
cannot drive is a :class:`~agent.errors.ConfigError` whose message starts with
``FILE: table.key``.  Legal but unsafe choices (a plain-text broker on the network, a
relaxed policy ...) are returned by :func:`warnings`; ``config check`` prints them.

Why one piece: the schema is the one opinion on the file.  The tables, the checks
that span tables (a recorder needs its path, TLS files need an ``mqtts://`` broker),
the warnings and the rendered example all read the same field metadata; split
apart, a key could be documented, validated and rendered by three hands that drift.
"""

from __future__ import annotations

import contextvars
import dataclasses
import importlib.util
import re
import shutil
import textwrap
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.errors import ConfigError

if typing.TYPE_CHECKING:
    import ssl

    from agent.uplink.config import UplinkConfig

DEFAULT_PATH = Path("/etc/gate-agent/agent.toml")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_REQUIRED: Any = dataclasses.MISSING
#: set while ``gate-agent enroll`` loads the config (see :func:`load_config`)
_ENROLLING: contextvars.ContextVar[bool] = contextvars.ContextVar("enrolling", default=False)

#: files a check-in may read (ICAO 9303-10 LDS: EF.COM, EF.SOD, DG1..DG16)
CHIP_FILES = ("com", "sod", *(f"dg{n}" for n in range(1, 17)))
OUTPUT_KINDS = ("log", "recorder", "gpio", "screen", "kiosk")
SPEECH_MODES = ("off", "espeak", "recorded")  # agent.kiosk.speech.MODES
SPEECH_VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south")  # espeak-ng's Vietnamese: northern, central, southern
BROKER_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}  # scheme -> TLS


def key(
    default: Any = _REQUIRED,
    doc: str = "",
    *,
    enrolled: bool = False,  # a file `gate-agent enroll` makes: it may be missing while the terminal enrols
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    path: str | None = None,  # "abs": an absolute path; "dir" / "file": an absolute path that must exist
    example: str | None = None,  # the value shown (commented out) in the example when the default is empty
) -> Any:
    """One key of the schema: a dataclass field whose metadata says what a valid value is."""
    meta = {"doc": doc, "min": min, "max": max, "choices": choices, "path": path, "example": example,
            "enrolled": enrolled}
    if isinstance(default, list):
        items = list(default)
        return field(default_factory=lambda: list(items), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TerminalConfig:
    facility_id: str = key(doc="required: the facility's insurance code, e.g. \"01001\"", example="01001")
    terminal_id: str = key(doc="required: unique within the facility; the TLS client certificate names it",
                           example="gate-1")  # fmt: skip
    state_dir: str = key("/var/lib/gate-agent", "queue, caches, keys (the service's StateDirectory)", path="abs")
    queue_capacity: int = key(100_000, "unacknowledged events kept; when full, new check-ins are refused", min=1)
    queue_key: str = key("", "the key file sealing the queue and the eligibility cache, outside state_dir (\"\" = the "
                             "systemd credential \"queue-key\" when present, else state_dir/queue/key, which the "
                             "doctor warns about); see agent/store/keysource.py", path="abs")  # fmt: skip


@dataclass(frozen=True)
class ReaderConfig:
    name: str = key("", "PC/SC reader name substring (\"\" = the first reader)")
    profile: str = key("", "firmware_profiles/<profile>.toml: APDU size, extended length (\"\" = generic)")
    chunk_size: int = key(0, "bytes per READ BINARY (0 = the profile's, or 223)", min=0, max=65535)
    extended_length: bool = key(True, "use extended-length APDUs when the reader's profile allows them")
    trust_dir: str = key("", "CSCA certificates, CRLs, master lists (\"\" = <state_dir>/trust, where the hub's "
                             "trust updates go); must exist when set", path="dir")  # fmt: skip
    files: list[str] = key(["dg1", "dg13", "dg14", "dg15"], "what a check-in reads (no face image, dg2, unless "
                                                            "needed)", choices=CHIP_FILES)
    terminal_credentials: str = key("", "EAC: directory with the CV certificate chain (*.cvcert) and terminal.key "
                                        "(\"\" = none: the chip's fingerprints, DG3, stay closed)",
                                    path="abs", example="/var/lib/gate-agent/terminal")  # fmt: skip


@dataclass(frozen=True)
class FingerConfig:
    enabled: bool = key(False, "match the patient's finger against the chip's DG3")
    url: str = key("", "a USB sensor through libfprint: fprint:// (first device) or fprint://DRIVER, matched on "
                   "this terminal; a ZhianTec module: /dev/ttyUSB0, a pty path or socket://HOST:PORT (required when "
                   "enabled)", example="fprint://")  # fmt: skip
    profile: str = key("r307", "firmware_profiles/<profile>.toml of the module (r307, r503, as608, zfm20)")
    threshold: int = key(50, "module path: the module's match score at or above which the finger matches",
                         min=0, max=1000)  # fmt: skip
    host_threshold: int = key(30, "USB path: Bozorth3 score at or above which the finger matches (calibrated at "
                              "FMR 0.01 %, docs/fingerprint.md)", min=1, max=1000)  # fmt: skip
    negotiate: bool = key(True, "module path: raise the UART to the profile's fast_baud and fast_packet_size")


@dataclass(frozen=True)
class ScannersConfig:
    mrz_url: str = key("", "OCR reader sending MRZ lines (device, pty or socket://HOST:PORT)")
    mrz_profile: str = key("", "firmware_profiles/<profile>.toml of the MRZ reader (\"\" = 9600 baud)")
    qr_url: str = key("", "QR/barcode scanner (CCCD front QR, or a typed ID number)")
    qr_profile: str = key("", "firmware_profiles/<profile>.toml of the QR scanner (\"\" = 9600 baud)")


@dataclass(frozen=True)
class EligibilityConfig:
    max_age_hours: float = key(24.0, "an older cache makes offline decisions provisional", min=0.01)
    online_timeout: float = key(1.5, "seconds to wait for the hub's answer when connected", min=0.01, max=60)


@dataclass(frozen=True)
class TimeoutsConfig:
    keys: float = key(30.0, "seconds: card on the reader, waiting for the QR/MRZ or the attendant", min=0.01)
    card: float = key(30.0, "seconds: keys known, waiting for the card", min=0.01)
    read: float = key(20.0, "seconds: the absolute deadline of one chip read", min=0.01)
    finger: float = key(15.0, "seconds: finger placement, capture and match", min=0.01)
    card_removal: float = key(20.0, "seconds: waiting for the patient to take the card", min=0.01)


@dataclass(frozen=True)
class OutputsConfig:
    kinds: list[str] = key(["log"], "log | recorder | gpio | screen | kiosk (gpio needs python3-libgpiod; kiosk: the "
                                    "patient's page, for the gate's own browser)", choices=OUTPUT_KINDS)
    recorder_path: str = key("", "JSON lines of every outcome shown (required for \"recorder\")", path="abs")
    gpio_chip: str = key("/dev/gpiochip0", "the GPIO chip of the relay and LEDs")
    gpio_relay_line: int = key(17, "line (offset on the chip) of the gate relay", min=0, max=1023)
    gpio_green_line: int = key(27, "line of the green LED", min=0, max=1023)
    gpio_red_line: int = key(22, "line of the red LED", min=0, max=1023)
    relay_seconds: float = key(3.0, "seconds the relay stays closed after an admission", min=0.1, max=60)
    kiosk_bind: str = key("127.0.0.1", "address of the kiosk page (kinds has \"kiosk\"): a loopback address, for the "
                                       "gate's own browser; another one needs kiosk_allow_remote")  # fmt: skip
    kiosk_allow_remote: bool = key(False, "serve the kiosk page on a kiosk_bind that is not loopback (a screen on "
                                          "another machine): the network sees given names and outcomes")  # fmt: skip
    kiosk_port: int = key(8080, "TCP port of the kiosk page (0 = any free port)", min=0, max=65535)
    kiosk_hold: float = key(8.0, "seconds an outcome stays on the page, counting down, before it returns to ready",
                            min=0.1, max=600)  # fmt: skip
    backlog_warn: int = key(50, "unsent check-ins from which the page shows a backlog", min=1)
    speech: str = key("off", "spoken prompts: off | espeak (espeak-ng, Vietnamese) | recorded "
                             "(recorded_dir/<code>.wav, played with aplay; espeak-ng for a prompt without a recording)",
                      choices=SPEECH_MODES)  # fmt: skip
    speech_voice: str = key("vi", "espeak-ng voice: vi (northern), vi-vn-x-central, vi-vn-x-south",
                            choices=SPEECH_VOICES)  # fmt: skip
    recorded_dir: str = key("", "directory of the recorded prompts (required for speech = \"recorded\")", path="dir",
                            example="/var/lib/gate-agent/prompts")  # fmt: skip


@dataclass(frozen=True)
class DeskConfig:
    """The attendant's desk page (agent/desk): referred patients and manual entry, per-attendant logins."""

    enabled: bool = key(False, "serve the attendant's desk page: referred patients, manual entry, one login each")
    bind: str = key("127.0.0.1", "address to serve the desk on: the facility LAN's, or loopback for this terminal "
                                 "only; off loopback use tls_cert and tls_key")  # fmt: skip
    port: int = key(8081, "TCP port of the desk page (0 = any free port)", min=0, max=65535)
    users_file: str = key("", "attendants' scrypt password hashes, written by gate-agent desk passwd NAME (mode 0600, "
                              "owned by the service user); required when enabled", path="abs",
                          example="/etc/gate-agent/desk-users")  # fmt: skip
    tls_cert: str = key("", "PEM certificate of the desk's HTTPS (\"\" = plain HTTP)", path="file",
                        example="/etc/gate-agent/tls/desk.pem")  # fmt: skip
    tls_key: str = key("", "the desk certificate's private key", path="file", example="/etc/gate-agent/tls/desk.key")
    session_minutes: int = key(480, "minutes a login lasts at most (one shift)", min=1, max=1440)
    entry_wait: float = key(30.0, "seconds the desk waits for the outcome of a manual entry (the card must be read)",
                            min=0.1, max=600)  # fmt: skip


@dataclass(frozen=True)
class UplinkSettings:
    broker_urls: list[str] = key([], "mqtts://HOST:PORT (TLS) or mqtt://HOST:PORT, in failover order; "
                                     "none: check-ins stay queued here",
                                 example='["mqtts://hub.clinic.lan:8883"]')
    username: str = key("", "MQTT user name (\"\" = none; with client certificates the broker may use the CN)")
    password: str = key("", "MQTT password (\"\" = none); sent in clear over mqtt://")
    tls_ca: str = key("", "CA certificate(s) the broker's certificate must chain to (\"\" = the system's)",
                      path="file", enrolled=True, example="/etc/gate-agent/tls/ca.pem")  # fmt: skip
    tls_cert: str = key("", "this terminal's client certificate (its CN is the terminal id)", path="file",
                        enrolled=True, example="/etc/gate-agent/tls/gate-1.pem")  # fmt: skip
    tls_key: str = key("", "the client certificate's private key", path="file", enrolled=True,
                       example="/etc/gate-agent/tls/gate-1.key")  # fmt: skip
    protocol: str = key("auto", "MQTT version: 5, 3.1.1 or auto (5, falling back to 3.1.1)",
                        choices=("auto", "5", "3.1.1"))  # fmt: skip
    keepalive: int = key(30, "seconds between MQTT pings", min=5, max=3600)
    inflight: int = key(64, "events sent and not yet acknowledged by the hub, at most", min=1, max=10_000)
    rate: float = key(500.0, "events per second, at most", min=0.1)
    batch: int = key(64, "events per message, at most, while a backlog drains (one signature for all; live events "
                         "go alone); 1 = one event per message, for a hub that reads no batches", min=1,
                     max=1000)  # fmt: skip
    ack_timeout: float = key(30.0, "seconds before an unacknowledged event is sent again", min=0.1)
    backoff_min: float = key(1.0, "seconds before the first reconnect", min=0.01)
    backoff_max: float = key(60.0, "seconds between reconnects, at most", min=0.01)
    heartbeat: float = key(30.0, "seconds between status messages (and watchdog-safe main loop turns)", min=0.1)
    allow_plaintext: bool = key(False, "accept mqtt:// (no TLS) broker URLs: for a simulator or a test, never in "
                                       "the field")  # fmt: skip
    hub_key: str = key("", "the hub's message-signing public key pinned at enrolment (\"\" = state_dir/hub.pub); "
                           "without it every hub message is refused", path="abs")  # fmt: skip
    clock_skew: float = key(300.0, "seconds a hub message or eligibility data may be dated ahead of this "
                                   "terminal's clock", min=0)  # fmt: skip
    persistent_session: bool = key(False, "keep the broker session across reconnects, so acks and commands sent while "
                                          "the link is down wait in the broker: true on a broker cluster "
                                          "(docs/deploy/large.md)")  # fmt: skip
    session_expiry: int = key(3600, "seconds the broker keeps a persistent session after the link is lost (MQTT 5; "
                                    "3.1.1 brokers keep it until they drop it)", min=1, max=4_294_967_295)  # fmt: skip

    @property
    def tls(self) -> bool:
        return any(BROKER_SCHEMES.get(urlsplit(u).scheme, False) for u in self.broker_urls)


@dataclass(frozen=True)
class Config:
    path: Path
    terminal: TerminalConfig
    reader: ReaderConfig
    finger: FingerConfig
    scanners: ScannersConfig
    eligibility: EligibilityConfig
    timeouts: TimeoutsConfig
    outputs: OutputsConfig
    uplink: UplinkSettings
    desk: DeskConfig
    policy: Mapping[str, Any]  # finding -> action; validated by agent.app.policy

    @property
    def state_dir(self) -> Path:
        return Path(self.terminal.state_dir)

    @property
    def trust_dir(self) -> Path:
        return Path(self.reader.trust_dir) if self.reader.trust_dir else self.state_dir / "trust"

    @property
    def hub_key_path(self) -> Path:
        """Where the hub's message-signing key is pinned: ``uplink.hub_key``, or ``state_dir/hub.pub``."""
        return Path(self.uplink.hub_key) if self.uplink.hub_key else self.state_dir / "hub.pub"

    def as_dict(self) -> dict[str, Any]:
        """The effective configuration (defaults filled in), as ``config check --json`` prints it."""
        out: dict[str, Any] = {"config": str(self.path)}
        for name in SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        out["reader"]["trust_dir"] = str(self.trust_dir)
        if out["uplink"]["password"]:
            out["uplink"]["password"] = "***"  # noqa: S105 - masked, not a password
        out["policy"] = dict(self.policy)
        return out


SECTIONS: dict[str, type] = {
    "terminal": TerminalConfig,
    "reader": ReaderConfig,
    "finger": FingerConfig,
    "scanners": ScannersConfig,
    "eligibility": EligibilityConfig,
    "timeouts": TimeoutsConfig,
    "outputs": OutputsConfig,
    "uplink": UplinkSettings,
    "desk": DeskConfig,
}

#: what a SIGHUP applies to the running gate; every other table is read once, at start
LIVE_SECTIONS = ("policy", "timeouts", "outputs")


def restart_needed(running: Config, fresh: Config) -> list[str]:
    """The tables that differ between the config the daemon started with and ``fresh`` but that a reload cannot
    apply (devices, keys, the uplink ...): they take effect only after a restart."""
    old, new = running.as_dict(), fresh.as_dict()
    return [name for name in SECTIONS if name not in LIVE_SECTIONS and old[name] != new[name]]
#: keys that existed once and were never used; naming them explains the error
REMOVED = {
    "timeouts.outcome": "the outcome stays shown until the next patient",
    "finger.capture_timeout": "timeouts.finger bounds the capture and match",
}


_TYPE_NAMES: dict[object, str] = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def _type_name(hint: object) -> str:
    return _TYPE_NAMES.get(hint, "a list")


def _check_value(value: object, hint: object, meta: Mapping[str, Any], where: str) -> object:
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        value = float(value)
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {_type_name(hint)}, got {value!r}")
    elif typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(v, item, meta, f"{where}[{i}]") for i, v in enumerate(value)]
    else:  # pragma: no cover - a schema mistake, caught by the tests
        raise ConfigError(f"{where}: unsupported type {hint!r}")
    low, high = meta.get("min"), meta.get("max")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low:g}" if high is None else f"between {low or 0:g} and {high:g}"
            raise ConfigError(f"{where}: must be {bounds}, not {value!r}")
    choices = meta.get("choices")
    if choices is not None and isinstance(value, str) and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    kind = meta.get("path")
    if kind and isinstance(value, str) and value:
        p = Path(value)
        if not p.is_absolute():
            raise ConfigError(f"{where}: {value!r} must be an absolute path")
        if kind == "dir" and not p.is_dir():
            raise ConfigError(f"{where}: directory {value} does not exist")
        if kind == "file" and not p.is_file() and not (meta.get("enrolled") and _ENROLLING.get()):
            raise ConfigError(f"{where}: file {value} does not exist")
    return value


def _section(cls: type[Any], table: object, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in sorted(table):
        if name not in fields:
            why = REMOVED.get(f"{where}.{name}")
            if why:
                raise ConfigError(f"{where}.{name}: removed (never used: {why}); delete the line")
            raise ConfigError(f"{where}.{name}: unknown key (known: {', '.join(fields)})")
    values: dict[str, object] = {}
    for name, f in fields.items():
        if name in table:
            values[name] = _check_value(table[name], hints[name], f.metadata, f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    return cls(**values)


def _check_serial_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if "://" not in url:
        if not url.startswith("/"):
            raise ConfigError(f"{where}: {url!r} must be a device path (/dev/ttyUSB0) or socket://HOST:PORT")
        return
    if parts.scheme == "socket":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise ConfigError(f"{where}: {url!r} needs a host and a port (socket://HOST:PORT)")
    elif parts.scheme not in ("loop", "rfc2217", "spy"):
        raise ConfigError(f"{where}: {url!r}: unknown scheme {parts.scheme!r} (a device path or socket://HOST:PORT)")


def _check_broker_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in BROKER_SCHEMES:
        raise ConfigError(f"{where}: {url!r} is not mqtts://HOST[:PORT] or mqtt://HOST[:PORT]")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{where}: {url!r} has a bad port") from None
    if not parts.hostname:
        raise ConfigError(f"{where}: {url!r} has no host")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"{where}: {url!r}: a broker URL has no path or query")


def _validate(cfg: Config) -> None:
    for name in ("facility_id", "terminal_id"):
        value = getattr(cfg.terminal, name)
        if not _ID.match(value):
            raise ConfigError(f"terminal.{name}: {value!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if cfg.terminal.queue_key:
        from agent.store.keysource import beside_state

        if beside_state(Path(cfg.terminal.queue_key), cfg.state_dir):
            raise ConfigError(f"terminal.queue_key: {cfg.terminal.queue_key} is inside the state directory "
                              f"{cfg.state_dir}; keep the key apart from the data it protects")  # fmt: skip
    if len(set(cfg.reader.files)) != len(cfg.reader.files):
        raise ConfigError("reader.files: lists a file twice")
    if not {"dg1", "dg13"} & set(cfg.reader.files):
        raise ConfigError("reader.files: needs dg1 or dg13: a check-in takes the patient's identity from one of them")
    if cfg.finger.enabled:
        if not cfg.finger.url:
            raise ConfigError("finger.url: required when finger.enabled is true")
        if cfg.finger.url.startswith("fprint:"):
            from agent.bio.sensor import SensorError, parse_url

            try:
                parse_url(cfg.finger.url)
            except SensorError as exc:
                raise ConfigError(f"finger.url: {exc}") from None
            from agent.bio.matcher import available

            missing = available()  # a USB sensor's image is matched on this host: run needs the matcher
            if missing is not None:
                raise ConfigError(f"finger.url: {cfg.finger.url} needs the host fingerprint matcher, which does not "
                                  f"load: {missing} (run ./run setup or reinstall the package)")  # fmt: skip
        else:
            _check_serial_url(cfg.finger.url, "finger.url")
    for name in ("mrz_url", "qr_url"):
        url = getattr(cfg.scanners, name)
        if url:
            _check_serial_url(url, f"scanners.{name}")
    o = cfg.outputs
    if len(set(o.kinds)) != len(o.kinds):
        raise ConfigError("outputs.kinds: lists an output twice")
    if "recorder" in o.kinds and not o.recorder_path:
        raise ConfigError("outputs.recorder_path: required when outputs.kinds has 'recorder'")
    if "gpio" in o.kinds:
        if importlib.util.find_spec("gpiod") is None:
            raise ConfigError("outputs.kinds: 'gpio' needs the gpiod Python module (apt install python3-libgpiod)")
        lines = [o.gpio_relay_line, o.gpio_green_line, o.gpio_red_line]
        if len(set(lines)) != 3:
            raise ConfigError("outputs.gpio_relay_line: the relay, green and red lines must differ")
    if not is_loopback(o.kiosk_bind) and not o.kiosk_allow_remote:
        raise ConfigError(f"outputs.kiosk_bind: {o.kiosk_bind!r} is not a loopback address; the kiosk page is for the "
                          "gate's own browser (or set outputs.kiosk_allow_remote = true)")  # fmt: skip
    if o.speech == "recorded" and not o.recorded_dir:
        raise ConfigError("outputs.recorded_dir: required when outputs.speech is 'recorded'")
    if o.speech != "off" and shutil.which("espeak-ng") is None:  # recorded speech falls back to it too
        raise ConfigError(f"outputs.speech: {o.speech!r} needs espeak-ng (apt install espeak-ng)")
    _validate_uplink(cfg.uplink)
    _check_hub_key(cfg)
    _validate_desk(cfg.desk)


def _check_hub_key(cfg: Config) -> None:
    """The pinned hub key loads as the uplink will load it at start (a missing one is refused there, not fatal)."""
    if not cfg.uplink.broker_urls or _ENROLLING.get():  # enrolment pins the key
        return
    from agent.uplink.hubmsg import HubKeyError, load_public_key

    pin = cfg.hub_key_path
    if pin.exists():
        try:
            load_public_key(pin)
        except HubKeyError as exc:
            raise ConfigError(f"uplink.hub_key: {exc}") from None


def is_loopback(host: str) -> bool:
    """``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _validate_desk(d: DeskConfig) -> None:
    if d.enabled and not d.users_file:
        raise ConfigError("desk.users_file: required when desk.enabled is true (gate-agent desk passwd NAME --users "
                          "FILE makes it)")  # fmt: skip
    if bool(d.tls_cert) != bool(d.tls_key):
        missing = "tls_key" if d.tls_cert else "tls_cert"
        raise ConfigError(f"desk.{missing}: tls_cert and tls_key go together (the desk's certificate and its key)")
    if d.tls_cert:
        import ssl

        _load_cert_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), "desk", d.tls_cert, d.tls_key)


def _validate_uplink(u: UplinkSettings) -> None:
    for i, url in enumerate(u.broker_urls):
        _check_broker_url(url, f"uplink.broker_urls[{i}]")
    if u.backoff_max < u.backoff_min:
        raise ConfigError("uplink.backoff_max: must not be below uplink.backoff_min")
    if bool(u.tls_cert) != bool(u.tls_key):
        missing = "tls_key" if u.tls_cert else "tls_cert"
        raise ConfigError(f"uplink.{missing}: tls_cert and tls_key go together (the client certificate and its key)")
    if (u.tls_ca or u.tls_cert) and not u.tls:
        raise ConfigError("uplink.tls_ca: TLS files are set but no broker URL is mqtts://: they would be ignored")
    plain = plaintext_brokers(u)
    if plain and not u.allow_plaintext:
        raise ConfigError(f"uplink.broker_urls: {plain[0]!r} is plain MQTT without TLS; use mqtts:// "
                          "(or set uplink.allow_plaintext = true for a simulator)")  # fmt: skip
    if not _ENROLLING.get():  # enrolment makes these files; everything else loads them as the uplink will
        _check_tls_files(u)
    if u.password and not u.username:
        raise ConfigError("uplink.username: required when uplink.password is set")


def plaintext_brokers(u: UplinkSettings) -> list[str]:
    """The broker URLs without TLS (mqtt://, tcp://): refused unless ``uplink.allow_plaintext`` is true."""
    return [url for url in u.broker_urls if not BROKER_SCHEMES.get(urlsplit(url).scheme, True)]


def uplink_settings(table: Mapping[str, Any]) -> UplinkSettings:
    """An ``[uplink]`` table on its own (tools that run an uplink without a config file), by the same schema."""
    settings: UplinkSettings = _section(UplinkSettings, dict(table), "uplink")
    _validate_uplink(settings)
    return settings


def uplink_config(table: Mapping[str, Any], facility_id: str, terminal_id: str) -> UplinkConfig:
    """The uplink's own settings from an ``[uplink]`` table validated by the schema (tools, tests, benches)."""
    from agent.uplink.config import UplinkConfig

    return UplinkConfig.from_settings(uplink_settings(table), facility_id, terminal_id)


def _check_tls_files(u: UplinkSettings) -> None:
    """Load the TLS files the way the uplink will (an ssl context), so a bad file fails here, not in its thread."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if u.tls_ca:
        try:
            context.load_verify_locations(cafile=u.tls_ca)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"uplink.tls_ca: {u.tls_ca} is not a PEM CA certificate file: {exc}") from None
    if u.tls_cert:
        _load_cert_chain(context, "uplink", u.tls_cert, u.tls_key)


def _load_cert_chain(context: ssl.SSLContext, section: str, cert: str, key: str) -> None:
    """Load a certificate and its key as the service will; a ConfigError naming ``section.tls_key`` otherwise."""
    import ssl

    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(f"{section}.tls_key: {cert} and {key} are not a PEM certificate and its "
                          f"private key: {exc.reason or exc}") from None  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"{section}.tls_key: cannot read {key}: {exc.strerror or exc}") from None


def _check_profiles(cfg: Config) -> None:
    # device profiles are data files: a mistake shows at start, not at the first patient
    from agent import profiles

    wanted = [
        (cfg.reader.profile, "reader", "reader.profile"),
        (cfg.scanners.mrz_profile, "scanner", "scanners.mrz_profile"),
        (cfg.scanners.qr_profile, "scanner", "scanners.qr_profile"),
        (cfg.finger.profile, "fingerprint", "finger.profile"),  # checked even when disabled: enabling it must work
    ]
    for name, kind, where in wanted:
        if name:
            try:
                profiles.load(name, kind)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None


def parse_config(data: Mapping[str, Any], path: Path = Path("<config>")) -> Config:
    """Validate a decoded TOML document; every error names the file and the key."""
    prefix = f"{path}: "
    known = [*SECTIONS, "policy"]
    try:
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown table (known: {', '.join(known)})")
        if "terminal" not in data:
            raise ConfigError("terminal: required table is missing")
        sections = {name: _section(cls, data.get(name, {}), name) for name, cls in SECTIONS.items()}
        policy = data.get("policy", {})
        if not isinstance(policy, dict):
            raise ConfigError("policy: must be a table")
        cfg = Config(path=path, policy=policy, **sections)
        _validate(cfg)
        _check_profiles(cfg)
        from agent.app.policy import Policy

        Policy.from_config(cfg.policy)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    return cfg


def load_config(path: Path | str, *, enrolling: bool = False) -> Config:
    """Read and validate the config file; every problem is a ConfigError naming the file and key.

    ``enrolling``: the files ``gate-agent enroll`` makes (the TLS key, certificate and CA) may be missing yet.
    """
    path = Path(path)
    token = _ENROLLING.set(enrolling)
    try:
        return _load(path)
    finally:
        _ENROLLING.reset(token)


def _load(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)


def warnings(cfg: Config, policy: Mapping[str, Any] | None = None) -> list[str]:
    """Legal but unsafe (or surprising) choices, each naming the key: ``config check`` prints them."""
    from agent.app.policy import relaxations

    # first: admitting on a fail-closed finding lets a borrowed or cloned card in; ``policy`` is the table in
    # force when the caller knows it (the config's [policy] with the hub's last push over it)
    table = dict(cfg.policy if policy is None else policy)
    out: list[str] = relaxations(table)
    u = cfg.uplink
    if not u.broker_urls:
        out.append("uplink.broker_urls: none configured: check-ins stay queued on this terminal")
    for url in plaintext_brokers(u):  # only with allow_plaintext = true
        out.append(f"uplink.broker_urls: {url} is not TLS (uplink.allow_plaintext = true): check-ins and "
                   "credentials cross the network in clear")  # fmt: skip
    if u.tls and not u.tls_cert:
        out.append("uplink.tls_cert: no client certificate: the broker cannot tell this terminal from another")
    if not cfg.reader.trust_dir and not cfg.trust_dir.is_dir():
        out.append(f"reader.trust_dir: {cfg.trust_dir} does not exist yet: passive authentication fails (patients "
                   "are refused) until trust anchors are installed")  # fmt: skip
    creds = cfg.reader.terminal_credentials
    if cfg.finger.enabled and not creds:
        out.append("reader.terminal_credentials: not set: fingerprints cannot be matched against the chip's DG3")
    elif creds and not Path(creds).is_dir():
        out.append(f"reader.terminal_credentials: {creds} does not exist yet: DG3 stays closed until the hub "
                   "installs credentials")  # fmt: skip
    if "dg3" in cfg.reader.files and not creds:
        out.append("reader.files: dg3 without reader.terminal_credentials: the chip refuses it")
    if "dg2" in cfg.reader.files:
        out.append("reader.files: dg2 is the face image: read it only when the gate needs it")
    if not any(k in cfg.outputs.kinds for k in ("gpio", "screen", "kiosk")):
        out.append("outputs.kinds: neither gpio nor screen nor kiosk: nobody at the gate sees the outcome")
    o = cfg.outputs
    if "kiosk" in o.kinds and not is_loopback(o.kiosk_bind):  # only with kiosk_allow_remote = true
        out.append(f"outputs.kiosk_bind: {o.kiosk_bind} is not loopback (outputs.kiosk_allow_remote = true): the "
                   "network sees the patients' given names, masked ID numbers and outcomes")  # fmt: skip
    d = cfg.desk
    if d.enabled and not Path(d.users_file).is_file():
        out.append(f"desk.users_file: {d.users_file} does not exist yet: nobody can log in to the desk until "
                   "gate-agent desk passwd NAME adds an attendant")  # fmt: skip
    if d.enabled and not d.tls_cert and not is_loopback(d.bind):
        out.append(f"desk.tls_cert: the desk on {d.bind} without TLS: attendants' passwords and patients' data cross "
                   "the network in clear")  # fmt: skip
    from agent.app.policy import ACTIONS, DEFAULT_ACTIONS, FAIL_CLOSED, Outcome

    fail_closed = {f.value.lower() for f in FAIL_CLOSED}
    for finding, action in sorted(table.items()):
        default = next((v for f, v in DEFAULT_ACTIONS.items() if f.value.lower() == finding), None)
        if default is None or action not in ACTIONS:
            continue
        if finding in fail_closed and ACTIONS[action].severity < Outcome.REFER_DESK.severity:
            continue  # said first, by relaxations()
        if ACTIONS[action].severity < ACTIONS[default].severity:
            out.append(f"policy.{finding}: {action!r} is more lenient than the default {default!r}")
    return out


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_example() -> str:
    """``docs/agent.example.toml``: every key with its default and meaning, from the schema itself."""
    from agent.app.policy import DEFAULT_ACTIONS

    lines = [
        "# gate-agent configuration: /etc/gate-agent/agent.toml on a terminal.",
        "# Check it with:  gate-agent config check   (then: gate-agent doctor)",
        "# Every key is optional unless marked \"required\"; the value shown is the default.  A commented",
        "# line shows an example value for a key whose default is empty.  Generated from agent/config.py.",
    ]
    for name, cls in SECTIONS.items():
        lines += ["", f"[{name}]"]
        for f in dataclasses.fields(cls):
            meta = f.metadata
            lines += [f"# {text}" for text in textwrap.wrap(meta["doc"], 100)]
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                lines.append(f"# {f.name} = {_toml(meta['example'])}")
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            example = meta.get("example")
            if example is not None and not default:
                lines.append(f"# {f.name} = {example if example.startswith('[') else _toml(example)}")
            else:
                lines.append(f"{f.name} = {_toml(default)}")
    lines += ["", "[policy]  # finding = admit | admit_provisional | refer_desk | refuse (the hub may push changes)"]
    lines += [f"{finding.value.lower()} = {_toml(action)}" for finding, action in DEFAULT_ACTIONS.items()]
    return "\n".join(lines) + "\n"
