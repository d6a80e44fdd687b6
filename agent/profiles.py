"""Device profiles (``firmware_profiles/*.toml``): per-model quirks as data, validated at start.

One file per model, ``kind`` = ``fingerprint``, ``scanner`` or ``reader``.  An
unknown key, a missing one or a value of the wrong type is a ConfigError naming the
file and the key.  Profiles are searched in ``$GATE_AGENT_PROFILES``, then the
``firmware_profiles`` directory of the source tree, then the installed copy
(``<sys.prefix>/share/gate-agent/firmware_profiles``: a pip install, the Debian
package's venv), then ``/usr/share/gate-agent/firmware_profiles``.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from agent.bio.module import ModuleProfile
from agent.errors import ConfigError

SCHEMAS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "fingerprint": {
        "model": str, "baud": int, "address": int, "password": int, "packet_size": int, "template_size": int,
        "capacity": int, "command_timeout": (int, float), "slow_timeout": (int, float), "retries": int,
        "finger_poll": (int, float), "quirks": list, "fast_baud": int, "fast_packet_size": int,
    },
    "scanner": {"model": str, "type": str, "baud": int, "line_timeout": (int, float)},
    "reader": {"model": str, "extended_length": bool, "chunk_size": int, "timeout": (int, float)},
}  # fmt: skip
OPTIONAL = {"quirks", "fast_baud", "fast_packet_size"}


def search_path() -> list[Path]:
    paths = []
    if os.environ.get("GATE_AGENT_PROFILES"):
        paths.append(Path(os.environ["GATE_AGENT_PROFILES"]))
    paths.append(Path(__file__).resolve().parent.parent / "firmware_profiles")
    paths.append(Path(sys.prefix) / "share" / "gate-agent" / "firmware_profiles")
    paths.append(Path("/usr/share/gate-agent/firmware_profiles"))
    return paths


def load_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the profile: {exc}") from None
    kind = data.get("kind")
    if kind not in SCHEMAS:
        raise ConfigError(f"{path}: kind: must be one of {', '.join(SCHEMAS)}, not {kind!r}")
    schema = SCHEMAS[kind]
    for key, value in data.items():
        if key == "kind":
            continue
        if key not in schema:
            raise ConfigError(f"{path}: {key}: unknown key for a {kind} profile (known: {', '.join(schema)})")
        expected = schema[key]
        if isinstance(value, bool) and expected is not bool:
            raise ConfigError(f"{path}: {key}: expected {expected}, got {value!r}")
        if not isinstance(value, expected):
            raise ConfigError(f"{path}: {key}: expected {expected}, got {value!r}")
    missing = [key for key in schema if key not in data and key not in OPTIONAL]
    if missing:
        raise ConfigError(f"{path}: {missing[0]}: required key is missing")
    if kind == "fingerprint":
        if data["packet_size"] not in (32, 64, 128, 256):
            raise ConfigError(f"{path}: packet_size: must be 32, 64, 128 or 256")
        for key in ("baud", "fast_baud"):
            if key in data and (data[key] % 9600 or not 9600 <= data[key] <= 115200):
                raise ConfigError(f"{path}: {key}: must be a multiple of 9600 up to 115200")
        if data.get("fast_packet_size", 32) not in (32, 64, 128, 256):
            raise ConfigError(f"{path}: fast_packet_size: must be 32, 64, 128 or 256")
    if kind == "scanner" and data["type"] not in ("mrz", "qr"):
        raise ConfigError(f"{path}: type: must be mrz or qr")
    if kind == "reader" and not 1 <= data["chunk_size"] <= 65535:
        raise ConfigError(f"{path}: chunk_size: must be 1..65535")
    return data


def find(name: str) -> Path:
    for directory in search_path():
        candidate = directory / f"{name}.toml"
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no device profile named {name!r} (looked in {', '.join(str(p) for p in search_path())})")


def load(name: str, kind: str) -> dict[str, Any]:
    path = find(name)
    data = load_file(path)
    if data["kind"] != kind:
        raise ConfigError(f"{path}: is a {data['kind']} profile, not a {kind} profile")
    return data


def fingerprint_profile(name: str) -> ModuleProfile:
    d = load(name, "fingerprint")
    return ModuleProfile(
        name=name, baud=d["baud"], address=d["address"], password=d["password"], packet_size=d["packet_size"],
        template_size=d["template_size"], capacity=d["capacity"], command_timeout=float(d["command_timeout"]),
        slow_timeout=float(d["slow_timeout"]), retries=d["retries"], finger_poll=float(d["finger_poll"]),
        fast_baud=d.get("fast_baud", 0), fast_packet_size=d.get("fast_packet_size", 0),
    )  # fmt: skip


def check_all(directory: Path | None = None) -> list[str]:
    """Validate every profile (``gate-agent config check`` and the tests use it)."""
    names = []
    if directory is None:  # the shipped set: the source tree's, else the installed copy
        directory = next((d for d in search_path()[-3:] if d.is_dir()), search_path()[-1])
    for path in sorted(directory.glob("*.toml")):
        load_file(path)
        names.append(path.stem)
    return names
