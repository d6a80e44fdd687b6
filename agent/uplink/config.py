"""The uplink's settings (the ``[uplink]`` table of the config) and its MQTT topic tree (``docs/mqtt.md``).

Kept apart from the client so that the config loader and the operator commands can
check an ``[uplink]`` table or name a topic without importing paho.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import UplinkSettings


@dataclass(frozen=True)
class UplinkConfig:
    broker_urls: tuple[str, ...]
    facility_id: str
    terminal_id: str
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    protocol: str = "auto"  # "5", "3.1.1" or "auto" (5, falling back to 3.1.1)
    keepalive: int = 30
    inflight: int = 64
    rate: float = 500.0  # events per second at most
    ack_timeout: float = 30.0
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    heartbeat: float = 30.0

    @classmethod
    def from_table(cls, table: Mapping[str, Any], facility_id: str, terminal_id: str) -> UplinkConfig:
        """Validate an ``[uplink]`` table by the config schema (:mod:`agent.config`), the one opinion on it."""
        from agent.config import uplink_settings

        return cls.from_settings(uplink_settings(table), facility_id, terminal_id)

    @classmethod
    def from_settings(cls, s: UplinkSettings, facility_id: str, terminal_id: str) -> UplinkConfig:
        """From the validated ``[uplink]`` settings ("" there means not set)."""
        return cls(
            broker_urls=tuple(s.broker_urls), facility_id=facility_id, terminal_id=terminal_id,
            username=s.username or None, password=s.password or None, tls_ca=s.tls_ca or None,
            tls_cert=s.tls_cert or None, tls_key=s.tls_key or None, protocol=s.protocol, keepalive=s.keepalive,
            inflight=s.inflight, rate=s.rate, ack_timeout=s.ack_timeout, backoff_min=s.backoff_min,
            backoff_max=s.backoff_max, heartbeat=s.heartbeat,
        )  # fmt: skip


@dataclass(frozen=True)
class Topics:
    facility: str
    terminal: str

    @property
    def base(self) -> str:
        return f"gate/{self.facility}/{self.terminal}"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def ack(self) -> str:
        return f"{self.base}/ack"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def cmd(self) -> str:
        return f"{self.base}/cmd"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd/result"

    @property
    def query(self) -> str:
        return f"{self.base}/query"

    @property
    def reply(self) -> str:
        return f"{self.base}/reply"
