"""The uplink's settings (the ``[uplink]`` table of the config) and its MQTT topic tree (``docs/mqtt.md``).

Kept apart from the client so that the config loader and the operator commands can
check an ``[uplink]`` table or name a topic without importing paho.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.errors import ConfigError


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
    #: plain mqtt:// (no TLS) is refused unless this says so (the simulator and tests); never in the field
    allow_plaintext: bool = False
    #: the hub's message-signing key pinned at enrolment ("" = STATE_DIR/hub.pub)
    hub_key: str = ""
    #: seconds a hub message or eligibility data may be dated ahead of this terminal's clock
    clock_skew: float = 300.0
    #: keep the broker session across reconnects (3.1.1: clean_session false; 5: a session expiry of
    #: ``session_expiry`` seconds), so acks and commands sent while the link is down wait in the broker
    #: (on a RabbitMQ cluster: in a quorum queue that outlives a node)
    persistent_session: bool = False
    session_expiry: int = 3600

    @classmethod
    def from_table(cls, table: Mapping[str, Any], facility_id: str, terminal_id: str) -> UplinkConfig:
        known = {f for f in cls.__dataclass_fields__ if f not in ("facility_id", "terminal_id")}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"uplink.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        urls = table.get("broker_urls", [])
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ConfigError("uplink.broker_urls: must be a list of URLs (mqtt://host:port, mqtts://host:port)")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
                raise ConfigError(f"uplink.broker_urls: {url!r} is not mqtt://host[:port] or mqtts://host[:port]")
        values: dict[str, Any] = {"broker_urls": tuple(urls), "facility_id": facility_id, "terminal_id": terminal_id}
        for name in known - {"broker_urls"}:
            if name in table:
                default = cls.__dataclass_fields__[name].default
                value = table[name]
                if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if default is not None and not isinstance(value, type(default)):
                    raise ConfigError(f"uplink.{name}: expected {type(default).__name__}, got {value!r}")
                values[name] = value
        plain = [u for u in urls if urlsplit(u).scheme in ("mqtt", "tcp")]
        if plain and not values.get("allow_plaintext", False):
            raise ConfigError(f"uplink.broker_urls: {plain[0]!r} is plain MQTT without TLS; use mqtts:// "
                              "(or set uplink.allow_plaintext = true for a simulator)")  # fmt: skip
        if values.get("protocol", "auto") not in ("5", "3.1.1", "auto"):
            raise ConfigError('uplink.protocol: must be "5", "3.1.1" or "auto"')
        return cls(**values)


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
