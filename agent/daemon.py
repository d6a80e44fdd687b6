"""``gate-agent run``: the daemon's life — start, serve check-ins, report health, reload, stop.

Threads: one per input device (card watch, scanners, attendant socket) pushing
triggers into the flow's inbox, the MQTT client's network thread, and the main
thread, which alone runs the check-in flow and pings the systemd watchdog (from
inside the flow's waits too, so a long check-in is not mistaken for a hang, while
a wedged main loop stops pinging and is restarted).

Signals only set flags: SIGTERM/SIGINT let the current check-in finish, flush the
uplink and exit 0; SIGHUP reloads the config (policy, timeouts, outputs) between
check-ins.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from agent import __version__
from agent.app.sdnotify import Notifier
from agent.app.wiring import Runtime, build_runtime
from agent.config import Config, load_config, restart_needed
from agent.errors import GateAgentError

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0


class Daemon:
    def __init__(
        self,
        config_path: Path,
        build: Callable[[Config], Runtime] | None = None,
        notifier: Notifier | None = None,
        heartbeat: float | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.config = load_config(self.config_path)
        self._started_with = self.config  # what the runtime is built from: a reload applies only LIVE_SECTIONS
        if heartbeat is None:
            heartbeat = self.config.uplink.heartbeat
        self.build = build or build_runtime
        self.notifier = notifier or Notifier()
        self.heartbeat = heartbeat
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.runtime: Runtime | None = None
        self.started = time.time()

    # --- signals ------------------------------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.request_stop()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload.set()

    def request_stop(self) -> None:
        self._stop.set()
        if self.runtime is not None:
            self.runtime.flow.stopping.set()

    # --- status -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        rt = self.runtime
        out: dict[str, Any] = {
            "terminal_id": self.config.terminal.terminal_id,
            "facility_id": self.config.terminal.facility_id,
            "version": __version__,
            "uptime": round(time.time() - self.started, 1),
            "state": rt.flow.state.value if rt else "starting",
        }
        if rt is not None:
            stats = rt.flow.stats
            out["checkins"] = stats.checkins
            out["aborted"] = stats.aborted
            out["last_checkin"] = stats.last_checkin
            out["outcomes"] = dict(stats.by_outcome)
            out["devices"] = {source.name: source.state() for source in rt.sources}
            if rt.extra_status is not None:
                try:
                    out.update(rt.extra_status())
                except GateAgentError as exc:
                    out["status_error"] = str(exc)
        return out

    def _publish_status(self) -> None:
        rt = self.runtime
        if rt is None or rt.status_publisher is None:
            return
        try:
            rt.status_publisher.publish_status(self.status())
        except GateAgentError as exc:
            log.warning("status heartbeat not sent: %s", exc)

    # --- life ---------------------------------------------------------------------------------------

    def _tick(self) -> None:
        self.notifier.watchdog()

    def run(self) -> int:
        rt = self.runtime = self.build(self.config)
        rt.flow.on_tick = self._tick
        try:
            for source in rt.sources:
                source.start(rt.flow.submit)
            self.notifier.ready(f"serving, terminal {self.config.terminal.terminal_id}")
            log.info("gate-agent %s serving terminal %s", __version__, self.config.terminal.terminal_id)
            next_heartbeat = 0.0
            while not self._stop.is_set():
                rt.flow.step(timeout=0.5)
                self.notifier.watchdog()
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if time.monotonic() >= next_heartbeat:
                    self._publish_status()
                    next_heartbeat = time.monotonic() + self.heartbeat
            log.info("stopping: current check-in finished")
            self.notifier.stopping()
        finally:
            for source in reversed(rt.sources):
                try:
                    source.stop()
                except GateAgentError as exc:
                    log.warning("stopping %s: %s", source.name, exc)
            for close in reversed(rt.closers):
                try:
                    close()
                except GateAgentError as exc:
                    log.warning("shutdown step failed: %s", exc)
        return 0

    def reload(self) -> None:
        """SIGHUP: validate the new config; apply it, or keep the old one and say why."""
        self.notifier.reloading()
        try:
            fresh = load_config(self.config_path)
        except GateAgentError as exc:
            log.error("config reload refused, keeping the running config: %s", exc)
            self.notifier.ready("reload refused: " + str(exc))
            return
        rt = self.runtime
        if rt is not None and rt.reconfigure is not None:
            try:
                rt.reconfigure(fresh)
            except GateAgentError as exc:  # e.g. the new kiosk port is taken: say so and keep serving
                log.error("config reload failed, keeping the running config where it was not applied: %s", exc)
                self.notifier.ready("reload failed: " + str(exc))
                return
        stale = restart_needed(self._started_with, fresh)
        self.config = fresh
        if stale:
            tables = ", ".join(f"[{name}]" for name in stale)
            log.warning("config reloaded from %s; %s changed and take effect only after a restart "
                        "(systemctl restart gate-agent)", self.config_path, tables)  # fmt: skip
            self.notifier.ready(f"serving (reloaded; restart needed for {tables})")
            return
        log.info("config reloaded from %s", self.config_path)
        self.notifier.ready("serving (reloaded)")
