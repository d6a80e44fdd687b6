"""The MQTT uplink (paho-mqtt 2.x): events out until the hub acknowledges them, commands in.

Topic tree (``docs/mqtt.md``), for facility F and terminal T::

    gate/F/T/events      terminal -> hub   COSE_Sign1 events, QoS 1
    gate/F/T/ack         hub -> terminal   CBOR {"ids": [event ids]}: the hub stored them
    gate/F/T/status      terminal -> hub   retained CBOR status; the last will says "offline"
    gate/F/T/cmd         hub -> terminal   CBOR commands (eligibility, trust anchors, config)
    gate/F/T/cmd/result  terminal -> hub   CBOR {"id", "ok", "reason"}
    gate/F/T/query       terminal -> hub   eligibility query (MQTT 5 request/response)
    gate/F/T/reply       hub -> terminal   its answers

An event leaves the queue only when the hub acknowledges its id (not on the broker's
PUBACK: a broker restart can lose what it acknowledged).  Unacknowledged events are
sent again after ``ack_timeout`` or a reconnect, so delivery is at least once and
the hub deduplicates.  Live events (made while connected) go before the backlog; a
window bounds what is in flight and a token bucket bounds the rate.

paho facts this module is built around (references.md): QoS 1 messages live in
paho's memory only; publish from one thread; never wait on a publish inside a
callback.  So every publish goes through one outbox drained by the sender thread,
and callbacks only record what arrived.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cbor2
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.codec.cbor import CborError, decode_cbor
from agent.errors import ConfigError, GateAgentError
from agent.store.errors import StoreError
from agent.store.queue import EventQueue

log = logging.getLogger(__name__)

CommandHandler = Callable[[Mapping[str, Any]], tuple[bool, str]]


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


@dataclass
class _Inflight:
    seq: int
    sent: float


@dataclass
class UplinkStats:
    published: int = 0
    resent: int = 0
    acked: int = 0
    connects: int = 0
    commands: int = 0
    last_error: str | None = None
    broker: str | None = None


@dataclass
class _Outgoing:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    properties: Properties | None = None


class Uplink:
    def __init__(
        self,
        config: UplinkConfig,
        queue: EventQueue,
        *,
        on_command: CommandHandler | None = None,
        client_factory: Callable[[str, int], mqtt.Client] | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.on_command = on_command
        self.topics = Topics(config.facility_id, config.terminal_id)
        self.stats = UplinkStats()
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._outbox: queue_mod.Queue[_Outgoing] = queue_mod.Queue()
        self._inflight: dict[str, _Inflight] = {}
        self._cursor = {0: 0, 1: 0}
        self._lock = threading.Lock()
        self._acks: queue_mod.Queue[list[str]] = queue_mod.Queue()
        self._replies: dict[bytes, tuple[threading.Event, list[Any]]] = {}
        self._threads: list[threading.Thread] = []
        self._protocol5 = config.protocol != "3.1.1"
        self._status: dict[str, Any] = {"state": "online"}
        self._factory = client_factory

    # --- public API ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self.queue.demote_pending()  # what was pending before we started is backlog
        for target, name in ((self._connection_loop, "mqtt-connection"), (self._sender_loop, "mqtt-sender")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """A new event is in the queue: send it now."""
        self._wake.set()

    def drain(self, timeout: float) -> bool:
        """Wait until the queue is empty (all acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.queue) == 0:
                return True
            time.sleep(0.05)
        return len(self.queue) == 0

    def stop(self, flush_timeout: float = 5.0) -> None:
        if self.connected and flush_timeout > 0:
            self.drain(flush_timeout)
        self.publish_status({"state": "offline"})
        time.sleep(0.1 if self.connected else 0)
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(10)

    def publish_status(self, status: Mapping[str, Any]) -> None:
        self._status = dict(status)
        self._outbox.put(_Outgoing(self.topics.status, cbor2.dumps(self._status), 1, True))
        self._wake.set()

    def query_eligibility(self, id_number: str, timeout: float) -> Mapping[str, Any] | None:
        """Ask the hub (MQTT 5 request/response); None when not connected or no answer in time."""
        if not self.connected:
            return None
        corr = uuid.uuid4().bytes
        done = threading.Event()
        box: list[Any] = []
        self._replies[corr] = (done, box)
        body: dict[str, Any] = {"id_number": id_number}
        props = None
        if self._protocol5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = self.topics.reply
            props.CorrelationData = corr
        else:
            body.update(reply_to=self.topics.reply, corr=corr)
        self._outbox.put(_Outgoing(self.topics.query, cbor2.dumps(body), 1, False, props))
        self._wake.set()
        try:
            if not done.wait(timeout) or not box:
                return None
            answer = box[0]
            return answer if isinstance(answer, Mapping) else None
        finally:
            self._replies.pop(corr, None)

    # --- connection management ----------------------------------------------------------------------

    def _make_client(self, url: str) -> tuple[mqtt.Client, str, int]:
        parts = urlsplit(url)
        tls = parts.scheme in ("mqtts", "ssl")
        host, port = parts.hostname or "localhost", parts.port or (8883 if tls else 1883)
        client_id = f"{self.config.facility_id}-{self.config.terminal_id}"
        if self._factory is not None:
            client = self._factory(client_id, 5 if self._protocol5 else 4)
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv5 if self._protocol5 else mqtt.MQTTv311,
                clean_session=None if self._protocol5 else True,
            )
        client.max_inflight_messages_set(min(self.config.inflight, 20))
        client.max_queued_messages_set(0)
        if self.config.username:
            client.username_pw_set(self.config.username, self.config.password)
        if tls:
            client.tls_set(
                ca_certs=self.config.tls_ca,
                certfile=self.config.tls_cert,
                keyfile=self.config.tls_key,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.will_set(self.topics.status, cbor2.dumps({"state": "offline", "reason": "connection lost"}), 1, True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client, host, port

    def _connection_loop(self) -> None:
        attempt = 0
        index = 0
        urls = self.config.broker_urls
        while not self._stop.is_set() and urls:
            url = urls[index % len(urls)]
            client, host, port = self._make_client(url)
            self._connect_result: int | None = None
            try:
                client.connect(host, port, self.config.keepalive)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self.stats.last_error = f"{host}:{port}: {exc}"
                log.warning("broker %s:%d unreachable: %s", host, port, exc)
                index += 1
                attempt += 1
                self._backoff(attempt)
                continue
            client.loop_start()
            up_since = time.monotonic()
            deadline = up_since + 10
            while not self._stop.is_set() and self._connect_result is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if self._connect_result != 0:
                client.loop_stop()
                client.disconnect()
                if self._connect_result == 132 and self._protocol5 and self.config.protocol == "auto":
                    log.warning("broker %s refuses MQTT 5, using 3.1.1", url)
                    self._protocol5 = False
                    continue
                self.stats.last_error = f"{host}:{port}: connection refused ({self._connect_result})"
                index += 1
                attempt += 1
                self._backoff(attempt)
                continue
            with self._lock:
                self._client = client
            self.stats.broker = f"{host}:{port}"
            self._connected.set()
            self._wake.set()
            while not self._stop.is_set() and self._connected.is_set():
                time.sleep(0.05)
            with self._lock:
                self._client = None
            if self._stop.is_set():
                self._flush_outbox(client)
                client.disconnect()
                client.loop_stop()
                break
            client.loop_stop()
            if time.monotonic() - up_since > 30:
                attempt = 0
            attempt += 1
            index += 1 if len(urls) > 1 else 0
            self._backoff(attempt)

    def _backoff(self, attempt: int) -> None:
        """Exponential with full jitter: a hundred terminals that lost the broker together do not return together."""
        ceiling = min(self.config.backoff_max, self.config.backoff_min * 2 ** min(attempt, 16))
        self._stop.wait(random.uniform(self.config.backoff_min / 2, ceiling))

    # --- callbacks (paho's network thread): record only ---------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        code = getattr(reason, "value", reason)
        result = int(code) if not getattr(reason, "is_failure", code != 0) else int(code) or 1
        if result != 0:
            self._connect_result = result
            return
        self.stats.connects += 1
        for topic in (self.topics.ack, self.topics.cmd, self.topics.reply):
            client.subscribe(topic, qos=1)
        client.publish(self.topics.status, cbor2.dumps(self._status | {"state": "online"}), 1, True)
        with self._lock:
            self._inflight.clear()  # everything unacknowledged goes again
            self._cursor = {0: 0, 1: 0}
        log.info("connected to the broker")
        # last: the connection thread lets the sender publish once it sees the result; resetting the
        # cursor after that would send the first events twice
        self._connect_result = 0

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set():
            log.warning("disconnected from the broker: %s", reason)
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = decode_cbor(bytes(message.payload), 8 * 1024 * 1024)
        except CborError as exc:
            log.warning("ignoring a malformed message on %s: %s", message.topic, exc)
            return
        if message.topic == self.topics.ack:
            ids = body.get("ids") if isinstance(body, Mapping) else None
            if isinstance(ids, list | tuple):
                self._acks.put([str(i) for i in ids])
                self._wake.set()
        elif message.topic == self.topics.reply:
            corr = getattr(message.properties, "CorrelationData", None) if message.properties else None
            if corr is None and isinstance(body, Mapping):
                corr = body.get("corr")
            waiter = self._replies.get(bytes(corr)) if corr else None
            if waiter is not None:
                waiter[1].append(body)
                waiter[0].set()
        elif message.topic == self.topics.cmd:
            threading.Thread(target=self._run_command, args=(body,), name="hub-command", daemon=True).start()

    def _run_command(self, body: Any) -> None:
        self.stats.commands += 1
        command_id = str(body.get("id", "")) if isinstance(body, Mapping) else ""
        if not isinstance(body, Mapping) or not command_id or "type" not in body:
            ok, reason = False, "a command needs an id and a type"
        elif self.on_command is None:
            ok, reason = False, "this terminal accepts no commands"
        else:
            try:
                ok, reason = self.on_command(body)
            except GateAgentError as exc:
                ok, reason = False, str(exc)
        log.info("hub command %s (%s): %s %s", command_id, body.get("type") if isinstance(body, Mapping) else "?",
                 "applied" if ok else "rejected", reason)  # fmt: skip
        result = {"id": command_id, "ok": ok, "reason": reason}
        self._outbox.put(_Outgoing(self.topics.cmd_result, cbor2.dumps(result)))
        self._wake.set()

    # --- the sender ---------------------------------------------------------------------------------

    def _flush_outbox(self, client: mqtt.Client) -> None:
        while True:
            try:
                out = self._outbox.get_nowait()
            except queue_mod.Empty:
                return
            client.publish(out.topic, out.payload, out.qos, out.retain, properties=out.properties)

    def _sender_loop(self) -> None:
        tokens = float(self.config.inflight)
        last = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            self._apply_acks()
            with self._lock:
                client = self._client
            if client is None or not self._connected.is_set():
                continue
            self._flush_outbox(client)
            now = time.monotonic()
            tokens = min(float(self.config.inflight), tokens + (now - last) * self.config.rate)
            last = now
            for entry in self._due(now, int(tokens)):
                info = client.publish(self.topics.events, entry[1], qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    self.stats.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
                    break
                tokens -= 1
                self.stats.published += 1
            if self._inflight and tokens < 1:
                self._wake.set()
                time.sleep(0.005)

    def _due(self, now: float, budget: int) -> list[tuple[str, bytes]]:
        """Events to (re)send now: timed-out ones first, then new ones, live before backlog."""
        out: list[tuple[str, bytes]] = []
        with self._lock:
            for event_id, flight in self._inflight.items():
                if len(out) >= budget:
                    return out
                if now - flight.sent > self.config.ack_timeout:
                    entry = self.queue.get(flight.seq)
                    if entry is not None:
                        flight.sent = now
                        out.append((event_id, entry.body))
                        self.stats.resent += 1
            room = min(budget - len(out), self.config.inflight - len(self._inflight))
            for priority in (0, 1):
                if room <= 0:
                    break
                for entry in self.queue.scan(priority, self._cursor[priority], room):
                    self._cursor[priority] = entry.seq
                    if entry.event_id in self._inflight:
                        continue
                    self._inflight[entry.event_id] = _Inflight(entry.seq, now)
                    out.append((entry.event_id, entry.body))
                    room -= 1
        return out

    def _apply_acks(self) -> None:
        seqs: list[int] = []
        while True:
            try:
                ids = self._acks.get_nowait()
            except queue_mod.Empty:
                break
            with self._lock:
                for event_id in ids:
                    flight = self._inflight.pop(event_id, None)
                    seq = flight.seq if flight else self.queue.seq_of(event_id)
                    if seq is not None:
                        seqs.append(seq)
        if seqs:
            try:
                self.stats.acked += self.queue.ack(seqs)
            except StoreError as exc:
                self.stats.last_error = str(exc)
                log.error("acknowledgements not recorded (the events will be sent again): %s", exc)
