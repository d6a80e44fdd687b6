"""Plug a simulated card into a real pcscd through the vpcd driver (vsmartcard's virtual reader).

The vpcd driver listens on a TCP port per virtual reader; the card ("vicc") is the
client.  Each message is a 2-byte big-endian length and a payload; a 1-byte payload
is a control code (00 power off, 01 power on, 02 reset, 04 "send the ATR"), longer
payloads are command APDUs answered with the response APDU.  Closing the socket
takes the card out of the reader.

The driver serves one card per slot: while a card is connected, a second client's
TCP connection is completed by the kernel (the listening socket's backlog) but the
driver never accepts it, so it never receives a message.  A served card is asked
for its ATR at pcscd's next presence poll (every 400 ms).  :meth:`VpcdPlug.wait_served`
tells the two apart: no message from pcscd within a few seconds means the slot
already has a card.
"""

from __future__ import annotations

import logging
import socket
import threading

from sim.card.card import SimulatedCard

log = logging.getLogger(__name__)

POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4
#: pcscd polls card presence every 400 ms (pcsc-lite PCSCLITE_STATUS_POLL_RATE); allow for a loaded machine
SERVED_TIMEOUT = 5.0


class VpcdPlug:
    def __init__(
        self,
        card: SimulatedCard | None,
        port: int,
        host: str = "127.0.0.1",
        reinsert_delay: float | None = None,
    ) -> None:
        self.card = card
        self.port = port
        self.host = host
        self.reinsert_delay = reinsert_delay  # after a fault pulls the card: put it back after this long
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.served = threading.Event()  # pcscd spoke to us on the current connection
        self.apdus = 0

    # --- control ------------------------------------------------------------------------------------

    def start(self) -> VpcdPlug:
        self._thread = threading.Thread(target=self._run, name=f"vpcd-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        self._close()
        if self._thread is not None:
            self._thread.join(5)

    def remove(self) -> None:
        """Take the card out of the reader (it stays out until :meth:`insert`)."""
        with self._lock:
            if self.card is not None:
                self.card.present = False
        self._close()

    def insert(self, card: SimulatedCard | None = None) -> None:
        """Put a card (this one, or the same again) on the reader."""
        with self._lock:
            if card is not None:
                self.card = card
            if self.card is not None:
                self.card.reinsert()
        self._changed.set()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self.connected.wait(timeout)

    def wait_served(self, timeout: float = SERVED_TIMEOUT) -> bool:
        """True once pcscd sent its first message on our connection; False if it stayed silent (slot taken)."""
        return self.served.wait(timeout)

    # --- the socket ---------------------------------------------------------------------------------

    def _close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
            self.connected.clear()
            self.served.clear()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            card = self.card
            if card is None or not card.present:
                self._changed.wait(0.2)
                self._changed.clear()
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                self._stop.wait(0.1)  # pcscd not (yet) listening: keep trying
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(0.2)
            with self._lock:
                self._sock = sock
            self.connected.set()
            log.debug("card inserted in vpcd port %d", self.port)
            try:
                self._serve(sock, card)
            except OSError as exc:
                log.debug("vpcd link closed: %s", exc)
            self._close()

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            if self._stop.is_set() or self._sock is not sock:
                return None
            try:
                chunk = sock.recv(n - len(data))
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
            if hasattr(socket, "TCP_QUICKACK"):
                # without this, delayed ACKs cost ~40 ms per APDU on loopback
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def _serve(self, sock: socket.socket, card: SimulatedCard) -> None:
        while not self._stop.is_set():
            header = self._recv_exact(sock, 2)
            if header is None:
                return
            self.served.set()
            payload = self._recv_exact(sock, int.from_bytes(header, "big"))
            if payload is None:
                return
            if len(payload) == 1:
                code = payload[0]
                if code == GET_ATR:
                    sock.sendall(len(card.atr).to_bytes(2, "big") + card.atr)
                elif code in (POWER_ON, RESET):
                    card.power_on()
                elif code == POWER_OFF:
                    card.power_off()
                continue
            self.apdus += 1
            answer = card.process(payload)
            if answer is None:  # a fault pulled the card mid-exchange
                log.info("card pulled at APDU %d", card.apdu_count)
                if self.reinsert_delay is not None:
                    threading.Timer(self.reinsert_delay, self.insert).start()
                return
            sock.sendall(len(answer).to_bytes(2, "big") + answer)
