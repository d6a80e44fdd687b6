"""systemd's notify protocol (sd_notify(3)) and watchdog, without a libsystemd binding.

A datagram to ``$NOTIFY_SOCKET`` (a path, or an abstract socket when it starts
with ``@``).  Outside systemd the variable is unset and every call is a no-op,
so the daemon runs the same in a terminal, in tests and under the service manager.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_interval: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            # sd_watchdog_enabled(3): ping at least every half of WATCHDOG_USEC
            self.watchdog_interval = int(usec) / 1_000_000 / 2
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, state: str) -> bool:
        if not self.address:
            return False
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(state.encode(), address)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def reloading(self) -> None:
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def watchdog(self, force: bool = False) -> None:
        """Ping if due (call it from the main loop: a wedged loop stops pinging and gets restarted)."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic()
        if force or now - self._last_ping >= self.watchdog_interval / 2:
            self._last_ping = now
            self.notify("WATCHDOG=1")
