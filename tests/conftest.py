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
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.bio.module import FingerprintModule
from agent.profiles import ModuleProfile
from agent.transport.base import CardTransport
from agent.transport.pcsc import PcscTransport
from sim.card import InProcessReader, SimulatedCard
from sim.finger.module import PtyModule, SimModule
from sim.infra import pcscd as pcscd_infra
from sim.infra.mosquitto import Mosquitto, start_mosquitto
from tests.card_fixtures import Serve, pcscd_card

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


@pytest.fixture(params=["inprocess", pytest.param("pcscd", marks=pytest.mark.pcscd)])
def serve(request: pytest.FixtureRequest) -> Serve:
    """A function that puts a card on a reader and yields the agent's transport to it, in-process or via pcscd."""
    if request.param == "inprocess":

        @contextmanager
        def inprocess(card: SimulatedCard) -> Iterator[CardTransport]:
            yield InProcessReader(card)

        return inprocess
    daemon: pcscd_infra.Pcscd = request.getfixturevalue("pcscd")

    @contextmanager
    def via_pcscd(card: SimulatedCard) -> Iterator[CardTransport]:
        with pcscd_card(daemon, card):
            transport = PcscTransport(daemon.reader_names[0])
            try:
                yield transport
            finally:
                transport.close()

    return via_pcscd


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto broker on a free loopback port, with its own configuration."""
    broker = start_mosquitto(tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def module(tmp_path: Path) -> Iterator[tuple[SimModule, FingerprintModule]]:
    """The simulated fingerprint module on a real pty, and the agent's driver, handshaken."""
    sim = SimModule(speed=0)
    served = PtyModule(sim, tmp_path / "finger").start()
    driver = FingerprintModule.open(str(tmp_path / "finger"), ModuleProfile(command_timeout=0.5, slow_timeout=1.0))
    driver.handshake()
    yield sim, driver
    driver.close()
    served.stop()
