"""From the config to running parts: which real device, service and output implements each port.

This is the only module that knows every layer; everything else sees ports.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from agent.app.eligibility import EligibilityCache
from agent.app.outputs import GpioOutput, LogOutput, MultiOutput, RecorderOutput, ScreenOutput
from agent.app.ports import Output
from agent.config import Config
from agent.daemon import Runtime
from agent.errors import GateAgentError

log = logging.getLogger(__name__)


def build_outputs(cfg: Config) -> MultiOutput:
    outs: list[Output] = []
    o = cfg.outputs
    for kind in o.kinds:
        if kind == "log":
            outs.append(LogOutput())
        elif kind == "recorder":
            outs.append(RecorderOutput(o.recorder_path, cfg.terminal.terminal_id))
        elif kind == "screen":
            outs.append(ScreenOutput())
        elif kind == "gpio":
            outs.append(GpioOutput(o.gpio_chip, o.gpio_relay_line, o.gpio_green_line, o.gpio_red_line, o.relay_seconds))
    return MultiOutput(outs)


def write_json_atomic(path: Path, doc: Any) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(doc, ensure_ascii=False).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def build_eligibility_cache(cfg: Config) -> EligibilityCache:
    """The cache, loaded from and saved to ``state_dir/eligibility.json`` (mode 0600)."""
    path = cfg.state_dir / "eligibility.json"

    def save(doc: dict[str, Any]) -> None:
        try:
            write_json_atomic(path, doc)
        except OSError as exc:
            raise GateAgentError(f"cannot save the eligibility cache {path}: {exc}") from exc

    cache = EligibilityCache(dt.timedelta(hours=cfg.eligibility.max_age_hours))
    if path.exists():
        try:
            cache.load_document(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, GateAgentError) as exc:
            log.error("eligibility cache %s unreadable, starting empty: %s", path, exc)
    cache.on_change = save
    return cache


def build_runtime(cfg: Config) -> Runtime:
    """Every part of the terminal from the config (devices, queue, uplink, outputs)."""
    raise GateAgentError("this build has no chip reader yet: the PC/SC reader path is being integrated")
