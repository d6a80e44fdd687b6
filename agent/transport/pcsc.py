"""The PC/SC card transport (pyscard) and a card insert/remove watcher.

``PCSCLITE_CSOCK_NAME`` picks the pcscd socket (the simulator and the tests run a
private pcscd).  pyscard's exceptions never leave this module: a missing daemon is
:class:`PcscUnavailableError`, a missing reader :class:`ReaderNotFoundError`, an
empty reader :class:`NoCardError`, a card pulled mid-exchange :class:`CardRemovedError`.
The watcher polls ``SCardGetStatusChange`` with a short timeout in its own thread
and reports changes through a callback, logging instead of printing (pyscard's
own monitor threads print tracebacks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.errors import (
    CardRemovedError,
    CardTransportError,
    NoCardError,
    PcscUnavailableError,
    ReaderNotFoundError,
)

log = logging.getLogger(__name__)


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:  # pragma: no cover - a broken installation
        raise PcscUnavailableError(f"pyscard is not installed: {exc}") from exc
    return scard


def list_readers() -> list[str]:
    """Reader names from pcscd; PcscUnavailableError when the daemon is not reachable."""
    scard = _scard()
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscUnavailableError(f"cannot reach pcscd: {scard.SCardGetErrorMessage(hresult)} (is pcscd running?)")
    try:
        hresult, names = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscUnavailableError(f"cannot list readers: {scard.SCardGetErrorMessage(hresult)}")
        return list(names)
    finally:
        scard.SCardReleaseContext(context)


def find_reader(substring: str = "") -> str:
    names = list_readers()
    matches = [n for n in names if substring.lower() in n.lower()]
    if not matches:
        listed = ", ".join(names) if names else "none"
        raise ReaderNotFoundError(f"no PC/SC reader matches {substring!r} (readers: {listed})")
    return matches[0]


def wait_for_card(reader: str = "", timeout: float = 10.0, present: bool = True) -> str:
    """Wait until a card is (or is no longer) in the reader; return the reader's name.

    Raises NoCardError (or CardTransportError when waiting for removal) on timeout.
    """
    scard = _scard()
    name = find_reader(reader)
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscUnavailableError(f"cannot reach pcscd: {scard.SCardGetErrorMessage(hresult)}")
    try:
        deadline = time.monotonic() + timeout
        state = scard.SCARD_STATE_UNAWARE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            hresult, states = scard.SCardGetStatusChange(context, int(min(remaining, 0.5) * 1000), [(name, state)])
            if hresult == scard.SCARD_S_SUCCESS:
                event = states[0][1]
                state = event & ~scard.SCARD_STATE_CHANGED
                if bool(event & scard.SCARD_STATE_PRESENT) == present:
                    return name
            elif hresult != scard.SCARD_E_TIMEOUT:
                raise CardTransportError(f"{name}: {scard.SCardGetErrorMessage(hresult)}")
    finally:
        scard.SCardReleaseContext(context)
    if present:
        raise NoCardError(f"{name}: no card within {timeout:.0f} s")
    raise CardTransportError(f"{name}: the card was not removed within {timeout:.0f} s")


class PcscTransport:
    """One card in one PC/SC reader, exclusive while connected."""

    def __init__(self, reader: str = "", *, exclusive: bool = True) -> None:
        scard = _scard()
        self._scard = scard
        self._name = find_reader(reader)
        hresult, self._context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscUnavailableError(f"cannot reach pcscd: {scard.SCardGetErrorMessage(hresult)}")
        share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        hresult, self._card, self._protocol = scard.SCardConnect(
            self._context, self._name, share, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        if hresult != scard.SCARD_S_SUCCESS:
            scard.SCardReleaseContext(self._context)
            message = scard.SCardGetErrorMessage(hresult)
            if hresult in (scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_REMOVED_CARD):
                raise NoCardError(f"{self._name}: no card ({message})")
            raise CardTransportError(f"{self._name}: cannot connect to the card: {message}")
        self._open = True

    @property
    def name(self) -> str:
        return self._name

    @property
    def atr(self) -> bytes:
        scard = self._scard
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(self._card)
        if hresult != scard.SCARD_S_SUCCESS:
            raise CardRemovedError(f"{self._name}: {scard.SCardGetErrorMessage(hresult)}")
        return bytes(atr)

    def transmit(self, apdu: bytes) -> bytes:
        if not self._open:
            raise CardTransportError(f"{self._name}: the connection is closed")
        scard = self._scard
        pci = scard.SCARD_PCI_T1 if self._protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
        hresult, response = scard.SCardTransmit(self._card, pci, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            message = scard.SCardGetErrorMessage(hresult)
            if hresult in (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD):
                raise CardRemovedError(f"{self._name}: card removed ({message})")
            if hresult in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED):
                raise PcscUnavailableError(f"{self._name}: pcscd went away ({message})")
            # vpcd and many readers report a pulled card as a generic transmit failure
            raise CardRemovedError(f"{self._name}: the card stopped answering ({message})")
        if not response:
            # vpcd (and some readers) report a card that left mid-exchange as an empty answer
            raise CardRemovedError(f"{self._name}: the card stopped answering (empty response)")
        return bytes(response)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        scard = self._scard
        scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self._context)

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CardWatcher:
    """Reports card insertion and removal on one reader through ``on_change(present: bool)``."""

    name = "card reader"

    def __init__(self, reader: str = "", poll_ms: int = 500) -> None:
        self.reader_substring = reader
        self.poll_ms = poll_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.present: bool | None = None
        self.error: str | None = None
        self.reader: str | None = None

    def state(self) -> str:
        if self.error:
            return f"error: {self.error}"
        return "card present" if self.present else "ok"

    def start_watch(self, on_change: Callable[[bool], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(on_change,), name="card-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)

    def _run(self, on_change: Callable[[bool], None]) -> None:
        scard = _scard()
        while not self._stop.is_set():
            try:
                self.reader = find_reader(self.reader_substring)
            except CardTransportError as exc:
                if self.error != str(exc):
                    log.warning("card watch: %s", exc)
                self.error = str(exc)
                self._stop.wait(2.0)
                continue
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                self.error = scard.SCardGetErrorMessage(hresult)
                self._stop.wait(2.0)
                continue
            self.error = None
            state = scard.SCARD_STATE_UNAWARE
            try:
                while not self._stop.is_set():
                    hresult, states = scard.SCardGetStatusChange(context, self.poll_ms, [(self.reader, state)])
                    if hresult == scard.SCARD_E_TIMEOUT:
                        continue
                    if hresult != scard.SCARD_S_SUCCESS:
                        self.error = scard.SCardGetErrorMessage(hresult)
                        log.warning("card watch: %s", self.error)
                        break
                    _name, event_state, _atr = states[0]
                    state = event_state & ~scard.SCARD_STATE_CHANGED
                    present = bool(event_state & scard.SCARD_STATE_PRESENT) and not (
                        event_state & scard.SCARD_STATE_EMPTY
                    )
                    if present != self.present:
                        self.present = present
                        log.info("card %s on %s", "inserted" if present else "removed", self.reader)
                        on_change(present)
            finally:
                scard.SCardReleaseContext(context)
            self._stop.wait(1.0)
