"""The policy in force: one function, used at start, on the hub's push and on SIGHUP.

Layers, lowest first: the defaults (:data:`agent.app.policy.DEFAULT_ACTIONS`), the config
file's ``[policy]``, then the hub's last push (``state_dir/policy.json``).  A push survives
a reload and a restart alike; the config file changes the keys the hub did not push.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.app.policy import Policy
from agent.config import Config
from agent.errors import ConfigError

log = logging.getLogger(__name__)

PUSHED_FILE = "policy.json"


def pushed_path(cfg: Config) -> Path:
    return cfg.state_dir / PUSHED_FILE


def read_pushed(cfg: Config) -> dict[str, Any]:
    """The hub's last push; unreadable means none (logged), so the config file's policy holds."""
    path = pushed_path(cfg)
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.error("policy pushed by the hub is unreadable, using the config's: %s", exc)
        return {}
    if not isinstance(doc, dict):
        log.error("policy pushed by the hub is not a table, using the config's")
        return {}
    return doc


def effective_table(cfg: Config, pushed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    table = dict(cfg.policy)
    table.update(read_pushed(cfg) if pushed is None else pushed)
    return table


def effective_policy(cfg: Config, pushed: Mapping[str, Any] | None = None) -> Policy:
    """Config ``[policy]`` overlaid with the hub's push (``pushed``, or the one saved on disk)."""
    try:
        return Policy.from_config(effective_table(cfg, pushed))
    except ConfigError:
        if pushed is not None:
            raise  # a push that does not validate is refused by the caller
        log.error("policy pushed by the hub no longer validates, using the config's")
        return Policy.from_config(dict(cfg.policy))
