"""The hub's dashboard: what the facility's gates are doing, live, from the hub's own database.

``python -m sim hub --dashboard PORT`` serves it on loopback.  Every second the
snapshot is read from the hub's SQLite file (its own read-only connection, SQL
aggregates only) and, when it changed, pushed to the page over Server-Sent Events:

- gates online or offline (their retained status, or the broker's last will) with
  the last status time and the queue backlog each reports;
- check-ins per hour per gate (a Chart.js bar chart: ``static/chart-umd.js``, vendored
  from the npm package, see ``static/VENDORED.md``);
- outcomes and reasons;
- the discrepancy list for data cleansing (masked ID number, category, the fields that
  differ; the chip's values stay in the hub's database).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from agent.kiosk.screen import mask_id
from agent.kiosk.server import PageServer, StateBus

log = logging.getLogger(__name__)

DISCREPANCIES_SHOWN = 100


def snapshot(db: Path) -> dict[str, Any]:
    """The dashboard's whole state from the hub's database (no event bodies are loaded but discrepancies)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        gates: dict[str, dict[str, Any]] = {}
        for terminal, received, body in con.execute("SELECT terminal, received, body FROM status ORDER BY terminal"):
            status = json.loads(body) if body else None
            status = status if isinstance(status, dict) else {}
            queue = status.get("queue") if isinstance(status.get("queue"), dict) else {}
            gates[terminal] = {
                "terminal": terminal,
                # a gate's heartbeat carries its check-in state ("idle", "reading", ...); only the last will
                # and a clean stop say "offline"
                "online": bool(status) and status.get("state") != "offline",
                "reason": status.get("reason"),
                "last_status": received,
                "pending": queue.get("pending"),
                "devices": status.get("devices") if isinstance(status.get("devices"), dict) else {},
            }
        hourly: dict[str, dict[int, int]] = {}
        query = """SELECT terminal, CAST(json_extract(body, '$.time.wall') / 3600 AS INTEGER), COUNT(*)
                   FROM events WHERE type = 'checkin' GROUP BY 1, 2"""
        for terminal, hour, count in con.execute(query):
            if hour is not None:
                hourly.setdefault(terminal, {})[int(hour)] = int(count)
        for terminal in hourly:
            gates.setdefault(terminal, {"terminal": terminal, "online": False, "reason": "no status yet",
                                        "last_status": None, "pending": None, "devices": {}})  # fmt: skip
        outcomes = dict(con.execute("SELECT outcome, COUNT(*) FROM events WHERE type = 'checkin' GROUP BY 1"))
        reasons = dict(con.execute("""SELECT json_extract(body, '$.body.reason'), COUNT(*) FROM events
                                      WHERE type = 'checkin' GROUP BY 1 ORDER BY 2 DESC"""))  # fmt: skip
        discrepancies = []
        rows = con.execute("SELECT terminal, received, body FROM events WHERE type = 'discrepancy' "
                           "ORDER BY received DESC LIMIT ?", (DISCREPANCIES_SHOWN,))  # fmt: skip
        for terminal, received, body in rows:
            event = json.loads(body)
            b = event.get("body", {})
            discrepancies.append({
                "terminal": terminal, "received": received, "masked_id": mask_id(str(b.get("id_number", ""))),
                "category": b.get("category"), "fields": sorted(b.get("fields", {})),
                "checkin_id": b.get("checkin_id"),
            })  # fmt: skip
        total = con.execute("SELECT COUNT(*) FROM events WHERE type = 'discrepancy'").fetchone()[0]
    finally:
        con.close()
    hours = sorted({h for per in hourly.values() for h in per})
    return {
        "gates": [gates[t] for t in sorted(gates)],
        "hours": hours,
        "checkins_per_hour": {t: [hourly.get(t, {}).get(h, 0) for h in hours] for t in sorted(hourly)},
        "outcomes": {str(k): v for k, v in outcomes.items()},
        "reasons": {str(k): v for k, v in reasons.items()},
        "discrepancies": discrepancies,
        "discrepancy_total": int(total),
    }


class Dashboard:
    """Serves the page and refreshes its state every ``period`` seconds."""

    def __init__(self, db: Path, port: int, bind: str = "127.0.0.1", period: float = 1.0) -> None:
        self.db = Path(db)
        self.period = period
        self.bus = StateBus()
        self.server = PageServer(bind, port, "sim.hub", self.bus)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard", daemon=True)
        self._last: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Dashboard:
        self.refresh()
        self.server.start()
        self._thread.start()
        return self

    def refresh(self) -> None:
        try:
            doc = snapshot(self.db)
        except sqlite3.Error as exc:
            log.warning("dashboard: hub database not readable yet: %s", exc)
            return
        if doc != self._last:
            self._last = doc
            self.bus.publish(doc | {"updated": time.time()})

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)
        self.server.stop()
