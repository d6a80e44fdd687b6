"""The terminal's one configuration file (TOML), validated at start with errors that name the key.

Field terminals read ``/etc/gate-agent/agent.toml``; tests and the simulator pass
``--config FILE``.  Each table maps onto a frozen dataclass below; a key we do not
know, a wrong type or an impossible value is a :class:`~agent.errors.ConfigError`
whose message starts with ``FILE: table.key``.  ``[uplink]`` and ``[policy]`` are
validated by their own layers (:mod:`agent.uplink`, :mod:`agent.app.policy`) but
through the same entry point, so ``gate-agent config check`` catches everything.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import ConfigError

DEFAULT_PATH = Path("/etc/gate-agent/agent.toml")

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class TerminalConfig:
    facility_id: str  # the facility's insurance code, e.g. "01001"
    terminal_id: str  # unique within the facility, e.g. "gate-1"
    state_dir: str = "/var/lib/gate-agent"
    queue_capacity: int = 100_000  # unacknowledged events kept; when full, new check-ins are refused
    #: the key sealing the queue and the eligibility cache: a file outside state_dir ("" = a systemd credential
    #: "queue-key" when present, else state_dir/queue/key); see agent/store/keysource.py
    queue_key: str = ""


@dataclass(frozen=True)
class ReaderConfig:
    name: str = ""  # PC/SC reader name substring; "" = the first reader
    profile: str = ""  # firmware_profiles/<profile>.toml; "" = generic
    chunk_size: int = 0  # bytes per READ BINARY; 0 = the profile's (or 223)
    extended_length: bool = True
    #: CSCA certificates, CRLs, master lists; in the state directory so that the hub can update them
    #: (the service's /etc is read-only under ProtectSystem=strict)
    trust_dir: str = "/var/lib/gate-agent/trust"
    files: list[str] = field(default_factory=lambda: ["dg1", "dg13", "dg14", "dg15"])
    #: Terminal Authentication credentials (*.cvcert chain, terminal.key); "" = none: DG3 (fingerprints) stays
    #: closed.  Keep them under the state directory (e.g. /var/lib/gate-agent/terminal) for hub updates.
    terminal_credentials: str = ""


@dataclass(frozen=True)
class FingerConfig:
    enabled: bool = False
    url: str = ""  # /dev/ttyUSB0, socket://127.0.0.1:PORT, a pty path ...
    profile: str = "r307"
    threshold: int = 50  # match score at or above which the finger matches
    capture_timeout: float = 15.0


@dataclass(frozen=True)
class ScannersConfig:
    mrz_url: str = ""
    mrz_profile: str = ""
    qr_url: str = ""
    qr_profile: str = ""


@dataclass(frozen=True)
class EligibilityConfig:
    max_age_hours: float = 24.0  # a cache older than this is stale: decisions become provisional
    online_timeout: float = 1.5  # seconds to wait for the hub's answer when connected


@dataclass(frozen=True)
class TimeoutsConfig:
    keys: float = 30.0  # card on the reader, waiting for the QR/MRZ or the attendant
    card: float = 30.0  # keys known, waiting for the card
    read: float = 20.0  # whole chip read
    finger: float = 15.0  # finger placement and match
    outcome: float = 5.0  # outcome shown before the gate returns to idle
    card_removal: float = 20.0  # waiting for the patient to take the card


@dataclass(frozen=True)
class OutputsConfig:
    kinds: list[str] = field(default_factory=lambda: ["log"])  # log | recorder | gpio | screen
    recorder_path: str = ""  # JSON lines of every outcome shown (simulator, audits)
    gpio_chip: str = "/dev/gpiochip0"
    gpio_relay_line: int = 17
    gpio_green_line: int = 27
    gpio_red_line: int = 22
    relay_seconds: float = 3.0


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
    uplink: Mapping[str, Any]  # validated by agent.uplink
    policy: Mapping[str, Any]  # validated by agent.app.policy

    @property
    def state_dir(self) -> Path:
        return Path(self.terminal.state_dir)


_SECTIONS: dict[str, type] = {
    "terminal": TerminalConfig,
    "reader": ReaderConfig,
    "finger": FingerConfig,
    "scanners": ScannersConfig,
    "eligibility": EligibilityConfig,
    "timeouts": TimeoutsConfig,
    "outputs": OutputsConfig,
}
_RAW_SECTIONS = ("uplink", "policy")
_OUTPUT_KINDS = {"log", "recorder", "gpio", "screen"}

T = TypeVar("T")


def _check_type(value: object, hint: object, where: str) -> object:
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise ConfigError(f"{where}: expected {'true/false' if hint is bool else 'a string'}, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{where}: unsupported optional field")  # no optional fields today
    raise ConfigError(f"{where}: unsupported type {hint!r}")


def _section(cls: type[T], table: object, where: str) -> T:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(fields)})")
    values: dict[str, object] = {}
    for name, f in fields.items():
        if name in table:
            values[name] = _check_type(table[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    return cls(**values)


def _validate(cfg: Config, prefix: str) -> None:
    for key in ("facility_id", "terminal_id"):
        value = getattr(cfg.terminal, key)
        if not _ID.match(value):
            raise ConfigError(f"{prefix}terminal.{key}: {value!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if cfg.terminal.queue_capacity < 1:
        raise ConfigError(f"{prefix}terminal.queue_capacity: must be at least 1")
    if cfg.reader.chunk_size and not 1 <= cfg.reader.chunk_size <= 65535:
        raise ConfigError(f"{prefix}reader.chunk_size: must be between 1 and 65535")
    if cfg.finger.enabled and not cfg.finger.url:
        raise ConfigError(f"{prefix}finger.url: required when finger.enabled is true")
    if not 0 <= cfg.finger.threshold <= 1000:
        raise ConfigError(f"{prefix}finger.threshold: must be between 0 and 1000")
    for name in ("keys", "card", "read", "finger", "outcome", "card_removal"):
        if getattr(cfg.timeouts, name) <= 0:
            raise ConfigError(f"{prefix}timeouts.{name}: must be positive")
    if cfg.eligibility.max_age_hours <= 0 or cfg.eligibility.online_timeout <= 0:
        raise ConfigError(f"{prefix}eligibility: max_age_hours and online_timeout must be positive")
    for kind in cfg.outputs.kinds:
        if kind not in _OUTPUT_KINDS:
            raise ConfigError(
                f"{prefix}outputs.kinds: unknown output {kind!r} (known: {', '.join(sorted(_OUTPUT_KINDS))})"
            )
    if "recorder" in cfg.outputs.kinds and not cfg.outputs.recorder_path:
        raise ConfigError(f"{prefix}outputs.recorder_path: required when outputs.kinds has 'recorder'")


def parse_config(data: Mapping[str, Any], path: Path = Path("<config>")) -> Config:
    """Validate a decoded TOML document."""
    prefix = f"{path}: "
    unknown = sorted(set(data) - set(_SECTIONS) - set(_RAW_SECTIONS))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown table (known: {', '.join([*_SECTIONS, *_RAW_SECTIONS])})")
    if "terminal" not in data:
        raise ConfigError(f"{prefix}terminal: required table is missing")
    try:
        sections: dict[str, object] = {name: _section(cls, data.get(name, {}), name) for name, cls in _SECTIONS.items()}
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    raw = {}
    for name in _RAW_SECTIONS:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{prefix}{name}: must be a table")
        raw[name] = table
    cfg = Config(path=path, uplink=raw["uplink"], policy=raw["policy"], **sections)  # type: ignore[arg-type]
    _validate(cfg, prefix)
    # device profiles and the policy are checked here, so a mistake shows at start, not at the first patient
    from agent import profiles
    from agent.app.policy import Policy

    wanted = [
        (cfg.reader.profile, "reader", "reader.profile"),
        (cfg.scanners.mrz_profile, "scanner", "scanners.mrz_profile"),
        (cfg.scanners.qr_profile, "scanner", "scanners.qr_profile"),
    ]
    if cfg.finger.enabled:
        wanted.append((cfg.finger.profile, "fingerprint", "finger.profile"))
    for name, kind, key in wanted:
        if name:
            try:
                profiles.load(name, kind)
            except ConfigError as exc:
                raise ConfigError(f"{prefix}{key}: {exc}") from None

    try:
        Policy.from_config(cfg.policy)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    return cfg


def load_config(path: Path | str) -> Config:
    """Read and validate the config file; every problem is a ConfigError naming the file and key."""
    path = Path(path)
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
