"""A facility hub on a real MQTT broker.

It subscribes to every terminal of one facility, verifies each message's COSE
signature (an event, or a batch of events signed once) with the terminal's
registered public key (an unknown terminal or a bad signature is rejected and
counted, never stored; a batch is taken whole or not at all), stores events in SQLite keyed by
event id (a replayed event is a duplicate, counted and acknowledged again, never
stored twice), acknowledges ids to the terminal, answers eligibility queries and
pushes commands.  Everything here uses only the documented wire format and the
agent's event decoder, as an independent hub would.

It stands up to a hostile terminal: every message it sends to a terminal (acks,
replies, commands) is signed with the hub's key for that terminal (``docs/mqtt.md``);
a reply goes only to the asking terminal's own reply topic, derived from the topic
the query came on (the broker authenticated who may publish there), never from the
message; every payload is type-checked; every callback and the writer are guarded,
so no message can stop a thread; events are deduplicated by (terminal, event id).

Scale (``docs/deploy/large.md``): several hub workers may share the load.  With
``share`` each subscribes through an MQTT 5 shared subscription (``$share/GROUP/...``),
so the broker hands each event to one of them, and all of them store into one
database (SQLite in WAL mode here, a busy timeout for the other writer), so a
duplicate is recognised whichever worker got the first copy.  When a worker dies,
what the broker had handed it and it had not acknowledged is lost to it, but the
terminal publishes every event again until some worker's ack arrives: nothing is
lost, and each event is stored once.  Events are stored in batches (one transaction
each) and acknowledged in batches: one signed ack per terminal per batch, naming the
ids stored.  With ``protocol="3.1.1"`` (RabbitMQ 3.10 speaks no MQTT 5) there are no
shared subscriptions; ``persistent`` keeps the session (``clean_session`` false,
a fixed ``client_id``) so events published while the hub reconnects wait for it in
the broker (quorum queues on a RabbitMQ cluster).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue as queue_mod
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.app.gateway import GatewayDataError, parse_date
from agent.uplink.client import set_nodelay
from agent.uplink.events import EventError, open_message
from agent.uplink.hubmsg import HubMessageError, HubSigner, decode_payload
from sim.hub import xml0
from sim.hub.gateway import OFFICER, GatewaySim
from sim.hub.vneid import IdentityService

log = logging.getLogger(__name__)

BATCH_MAX = 1000  # events stored in one transaction at most
BATCH_WAIT = 0.01  # seconds a batch may gather after its first event

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT NOT NULL, terminal TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    received REAL NOT NULL, outcome TEXT, body TEXT NOT NULL, PRIMARY KEY (terminal, id)
);
CREATE INDEX IF NOT EXISTS events_terminal_seq ON events (terminal, seq);
CREATE TABLE IF NOT EXISTS status (terminal TEXT PRIMARY KEY, received REAL, body TEXT);
CREATE TABLE IF NOT EXISTS command_results (
    id TEXT NOT NULL, terminal TEXT NOT NULL, ok INTEGER, reason TEXT, PRIMARY KEY (terminal, id)
);
"""


@dataclass
class HubStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    queries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    errors: int = 0  # callbacks or writer batches that failed (logged; the threads go on)


def load_keys(directory: Path) -> dict[str, ed25519.Ed25519PublicKey]:
    """``<terminal>.pub`` PEM files -> public keys."""
    keys = {}
    for path in sorted(Path(directory).glob("*.pub")):
        key = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(key, ed25519.Ed25519PublicKey):
            keys[path.stem] = key
    return keys


class Hub:
    def __init__(
        self,
        broker_url: str,
        facility: str,
        db: Path | str,
        keys: Mapping[str, ed25519.Ed25519PublicKey],
        eligibility: Mapping[str, Mapping[str, Any]] | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: tuple[str, str, str] | None = None,  # CA, certificate, key of the hub
        on_stored: Callable[[str, Mapping[str, Any]], None] | None = None,
        signing_key: ed25519.Ed25519PrivateKey | None = None,
        gateway: GatewaySim | None = None,
        identity_service: IdentityService | None = None,
        share: str | None = None,
        protocol: str = "5",
        client_id: str | None = None,
        persistent: bool = False,
    ) -> None:
        """``on_stored(terminal, event)`` is called (on the writer thread) for each event stored for the first time.

        ``share`` names the shared-subscription group of several workers (MQTT 5 only);
        ``protocol`` is "5" or "3.1.1"; ``persistent`` keeps the broker session across reconnects.
        """
        if protocol not in ("5", "3.1.1"):
            raise ValueError(f"protocol must be '5' or '3.1.1', not {protocol!r}")
        if share is not None and (protocol != "5" or not share or any(c in share for c in "/+#")):
            raise ValueError("a shared subscription needs MQTT 5 and a group name without / + #")
        self.share = share
        self.protocol = protocol
        self.facility = facility
        self.keys = dict(keys)
        self.eligibility = dict(eligibility or {})
        #: the social-insurance gateway (answers in its response shape) and the national identity service
        self.gateway = gateway
        self.identity_service = identity_service
        #: identities the hub learnt: verified VNeID answers and the names/birth dates lookups carried
        self.people: dict[str, dict[str, Any]] = {}
        self.stats = HubStats()
        self.on_stored = on_stored
        #: the key terminals pin at enrolment; a fresh one when none is given (a throw-away simulation)
        self.signing_key = signing_key or ed25519.Ed25519PrivateKey.generate()
        self.signer = HubSigner(self.signing_key, facility)
        self._db = sqlite3.connect(str(db), check_same_thread=False, isolation_level=None)
        self._db.executescript(SCHEMA)
        self._db.execute("PRAGMA busy_timeout=10000")  # another worker may be writing
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db_lock = threading.Lock()
        # several URLs (comma-separated): the nodes of a cluster, tried in turn when the connection falls
        self._brokers: list[tuple[str, int]] = []
        for url in broker_url.split(","):
            parts = urlsplit(url.strip())
            default_port = 8883 if parts.scheme in ("mqtts", "ssl") else 1883
            self._brokers.append((parts.hostname or "127.0.0.1", parts.port or default_port))
        self._broker_index = 0
        self._host, self._port = self._brokers[0]
        client_id = client_id or f"hub-{facility}-{uuid.uuid4().hex[:6]}"
        if protocol == "5":
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
            self._connect_props: Properties | None = None
            if persistent:
                self._connect_props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                self._connect_props.SessionExpiryInterval = 3600
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                      clean_session=not persistent)  # fmt: skip
            self._connect_props = None
        self._clean_start = not persistent
        self.client.max_inflight_messages_set(1000)  # acks in flight; the broker paces what it sends us
        if username:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.connected = threading.Event()
        self.results: dict[str, dict[str, Any]] = {}
        self._sent: dict[str, str] = {}  # command id -> the terminal it was sent to
        # verified events wait here; the writer stores a batch in one transaction, then acknowledges it
        self._inbox: queue_mod.Queue[tuple[str, dict[str, Any]] | None] = queue_mod.Queue()
        self._outbox: queue_mod.Queue[tuple[str, bytes, Properties | None]] = queue_mod.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="hub-writer", daemon=True)

    # --- life ---------------------------------------------------------------------------------------

    def start(self) -> Hub:
        self._writer.start()
        self.client.reconnect_delay_set(0.2, 2)
        if self.protocol == "5":
            self.client.connect_async(self._host, self._port, 30, clean_start=self._clean_start,
                                      properties=self._connect_props)  # fmt: skip
        else:
            self.client.connect_async(self._host, self._port, 30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self._inbox.put(None)
        self._writer.join(10)
        self.client.disconnect()
        self.client.loop_stop()
        self._db.close()

    def _write_loop(self) -> None:
        """Run :meth:`_write_batch` until stopped; an unexpected error is logged and the loop goes on."""
        while True:
            try:
                if self._write_batch():
                    return
            except Exception as exc:  # nothing a terminal sends may stop the writer
                self.stats.errors += 1
                log.error("hub writer: %s: %s", type(exc).__name__, exc)
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    def _write_batch(self) -> bool:
        """Store verified events in batches (one commit each), then acknowledge them; the only publisher."""
        batch: list[tuple[str, dict[str, Any]] | None] = []
        try:
            batch.append(self._inbox.get(timeout=0.05))
        except queue_mod.Empty:
            pass
        # a batch gathers for up to BATCH_WAIT once something arrived: one commit (fsync) and one signed ack
        # per terminal cover it, instead of one for every event of a busy stream
        until = time.monotonic() + BATCH_WAIT
        while batch and batch[-1] is not None and len(batch) < BATCH_MAX:
            try:
                batch.append(self._inbox.get(timeout=max(0.0, until - time.monotonic())))
            except queue_mod.Empty:
                break
        stop = None in batch
        events = [item for item in batch if item]
        if events:
            acks: dict[str, list[str]] = {}
            stored: list[tuple[str, dict[str, Any]]] = []
            with self._db_lock:
                self._db.execute("BEGIN")
                for terminal, event in events:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (event["id"], terminal, event["seq"], event["type"], time.time(),
                         event["body"].get("outcome"), json.dumps(event, ensure_ascii=False, default=str)),
                    )  # fmt: skip
                    if cursor.rowcount:
                        self.stats.stored += 1
                        stored.append((terminal, event))
                    else:
                        self.stats.duplicates += 1
                    acks.setdefault(terminal, []).append(event["id"])
                self._db.execute("COMMIT")
            for terminal, ids in acks.items():
                sealed = self.signer.seal(terminal, "ack", {"ids": ids})
                self.client.publish(f"gate/{self.facility}/{terminal}/ack", sealed, qos=1)
            if self.on_stored is not None:
                for terminal, event in stored:
                    try:
                        self.on_stored(terminal, event)
                    except Exception:  # a report must never stop the hub storing and acknowledging
                        log.exception("on_stored callback failed")
        while True:
            try:
                topic, payload, props = self._outbox.get_nowait()
            except queue_mod.Empty:
                break
            self.client.publish(topic, payload, qos=1, properties=props)
        return bool(stop)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("hub could not connect: %s", reason)
            return
        set_nodelay(client)
        base = f"gate/{self.facility}/+"
        shared = f"$share/{self.share}/" if self.share else ""
        for suffix in ("events", "query", "status"):
            client.subscribe(f"{shared}{base}/{suffix}", qos=1)  # one worker handles each
        client.subscribe(f"{base}/cmd/result", qos=1)  # every worker sees results; the sender takes its own
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        self._next_broker(client)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._next_broker(client)

    def _next_broker(self, client: mqtt.Client) -> None:
        """Fail over: paho's reconnect goes to the next URL of the list (one URL: the same broker again)."""
        if len(self._brokers) < 2:
            return
        self._broker_index = (self._broker_index + 1) % len(self._brokers)
        self._host, self._port = self._brokers[self._broker_index]
        log.warning("hub: reconnecting to %s:%d", self._host, self._port)
        if self.protocol == "5":
            client.connect_async(self._host, self._port, 30, clean_start=self._clean_start,
                                 properties=self._connect_props)  # fmt: skip
        else:
            client.connect_async(self._host, self._port, 30)

    # --- messages -----------------------------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Route a message; nothing it holds may raise into paho's network thread."""
        try:
            self._route(client, message)
        except Exception as exc:  # a hostile terminal must not stop the hub
            self.stats.errors += 1
            log.error("hub dropped a message on %s: %s", message.topic, type(exc).__name__)

    def _route(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) < 4 or parts[0] != "gate" or parts[1] != self.facility:
            return
        terminal, kind = parts[2], "/".join(parts[3:])
        payload = bytes(message.payload)
        if kind == "events":
            self._event(client, terminal, payload)
        elif kind == "query":
            self._query(client, terminal, message)
        elif kind == "status":
            body = _json(payload)
            with self._db_lock:
                self._db.execute("INSERT OR REPLACE INTO status VALUES (?, ?, ?)", (terminal, time.time(), body))
        elif kind == "cmd/result":
            try:
                result = decode_payload(payload) if len(payload) <= 65536 else None
            except HubMessageError:
                return
            if not isinstance(result, dict) or not isinstance(result.get("id"), str):
                return
            ok, reason = result.get("ok"), result.get("reason")
            if not isinstance(ok, bool) or not isinstance(reason, str):
                return
            if self._sent.get(result["id"]) != terminal:  # a terminal cannot answer for another's command
                self._reject(terminal, "result for a command not sent to this terminal")
                return
            self.results[result["id"]] = {"id": result["id"], "ok": ok, "reason": reason[:1000]}
            with self._db_lock:
                self._db.execute("INSERT OR REPLACE INTO command_results VALUES (?, ?, ?, ?)",
                                 (result["id"], terminal, int(ok), reason[:1000]))  # fmt: skip

    def _reject(self, terminal: str, reason: str) -> None:
        self.stats.rejected += 1
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        log.warning("rejected an event on terminal %s's topic: %s", terminal, reason)

    def _event(self, client: mqtt.Client, terminal: str, payload: bytes) -> None:
        """A sealed event or a batch of them (one signature over all, ``docs/mqtt.md``); all or nothing."""
        key = self.keys.get(terminal)
        if key is None:
            self._reject(terminal, "unknown terminal")
            return
        try:
            events = open_message(payload, key)
        except EventError as exc:
            self._reject(terminal, "bad signature" if "verify" in str(exc) else "malformed")
            return
        for event in events:
            if event.get("terminal") != terminal or event.get("facility") != self.facility:
                self._reject(terminal, "event names another terminal")
                return
            if isinstance(event["seq"], bool):  # decode_event checked the other fields' types
                self._reject(terminal, "malformed")
                return
        for event in events:
            self._inbox.put((terminal, event))

    def _query(self, client: mqtt.Client, terminal: str, message: mqtt.MQTTMessage) -> None:
        """Answer on the asking terminal's own reply topic, signed for it; the message names no destination."""
        self.stats.queries += 1
        if terminal not in self.keys:
            self._reject(terminal, "query from an unknown terminal")
            return
        try:
            body = decode_payload(bytes(message.payload)) if len(message.payload) <= 4096 else None
        except HubMessageError:
            body = None
        props = message.properties
        corr = getattr(props, "CorrelationData", None) if props is not None else None
        if corr is None and isinstance(body, dict):
            corr = body.get("corr")
        if not isinstance(body, dict) or not isinstance(corr, bytes | bytearray) or not 1 <= len(corr) <= 64:
            self._reject(terminal, "malformed query")
            return
        if body.get("kind") == "time":  # gate-agent doctor compares clocks (MQTT itself carries no time)
            self._reply(terminal, bytes(corr), {"record": None, "now": self.signer.clock()})
            return
        if body.get("kind") == "vneid":
            answer = self._verify_vneid(body.get("token"))
            if answer is None:
                self._reject(terminal, "malformed query")
                return
            self._reply(terminal, bytes(corr), {"record": None, "vneid": answer})
            return
        id_number = body.get("id_number")
        if not isinstance(id_number, str) or not 1 <= len(id_number) <= 32:
            self._reject(terminal, "malformed query")
            return
        record = self.eligibility.get(id_number)
        reply: dict[str, Any] = {"record": record}
        if self.gateway is not None:
            given = body.get("person")
            person: dict[str, Any] = given if isinstance(given, dict) else {}
            request = {"maThe": id_number, **{k: v for k, v in person.items() if k in ("hoTen", "ngaySinh")
                                              and isinstance(v, str)}, **OFFICER}  # fmt: skip
            reply["gateway"] = self.gateway.lookup(request)
            if request.get("hoTen"):  # the chip's name and birth date, as the gateway was asked
                known = self.people.setdefault(id_number, {"id_number": id_number})
                known.setdefault("full_name", request["hoTen"])
                try:
                    known.setdefault("birth", parse_date(request.get("ngaySinh"), "ngaySinh").isoformat())
                except GatewayDataError:
                    pass
        self._reply(terminal, bytes(corr), reply)

    def _verify_vneid(self, token: object) -> dict[str, Any] | None:
        """Ask the national identity service (its answer; never log the token)."""
        if not isinstance(token, str) or not 1 <= len(token) <= 2048:
            return None
        if self.identity_service is None:
            return {"status": "unverified"}
        answer = self.identity_service.verify(token)
        identity = answer.get("identity")
        if answer.get("status") == "valid" and isinstance(identity, dict):
            self.people[str(identity["id_number"])] = dict(identity)
        return answer

    def _reply(self, terminal: str, corr: bytes, body: dict[str, Any]) -> None:
        out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        out.CorrelationData = corr
        sealed = self.signer.seal(terminal, "reply", {**body, "corr": corr})
        self._outbox.put((f"gate/{self.facility}/{terminal}/reply", sealed, out))

    # --- commands and reports -----------------------------------------------------------------------

    def send_command(self, terminal: str, command: Mapping[str, Any]) -> str:
        command_id = str(command.get("id") or uuid.uuid4())
        payload = self.signer.seal(terminal, "cmd", dict(command, id=command_id))
        self._sent[command_id] = terminal
        self._outbox.put((f"gate/{self.facility}/{terminal}/cmd", payload, None))
        return command_id

    def push_eligibility(self, terminal: str, records: list[Mapping[str, Any]], as_of: str) -> str:
        return self.send_command(terminal, {"type": "eligibility_snapshot", "as_of": as_of, "records": records})

    def wait_result(self, command_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if command_id in self.results:
                return self.results[command_id]
            time.sleep(0.02)
        return None

    def count(self, kind: str | None = None) -> int:
        with self._db_lock:
            if kind is None:
                return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM events WHERE type = ?", (kind,)).fetchone()[0])

    def events(self) -> list[dict[str, Any]]:
        with self._db_lock:
            rows = self._db.execute("SELECT body FROM events ORDER BY terminal, seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def xml0_rows(self, day: dt.date | None = None) -> list[dict[str, str]]:
        """QĐ 4750 XML0 rows of the stored check-ins (of ``day``, Vietnam time, when given), numbered from 1."""
        rows: list[dict[str, str]] = []
        for event in self.events():
            if day is not None:
                wall = dt.datetime.fromtimestamp(float(event["time"]["wall"]), dt.UTC).astimezone(xml0.VN)
                if wall.date() != day:
                    continue
            number = str((event.get("body") or {}).get("id_number") or "")
            record = self.eligibility.get(number)
            person = dict(self.people.get(number) or {})
            if record is not None:  # what the verified identity did not say, the insurer's record does
                for key in ("full_name", "birth", "sex"):
                    if not person.get(key) and record.get(key):
                        person[key] = record[key]
            row = xml0.row_for(event, len(rows) + 1, person or None, record, self.facility)
            if row is not None:
                rows.append(row)
        return rows

    def export_xml0(self, day: dt.date, path: Path) -> int:
        """A day's XML0 file for the HIS; every row validated.  The number of rows."""
        return xml0.export_day(self.xml0_rows(day), path)

    def discrepancy_report(self) -> dict[str, dict[str, int]]:
        """Discrepancies by participant category and field: what the insurer must clean."""
        report: dict[str, dict[str, int]] = {}
        for event in self.events():
            if event["type"] != "discrepancy":
                continue
            body = event["body"]
            cat = report.setdefault(str(body.get("category") or "unknown"), {})
            for name in body.get("fields", {}):
                cat[name] = cat.get(name, 0) + 1
        return report


def _json(payload: bytes) -> str:
    """A terminal's status as JSON; plain CBOR only (a self-referencing status is refused, not recursed into)."""
    try:
        return json.dumps(decode_payload(payload), default=lambda v: v.hex() if isinstance(v, bytes) else str(v))
    except (HubMessageError, ValueError):
        return "null"
