"""The MQTT uplink (paho-mqtt 2.x): events out until the hub acknowledges them, commands in.

Topic tree (``docs/mqtt.md``), for facility F and terminal T::

    gate/F/T/events      terminal -> hub   COSE_Sign1 events, or batches of them signed once, QoS 1
    gate/F/T/ack         hub -> terminal   CBOR {"ids": [event ids]}: the hub stored them
    gate/F/T/status      terminal -> hub   retained CBOR status; the last will says "offline"
    gate/F/T/cmd         hub -> terminal   CBOR commands (eligibility, trust anchors, config)
    gate/F/T/cmd/result  terminal -> hub   CBOR {"id", "ok", "reason"}
    gate/F/T/query       terminal -> hub   eligibility query, VNeID verification (MQTT 5 request/response)
    gate/F/T/reply       hub -> terminal   its answers

An event leaves the queue only when the hub acknowledges its id (not on the broker's
PUBACK: a broker restart can lose what it acknowledged).  Unacknowledged events are
sent again after ``ack_timeout`` or a reconnect, so delivery is at least once and
the hub deduplicates.  Live events (made while connected) go before the backlog; a
window bounds what is in flight and a token bucket bounds the rate.  Those rules live
in :mod:`agent.uplink.delivery` (pure, tested without a broker); the settings and the
topic names in :mod:`agent.uplink.config`.  This module is the paho glue.

paho facts this module is built around (references.md): QoS 1 messages live in
paho's memory only; publish from one thread; never wait on a publish inside a
callback.  So every publish goes through one outbox drained by the sender thread,
and callbacks only record what arrived.

Why one piece: those rules tie the connection, the sender thread and the command
and query paths to one paho client and one outbox.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import random
import socket
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

from agent.errors import ConfigError, GateAgentError
from agent.store.errors import StoreError
from agent.store.queue import EventQueue
from agent.uplink.config import Topics, UplinkConfig
from agent.uplink.delivery import DeliveryWindow, Send
from agent.uplink.hubmsg import HubMessageError, HubVerifier

__all__ = ["CommandHandler", "Topics", "Uplink", "UplinkConfig", "UplinkStats"]

log = logging.getLogger(__name__)

CommandHandler = Callable[[Mapping[str, Any]], tuple[bool, str]]

#: bytes of sealed events in one batch message, at most (a hub reads up to 1 MiB)
BATCH_BYTES = 256 * 1024


def check_tls_files(config: UplinkConfig) -> None:
    """Every configured TLS file exists and is readable by this process; ConfigError naming the file otherwise."""
    for name in ("tls_ca", "tls_cert", "tls_key"):
        value = getattr(config, name)
        if not value:
            continue
        try:
            with open(value, "rb") as handle:
                head = handle.read(64)
        except OSError as exc:
            raise ConfigError(f"uplink.{name}: {value}: {exc.strerror or exc}") from None
        if b"-----BEGIN" not in head:
            raise ConfigError(f"uplink.{name}: {value}: not a PEM file")


def set_nodelay(client: mqtt.Client) -> None:
    """TCP_NODELAY on the client's socket: paho writes small packets (PUBLISH, PUBACK) that Nagle's algorithm
    would hold back until the peer's delayed ACK, up to 40 ms a round trip (paho leaves the option unset)."""
    sock = client.socket()
    try:
        if sock is not None and hasattr(sock, "setsockopt"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not TCP (a WebSocket or Unix socket): nothing to turn off
        pass


@dataclass
class UplinkStats:
    published: int = 0
    resent: int = 0
    acked: int = 0
    connects: int = 0
    commands: int = 0
    rejected: int = 0  # hub messages refused (unsigned, forged, replayed, expired, for another terminal, malformed)
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
        verifier: HubVerifier | None = None,
        batch_sealer: Callable[[list[bytes]], bytes] | None = None,
    ) -> None:
        """``verifier`` opens signed hub messages; without one (not enrolled) every hub message is refused.

        ``batch_sealer`` (:meth:`agent.uplink.events.EventFactory.seal_batch`) signs several sealed events as
        one message; without it, or with ``config.batch`` 1, every event is a message of its own.
        """
        self.config = config
        self.verifier = verifier
        self._seal_batch = batch_sealer if config.batch > 1 else None
        self.queue = queue
        self.on_command = on_command
        self.topics = Topics(config.facility_id, config.terminal_id)
        self.stats = UplinkStats()
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connack = threading.Event()  # the broker answered the CONNECT (or the link fell before it did)
        self._connect_result: int | None = None
        self._link_down = threading.Event()  # the connection ended, or stop() was called
        self._outbox: queue_mod.Queue[_Outgoing] = queue_mod.Queue()
        self._lock = threading.Lock()
        self._window = DeliveryWindow(
            queue, inflight=config.inflight, rate=config.rate, ack_timeout=config.ack_timeout, now=time.monotonic(),
            batch=config.batch if batch_sealer is not None else 1,
        )
        self._emptied = threading.Condition()  # notified after acknowledgements leave the queue
        self._sender: threading.Thread | None = None
        self._last_outbox_publish: mqtt.MQTTMessageInfo | None = None
        self._acks: queue_mod.Queue[list[str]] = queue_mod.Queue()
        self._replies: dict[bytes, tuple[threading.Event, list[Any]]] = {}
        self._threads: list[threading.Thread] = []
        self._protocol5 = config.protocol != "3.1.1"
        self._status: dict[str, Any] = {"state": "online"}
        self._factory = client_factory
        #: the broker's Receive Maximum of the current connection (what paho may have unacknowledged)
        self.receive_maximum = 20
        # events handed to paho and not yet PUBACKed (paho queues those beyond the Receive Maximum)
        self._on_wire = 0
        self._wire_lock = threading.Lock()
        self._wire_blocked = False

    # --- public API ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Check the TLS files (ConfigError naming the file), then run the connection and sender threads."""
        check_tls_files(self.config)
        self.queue.demote_pending()  # what was pending before we started is backlog
        self._sender = threading.Thread(target=self._supervised(self._sender_loop), name="mqtt-sender", daemon=True)
        connection = threading.Thread(target=self._supervised(self._connection_loop), name="mqtt-connection",
                                      daemon=True)  # fmt: skip
        acker = threading.Thread(target=self._supervised(self._ack_loop), name="mqtt-acker", daemon=True)
        self._threads += [connection, self._sender, acker]
        for thread in (connection, self._sender, acker):
            thread.start()

    def _supervised(self, loop: Callable[[], None]) -> Callable[[], None]:
        """Run ``loop`` again after an unexpected error (logged with its type), until stop: no silent offline daemon."""

        def run() -> None:
            while not self._stop.is_set():
                try:
                    loop()
                    return
                except Exception as exc:  # the uplink thread must survive anything
                    self.stats.last_error = f"{loop.__name__}: {type(exc).__name__}"
                    log.error("uplink %s failed (%s: %s); restarting it", loop.__name__, type(exc).__name__, exc)
                    self._stop.wait(1.0)

        return run

    def notify(self) -> None:
        """A new event is in the queue: send it now."""
        self._wake.set()

    def drain(self, timeout: float) -> bool:
        """Wait until the queue is empty (all acknowledged); False on timeout."""
        with self._emptied:
            return self._emptied.wait_for(lambda: len(self.queue) == 0, timeout)

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Drain (while connected, up to ``flush_timeout``), say "offline", disconnect, end the threads."""
        if self.connected and flush_timeout > 0:
            self.drain(flush_timeout)
        # the connection thread publishes the outbox, this status last, and waits for its PUBACK
        self.publish_status({"state": "offline"})
        self._stop.set()
        self._wake.set()
        self._acks.put([])  # wakes the acker
        self._connack.set()
        self._link_down.set()
        for thread in self._threads:
            thread.join(10)

    def publish_status(self, status: Mapping[str, Any]) -> None:
        self._status = dict(status)
        self._outbox.put(_Outgoing(self.topics.status, cbor2.dumps(self._status), 1, True))
        self._wake.set()

    def query_eligibility(
        self, id_number: str, timeout: float, person: Mapping[str, str] | None = None
    ) -> Mapping[str, Any] | None:
        """Ask the hub (MQTT 5 request/response); None when not connected or no answer in time.

        ``person`` (``hoTen``, ``ngaySinh``) goes with the number when the hub is to ask the
        social-insurance gateway, whose lookup compares them.
        """
        body: dict[str, Any] = {"id_number": id_number}
        if person:
            body["person"] = dict(person)
        return self._request(body, timeout)

    def verify_vneid(self, token: str, timeout: float) -> Mapping[str, Any] | None:
        """Ask the hub to verify a VNeID token; its ``vneid`` answer, or None when offline or late."""
        answer = self._request({"kind": "vneid", "token": token}, timeout)
        vneid = answer.get("vneid") if answer is not None else None
        return vneid if isinstance(vneid, Mapping) else None

    def _request(self, body: dict[str, Any], timeout: float) -> Mapping[str, Any] | None:
        if not self.connected:
            return None
        corr = uuid.uuid4().bytes
        done = threading.Event()
        box: list[Any] = []
        self._replies[corr] = (done, box)
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
                clean_session=None if self._protocol5 else not self.config.persistent_session,
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
        client.on_publish = self._on_publish
        return client, host, port

    def _connection_loop(self) -> None:
        attempt = 0
        urls = self.config.broker_urls
        # a random first node: a fleet spreads over a cluster's nodes instead of piling on the first URL
        index = random.randrange(len(urls)) if urls else 0
        while not self._stop.is_set() and urls:
            url = urls[index % len(urls)]
            client, host, port = self._make_client(url)
            self._connect_result = None
            self._connack.clear()
            self._link_down.clear()
            if self._stop.is_set():
                break
            try:
                if self._protocol5 and self.config.persistent_session:
                    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                    props.SessionExpiryInterval = self.config.session_expiry
                    client.connect(host, port, self.config.keepalive, clean_start=False, properties=props)
                else:
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
            self._connack.wait(10)
            if self._stop.is_set() and self._connect_result != 0:
                client.loop_stop()
                client.disconnect()
                break
            if self._connect_result != 0:
                client.loop_stop()
                client.disconnect()
                # 132: "unsupported protocol version"; a broker that speaks 3.1.1 only (RabbitMQ 3.10) may
                # instead close the connection without any CONNACK; either way, try 3.1.1 (everything the
                # agent needs travels in payloads, so 3.1.1 loses nothing)
                refused = self._connect_result == 132 or (self._connect_result is None and self._link_down.is_set())
                if refused and self._protocol5 and self.config.protocol == "auto":
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
            self._link_down.wait()
            with self._lock:
                self._client = None
            if self._stop.is_set():
                # one publisher at a time: the sender ends first, then what is left in the outbox goes
                if self._sender is not None:
                    self._sender.join(5)
                self._flush_outbox(client)
                last = self._last_outbox_publish
                if last is not None and self._connected.is_set():
                    try:
                        last.wait_for_publish(2.0)  # the "offline" status reaches the broker before DISCONNECT
                    except (RuntimeError, ValueError):
                        pass
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
            self._connack.set()
            return
        self.stats.connects += 1
        set_nodelay(client)
        # PUBACK-level flow control as the broker asks (MQTT 5 Receive Maximum, 65535 when absent);
        # the delivery window (hub acks) is ``inflight``, paho's part of it no larger
        receive_max = getattr(properties, "ReceiveMaximum", None) if self._protocol5 else None
        self.receive_maximum = int(receive_max) if isinstance(receive_max, int) else (65535 if self._protocol5 else 20)
        # paho 2.2 refuses max_inflight_messages_set on an open connection (its worry is a change to or from 0,
        # "unlimited"); here nothing is in flight yet and the value stays above 0
        client._max_inflight_messages = max(1, min(self.config.inflight, self.receive_maximum))
        for topic in (self.topics.ack, self.topics.cmd, self.topics.reply):
            client.subscribe(topic, qos=1)
        client.publish(self.topics.status, cbor2.dumps(self._status | {"state": "online"}), 1, True)
        with self._lock:
            self._window.reset()  # everything unacknowledged goes again
        with self._wire_lock:
            self._on_wire = 1  # a new client: nothing of ours in its queue but the status below
        log.info("connected to the broker")
        # last: the connection thread lets the sender publish once it sees the result; resetting the
        # window after that would send the first events twice
        self._connect_result = 0
        self._connack.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set():
            log.warning("disconnected from the broker: %s", reason)
        self._connected.clear()
        self._connack.set()  # a link that fell before the CONNACK ends the wait for it
        self._link_down.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        """A PUBACK (or the end of a QoS 0 send): room on the wire; wake the sender if it waits for some."""
        with self._wire_lock:
            self._on_wire = max(0, self._on_wire - 1)
            wake = self._wire_blocked and self._on_wire <= self.receive_maximum
            if wake:
                self._wire_blocked = False
        if wake:
            self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Verify, type-check, hand over; nothing a message holds may raise into paho's network thread."""
        try:
            self._handle_message(message.topic, message.payload)
        except Exception as exc:  # a hostile message must not stop the network thread
            self.stats.rejected += 1
            log.error("dropped a message on %s: %s", message.topic, type(exc).__name__)

    def _handle_message(self, topic: str, payload: object) -> None:
        kinds = {self.topics.ack: "ack", self.topics.reply: "reply", self.topics.cmd: "cmd"}
        kind = kinds.get(topic)
        if kind is None or not isinstance(payload, bytes | bytearray):
            return
        if self.verifier is None:
            self.stats.rejected += 1
            log.warning("rejected a hub %s message: this terminal has no pinned hub key (enrol it)", kind)
            return
        try:
            body = self.verifier.open(bytes(payload), kind)  # logs the reason
        except HubMessageError:
            self.stats.rejected += 1
            return
        if kind == "ack":
            ids = body.get("ids")
            if not isinstance(ids, list) or len(ids) > 100_000 or not all(isinstance(i, str) for i in ids):
                self._refuse(kind, "ids must be a list of event ids")
                return
            self._acks.put(list(ids))
            self._wake.set()
        elif kind == "reply":
            corr, record = body.get("corr"), body.get("record")
            if not isinstance(corr, bytes) or not (record is None or isinstance(record, dict)):
                self._refuse(kind, "a reply needs corr (bytes) and record (map or null)")
                return
            if not all(body.get(k) is None or isinstance(body.get(k), dict) for k in ("gateway", "vneid")):
                self._refuse(kind, "a reply's gateway and vneid parts must be maps")
                return
            waiter = self._replies.get(corr)  # matched on the signed corr, never on an unsigned property
            if waiter is not None:
                waiter[1].append(body)
                waiter[0].set()
        else:
            if not isinstance(body.get("id"), str) or not body["id"] or not isinstance(body.get("type"), str):
                self._refuse(kind, "a command needs an id and a type (text)")
                return
            threading.Thread(target=self._run_command, args=(body,), name="hub-command", daemon=True).start()

    def _refuse(self, kind: str, reason: str) -> None:
        self.stats.rejected += 1
        if self.verifier is not None:
            self.verifier.count_rejection(reason)
        log.warning("rejected a hub %s message: %s", kind, reason)

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
            except Exception as exc:  # a command's failure is reported, never fatal
                log.exception("hub command %s failed", command_id)
                ok, reason = False, f"internal error ({type(exc).__name__})"
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
            with self._wire_lock:
                self._on_wire += 1
            info = client.publish(out.topic, out.payload, out.qos, out.retain, properties=out.properties)
            self._last_outbox_publish = info

    def _sender_loop(self) -> None:
        timeout: float | None = None
        while not self._stop.is_set():
            self._wake.wait(timeout)
            self._wake.clear()
            timeout = None
            with self._lock:
                client = self._client
            if client is None or not self._connected.is_set():
                continue  # the connection thread wakes this one when a client is up
            self._flush_outbox(client)
            now = time.monotonic()
            # at most two Receive Maximums handed to paho ahead of their PUBACKs: a live event made now
            # waits behind that much at most, not behind the whole delivery window
            with self._wire_lock:
                wire_room = 2 * self.receive_maximum - self._on_wire
            per_message = self.config.batch if self._seal_batch is not None else 1
            with self._lock:
                due = self._window.due(now, max(0, wire_room) * per_message)
            messages = self._messages(due)
            with self._wire_lock:
                self._on_wire += len(messages)
            for payload, sends in messages:
                info = client.publish(self.topics.events, payload, qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    # what was not published stays in flight and goes again after the ack timeout
                    self.stats.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
                    break
                self.stats.published += len(sends)
                self.stats.resent += sum(send.resend for send in sends)
            if len(messages) >= wire_room:
                with self._wire_lock:  # come back when the broker has taken some
                    self._wire_blocked = self._on_wire > self.receive_maximum
                    if not self._wire_blocked:
                        self._wake.set()
            with self._lock:
                wake = self._window.next_wake(time.monotonic())
            if wake is not None:
                timeout = max(0.0, wake - time.monotonic())

    def _messages(self, sends: list[Send]) -> list[tuple[bytes, list[Send]]]:
        """What to publish for ``sends``: live events alone, the rest in batches of ``config.batch`` events and
        at most BATCH_BYTES (one signature each); a batch of one is the sealed event itself."""
        out: list[tuple[bytes, list[Send]]] = []
        run: list[Send] = []
        size = 0

        def close() -> None:
            if len(run) == 1 or self._seal_batch is None:
                out.extend((send.body, [send]) for send in run)
            elif run:
                out.append((self._seal_batch([send.body for send in run]), list(run)))
            run.clear()

        for send in sends:
            if send.live or self._seal_batch is None:
                out.append((send.body, [send]))
                continue
            if run and (len(run) >= self.config.batch or size + len(send.body) > BATCH_BYTES):
                close()
                size = 0
            run.append(send)
            size += len(send.body)
        close()
        return out

    def _ack_loop(self) -> None:
        """Apply the hub's acks: free their window slots at once (wake the sender), then record them durably.

        Its own thread, so the fsync of ``acks.log`` never holds up publishing; an ack whose record
        fails leaves the events pending, and they are sent again after a restart (the hub deduplicates).
        """
        while not self._stop.is_set():
            try:
                batch = [self._acks.get(timeout=1.0)]
            except queue_mod.Empty:
                continue
            while True:
                try:
                    batch.append(self._acks.get_nowait())
                except queue_mod.Empty:
                    break
            seqs: list[int] = []
            with self._lock:
                for ids in batch:
                    seqs.extend(self._window.ack(ids))
            if not seqs:
                continue
            self._wake.set()  # room in the window
            try:
                self.stats.acked += self.queue.ack(seqs)
            except StoreError as exc:
                self.stats.last_error = str(exc)
                log.error("acknowledgements not recorded (the events will be sent again): %s", exc)
            with self._emptied:
                self._emptied.notify_all()
