"""The kiosk as an :class:`agent.app.ports.Output`: prompts and outcomes become screens on the page.

A small thread ends countdowns and polls the gate's status for faults (every
``fault_poll`` seconds); everything else happens in the flow's thread, so an outcome
reaches the page's stream as soon as ``show`` returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.kiosk.screen import STATUS_UNKNOWN, KioskModel, Screen, faults_from_status, outcome_screen
from agent.kiosk.server import DEFAULT_FONT_DIR, PageServer, StateBus
from agent.model import Shown

log = logging.getLogger(__name__)

StatusSource = Callable[[], Mapping[str, Any]]


class KioskOutput:
    """Serves the kiosk page and keeps it on the flow's current screen."""

    def __init__(
        self,
        bind: str = "127.0.0.1",
        port: int = 8080,
        *,
        hold: float = 8.0,
        backlog_warn: int = 50,
        fault_poll: float = 2.0,
        font_dir: Path = DEFAULT_FONT_DIR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address = (bind, port)
        self.model = KioskModel(hold)
        self.bus = StateBus()
        self.clock = clock
        self.backlog_warn = backlog_warn
        self.fault_poll = fault_poll
        #: the gate's status document (set by the wiring once the devices exist)
        self.status_source: StatusSource | None = None
        #: called with each screen right after it is published (the bench and tests time it)
        self.on_publish: Callable[[Screen], None] | None = None
        self._lock = threading.Lock()
        self._publish(self.model.current)
        self.server = PageServer(bind, port, "agent.kiosk", self.bus, font_dir=font_dir).start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kiosk", daemon=True)
        self._thread.start()
        log.info("kiosk page on %s", self.server.url)

    @property
    def address(self) -> tuple[str, int]:
        """What it was asked to bind (port 0 = any free port)."""
        return self._address

    @property
    def url(self) -> str:
        return self.server.url

    # --- Output -------------------------------------------------------------------------------------

    def prompt(self, code: str, message_vi: str, message_en: str) -> None:
        with self._lock:
            screen = self.model.prompt(code, message_vi, message_en, self.clock())
            if screen is not None:
                self._publish(screen)

    def show(self, shown: Shown) -> None:
        identity = shown.identity
        screen = outcome_screen(
            shown.outcome, shown.message_vi, shown.message_en, gate_opens=shown.gate_opens,
            full_name=identity.full_name if identity else None, id_number=identity.id_number if identity else None,
        )  # fmt: skip
        with self._lock:
            self._publish(self.model.outcome(screen, self.clock()))

    # --- life ---------------------------------------------------------------------------------------

    def _publish(self, screen: Screen) -> None:
        self.bus.publish(screen.to_json(self.clock()))
        if self.on_publish is not None:
            self.on_publish(screen)

    def refresh_faults(self) -> None:
        source = self.status_source
        if source is None:
            return
        try:
            faults = faults_from_status(source(), self.backlog_warn)
        except Exception:  # the status comes from every part of the gate; none may silence the screen
            log.exception("gate status unavailable for the kiosk")
            faults = (STATUS_UNKNOWN,)
        with self._lock:
            screen = self.model.set_faults(faults)
            if screen is not None:
                self._publish(screen)

    def _run(self) -> None:
        next_poll = 0.0
        while not self._stop.wait(0.1):
            with self._lock:
                screen = self.model.tick(self.clock())
                if screen is not None:
                    self._publish(screen)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.fault_poll
                self.refresh_faults()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(2)
        self.server.stop()
