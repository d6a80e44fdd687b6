"""Shared fixtures: a private pcscd with vpcd readers, a private mosquitto per test.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, so the socket path of
the session's private pcscd is fixed here, at import, before any test can touch
pyscard.  The daemon itself starts on first use of the ``pcscd`` fixture.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.infra import pcscd as pcscd_infra
from sim.infra.mosquitto import Mosquitto, start_mosquitto

# Only a path here: the directory is created when the fixture first starts pcscd,
# so a session that never needs pcscd leaves nothing behind.
_PCSCD_DIR = Path(tempfile.gettempdir()) / f"gate-test-pcscd-{os.getpid()}-{os.urandom(4).hex()}"
if pcscd_infra.can_run_private():
    os.environ["PCSCLITE_CSOCK_NAME"] = str(_PCSCD_DIR / "run" / "pcscd.comm")


@pytest.fixture(scope="session")
def pcscd() -> Iterator[pcscd_infra.Pcscd]:
    """A real pcscd with two vpcd readers, private to this test session when running as root."""
    daemon = pcscd_infra.start_pcscd(_PCSCD_DIR)
    if daemon.private:
        assert os.environ["PCSCLITE_CSOCK_NAME"] == str(daemon.socket_path)
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(_PCSCD_DIR, ignore_errors=True)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto broker on a free loopback port, with its own configuration."""
    broker = start_mosquitto(tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.stop()
