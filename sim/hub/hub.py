"""A facility hub on a real MQTT broker.

It subscribes to every terminal of one facility, verifies each event's COSE
signature with the terminal's registered public key (an unknown terminal or a bad
signature is rejected and counted, never stored), stores events in SQLite keyed by
event id (a replayed event is a duplicate, counted and acknowledged again, never
stored twice), acknowledges ids to the terminal, answers eligibility queries and
pushes commands.  Everything here uses only the documented wire format and the
agent's event decoder, as an independent hub would.
"""

from __future__ import annotations

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

import cbor2
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.store.errors import StoreError
from agent.store.queue import decode_cbor
from agent.uplink.events import EventError, open_sealed

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, terminal TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    received REAL NOT NULL, outcome TEXT, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_terminal_seq ON events (terminal, seq);
CREATE TABLE IF NOT EXISTS status (terminal TEXT PRIMARY KEY, received REAL, body TEXT);
CREATE TABLE IF NOT EXISTS command_results (id TEXT PRIMARY KEY, terminal TEXT, ok INTEGER, reason TEXT);
"""


@dataclass
class HubStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    queries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


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
    ) -> None:
        """``on_stored(terminal, event)`` is called (on the writer thread) for each event stored for the first time."""
        self.facility = facility
        self.keys = dict(keys)
        self.eligibility = dict(eligibility or {})
        self.stats = HubStats()
        self.on_stored = on_stored
        self._db = sqlite3.connect(str(db), check_same_thread=False, isolation_level=None)
        self._db.executescript(SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db_lock = threading.Lock()
        parts = urlsplit(broker_url)
        default_port = 8883 if parts.scheme in ("mqtts", "ssl") else 1883
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or default_port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-{facility}-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        if username:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.results: dict[str, dict[str, Any]] = {}
        # verified events wait here; the writer stores a batch in one transaction, then acknowledges it
        self._inbox: queue_mod.Queue[tuple[str, dict[str, Any]] | None] = queue_mod.Queue()
        self._outbox: queue_mod.Queue[tuple[str, bytes, Properties | None]] = queue_mod.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="hub-writer", daemon=True)

    # --- life ---------------------------------------------------------------------------------------

    def start(self) -> Hub:
        self._writer.start()
        self.client.reconnect_delay_set(0.2, 2)
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
        """Store verified events in batches (one commit each), then acknowledge them; the only publisher."""
        while True:
            batch: list[tuple[str, dict[str, Any]] | None] = []
            try:
                batch.append(self._inbox.get(timeout=0.05))
            except queue_mod.Empty:
                pass
            while len(batch) < 1000:
                try:
                    batch.append(self._inbox.get_nowait())
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
                    self.client.publish(f"gate/{self.facility}/{terminal}/ack", cbor2.dumps({"ids": ids}), qos=1)
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
            if stop:
                return

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("hub could not connect: %s", reason)
            return
        base = f"gate/{self.facility}/+"
        for suffix in ("events", "query", "status", "cmd/result"):
            client.subscribe(f"{base}/{suffix}", qos=1)
        self.connected.set()

    # --- messages -----------------------------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) < 4 or parts[0] != "gate" or parts[1] != self.facility:
            return
        terminal, kind = parts[2], "/".join(parts[3:])
        if kind == "events":
            self._event(client, terminal, bytes(message.payload))
        elif kind == "query":
            self._query(client, terminal, message)
        elif kind == "status":
            with self._db_lock:
                body = _json(bytes(message.payload))
                self._db.execute("INSERT OR REPLACE INTO status VALUES (?, ?, ?)", (terminal, time.time(), body))
        elif kind == "cmd/result":
            try:
                result = decode_cbor(bytes(message.payload), 65536)
            except StoreError:
                return
            if isinstance(result, Mapping):
                self.results[str(result.get("id"))] = dict(result)
                with self._db_lock:
                    self._db.execute("INSERT OR REPLACE INTO command_results VALUES (?, ?, ?, ?)",
                                     (str(result.get("id")), terminal, int(bool(result.get("ok"))),
                                      str(result.get("reason"))))  # fmt: skip

    def _reject(self, terminal: str, reason: str) -> None:
        self.stats.rejected += 1
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        log.warning("rejected an event on terminal %s's topic: %s", terminal, reason)

    def _event(self, client: mqtt.Client, terminal: str, payload: bytes) -> None:
        key = self.keys.get(terminal)
        if key is None:
            self._reject(terminal, "unknown terminal")
            return
        try:
            event = open_sealed(payload, key)
        except EventError as exc:
            self._reject(terminal, "bad signature" if "verify" in str(exc) else "malformed")
            return
        if event["terminal"] != terminal or event.get("facility") != self.facility:
            self._reject(terminal, "event names another terminal")
            return
        self._inbox.put((terminal, event))

    def _query(self, client: mqtt.Client, terminal: str, message: mqtt.MQTTMessage) -> None:
        self.stats.queries += 1
        try:
            body = decode_cbor(bytes(message.payload), 4096)
        except StoreError:
            return
        if not isinstance(body, Mapping):
            return
        record = self.eligibility.get(str(body.get("id_number")))
        props = message.properties
        reply_to = getattr(props, "ResponseTopic", None) or body.get("reply_to")
        corr = getattr(props, "CorrelationData", None) or body.get("corr")
        if not reply_to:
            return
        out = Properties(PacketTypes.PUBLISH)
        if corr:
            out.CorrelationData = corr
        self._outbox.put((str(reply_to), cbor2.dumps({"record": record, "corr": corr}), out))

    # --- commands and reports -----------------------------------------------------------------------

    def send_command(self, terminal: str, command: Mapping[str, Any]) -> str:
        command_id = str(command.get("id") or uuid.uuid4())
        payload = dict(command, id=command_id)
        self._outbox.put((f"gate/{self.facility}/{terminal}/cmd", cbor2.dumps(payload), None))
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
    try:
        return json.dumps(decode_cbor(payload, 65536), default=str)
    except StoreError:
        return "null"
