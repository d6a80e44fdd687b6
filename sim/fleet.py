"""Simulated terminals for fleet tests and benches: the real event queue and uplink, synthetic events.

A :class:`FleetTerminal` is what a gate's daemon runs minus the devices: each event is
made (CBOR, COSE-signed by the terminal's key), appended to its own durable queue
(fsync'd, encrypted) and sent by its own :class:`agent.uplink.client.Uplink`, which
only lets it go when the hub's signed ack arrives.  It notes when each event was made
and when it left the queue, so a bench can report the end-to-end latency (made ->
hub stored -> ack back) and a test can check that nothing was lost.  Many of them run
in one process (threads), as many processes as the bench chooses.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.config import uplink_config
from agent.store.queue import EventQueue
from agent.uplink.client import Uplink
from agent.uplink.events import EventFactory, load_signing_key
from agent.uplink.hubmsg import HighWaterMark, HubVerifier


class TimedQueue(EventQueue):
    """An event queue that notes when each event left it (acknowledged by the hub)."""

    def __init__(self, directory: Path, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self.made: dict[int, float] = {}  # sequence number -> time.monotonic() when made
        self.latencies: list[float] = []
        self.samples: list[tuple[float, float]] = []  # (made, latency), both by time.monotonic()
        self.left: dict[int, float] = {}
        self._times = threading.Lock()

    def ack(self, seqs: list[int] | set[int]) -> int:
        done = super().ack(seqs)
        now = time.monotonic()
        with self._times:
            for seq in seqs:
                made = self.made.pop(seq, None)
                if made is not None:
                    self.latencies.append(now - made)
                    self.samples.append((made, now - made))
                    self.left[seq] = now
        return done


def terminal_uplink(queue: EventQueue, factory: EventFactory, hub_key: ed25519.Ed25519PublicKey, counter: Path,
                    table: dict[str, Any]) -> Uplink:
    """A terminal's uplink as the daemon wires it (``agent.app.wiring``): the ``[uplink]`` table through the
    config schema, hub messages verified against ``hub_key`` with a durable counter in ``counter``, backlog
    events sent in batches signed by ``factory``.  For simulated terminals, load generators and benches."""
    verifier = HubVerifier(hub_key, factory.facility, factory.terminal, HighWaterMark(counter))
    config = uplink_config(table, factory.facility, factory.terminal)
    return Uplink(config, queue, verifier=verifier, batch_sealer=factory.seal_batch)


class FleetTerminal:
    def __init__(
        self,
        root: Path,
        name: str,
        broker_urls: list[str],
        hub_key: ed25519.Ed25519PublicKey,
        facility: str = "01001",
        **uplink: object,
    ) -> None:
        """A terminal ``name`` keeping its files under ``root/name``; ``uplink`` overrides ``[uplink]`` settings."""
        self.name = name
        self.dir = Path(root) / name
        self.key = load_signing_key(self.dir / "terminal.key")
        self.factory = EventFactory(facility, name, self.key)
        self.queue = TimedQueue(self.dir / "queue")
        table: dict[str, Any] = {"broker_urls": list(broker_urls), "allow_plaintext": True, "backoff_min": 0.2,
                                 "backoff_max": 2.0, **uplink}  # fmt: skip
        self.uplink = terminal_uplink(self.queue, self.factory, hub_key, self.dir / "hub-counter.json", table)
        self.ids: list[str] = []
        self._lock = threading.Lock()

    @property
    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self.key.public_key()

    def start(self) -> FleetTerminal:
        self.uplink.start()
        return self

    def emit(self, n: int = 1) -> list[str]:
        """Make ``n`` synthetic check-in events (durable before this returns) and wake the uplink."""
        out = []
        with self._lock:  # one writer per queue, as in the daemon
            for _ in range(n):
                event = self.factory.envelope("checkin", self.queue.reserve(), {"outcome": "admitted",
                                              "assurance": "chip+finger", "synthetic": True})  # fmt: skip
                sealed = self.factory.seal(event)
                self.queue.made[event["seq"]] = time.monotonic()
                self.queue.append(event["id"], sealed, seq=event["seq"])
                out.append(event["id"])
            self.ids.extend(out)
        self.uplink.notify()
        return out

    def heartbeat(self) -> None:
        """The periodic retained status, as the daemon publishes it (no personal data)."""
        stats = self.uplink.stats
        self.uplink.publish_status({"state": "online", "terminal_id": self.name, "queue": {"pending": len(self.queue)},
                                    "uplink": {"connected": self.uplink.connected, "published": stats.published,
                                               "acked": stats.acked, "broker": stats.broker}})  # fmt: skip

    def stop(self, flush: float = 0.0) -> None:
        self.uplink.stop(flush)
        self.queue.close()
