"""Simulator commands as child processes: bounded line reads, stopped by PID (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


class Child:
    """A process whose stdout lines are collected by a thread, so every read has a timeout."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None, stdin: Any = subprocess.DEVNULL,
                 stderr_path: Path | None = None) -> None:  # fmt: skip
        self._stderr: TextIO | None = open(stderr_path, "a") if stderr_path else None
        self.proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=subprocess.PIPE, stderr=self._stderr or subprocess.DEVNULL,
            text=True, env={**os.environ, **(env or {})}, start_new_session=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def readline(self, timeout: float = 30.0) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output line within {timeout} s; so far: {self.seen}") from None
        if line is None:
            raise AssertionError(f"exited with {self.proc.wait(5)} after {self.seen}")
        self.seen.append(line)
        return line

    def read_json(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.1, deadline - time.monotonic()))
            if line.startswith("{"):
                return dict(json.loads(line))

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> str:
        """The first further line for which ``predicate(line)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.1, deadline - time.monotonic()))
            if predicate(line):
                return line

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._stderr:
            self._stderr.close()
        return int(self.proc.returncode)


@contextmanager
def child(argv: Sequence[str], **kwargs: Any) -> Iterator[Child]:
    c = Child(argv, **kwargs)
    try:
        yield c
    finally:
        c.stop()


def sim(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


def card_port_flag() -> str:
    """The option ``python -m sim card`` takes the vpcd port with."""
    from sim.commands.card import PORT_FLAG

    return PORT_FLAG
