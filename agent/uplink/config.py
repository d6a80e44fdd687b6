"""The uplink's settings (the ``[uplink]`` table of the config) and its MQTT topic tree (``docs/mqtt.md``).

Kept apart from the client so that the operator commands can name a topic without
importing paho.  The ``[uplink]`` table itself is validated by the config schema
(:func:`agent.config.uplink_settings`, :func:`agent.config.uplink_config`), the one
opinion on it; the config is in a layer above this one, so :meth:`UplinkConfig.from_settings`
takes the validated settings by their shape (:class:`UplinkSettingsView`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class UplinkSettingsView(Protocol):
    """The validated ``[uplink]`` table as :class:`agent.config.UplinkSettings` holds it ("" = not set)."""

    @property
    def broker_urls(self) -> list[str]: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def tls_ca(self) -> str: ...
    @property
    def tls_cert(self) -> str: ...
    @property
    def tls_key(self) -> str: ...
    @property
    def protocol(self) -> str: ...
    @property
    def keepalive(self) -> int: ...
    @property
    def inflight(self) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def batch(self) -> int: ...
    @property
    def ack_timeout(self) -> float: ...
    @property
    def backoff_min(self) -> float: ...
    @property
    def backoff_max(self) -> float: ...
    @property
    def heartbeat(self) -> float: ...
    @property
    def allow_plaintext(self) -> bool: ...
    @property
    def hub_key(self) -> str: ...
    @property
    def clock_skew(self) -> float: ...
    @property
    def persistent_session(self) -> bool: ...
    @property
    def session_expiry(self) -> int: ...


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
    #: events per message at most while a backlog drains (a batch: one signature); 1 = one per message
    batch: int = 64
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
    def from_settings(cls, s: UplinkSettingsView, facility_id: str, terminal_id: str) -> UplinkConfig:
        """From the validated ``[uplink]`` settings (:class:`agent.config.UplinkSettings`; "" there means not set)."""
        return cls(
            broker_urls=tuple(s.broker_urls), facility_id=facility_id, terminal_id=terminal_id,
            username=s.username or None, password=s.password or None, tls_ca=s.tls_ca or None,
            tls_cert=s.tls_cert or None, tls_key=s.tls_key or None, protocol=s.protocol, keepalive=s.keepalive,
            inflight=s.inflight, rate=s.rate, batch=s.batch, ack_timeout=s.ack_timeout, backoff_min=s.backoff_min,
            backoff_max=s.backoff_max, heartbeat=s.heartbeat, allow_plaintext=s.allow_plaintext, hub_key=s.hub_key,
            clock_skew=s.clock_skew, persistent_session=s.persistent_session, session_expiry=s.session_expiry,
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
