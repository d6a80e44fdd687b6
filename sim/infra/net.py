"""Free loopback ports and waiting for a listener."""

from __future__ import annotations

import socket
import time


def free_port(count: int = 1, host: str = "127.0.0.1") -> int:
    """A port P such that P .. P+count-1 are free right now on ``host`` (and 0.0.0.0)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((host, 0))
            base = int(s.getsockname()[1])
        if base + count > 65535:
            continue
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no run of {count} free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - probe only; vpcd binds the wildcard address
        except OSError:
            return False
    return True


def tcp_listening(port: int) -> bool:
    """True if some socket on this machine listens on TCP ``port`` (read from /proc, no connection made)."""
    want = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if fields[3] == "0A" and (fields[1] + " ").endswith(want):
                        return True
        except FileNotFoundError:
            continue
    return False


def tcp_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """A connection to ``host:port`` is accepted right now (the listener is up and serving, not just bound)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate()`` until it is true or raise ``TimeoutError`` naming ``what``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def wait_until(predicate: object, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` for up to ``timeout`` seconds; whether it came true (asked once more at the end)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
