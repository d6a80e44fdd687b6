"""A scanner as a device source of the check-in flow: lines in, access keys out.

Both kinds of scanner send text lines over a serial port (``serial_for_url``: a
device, a pty, ``socket://``).  An MRZ reader sends the 2 or 3 MRZ lines of a
document; a QR scanner sends the CCCD front QR code (``ID|old ID|name|...``) or a
plain 12-digit ID number (typed on the scanner's keypad or scanned from a barcode).
A plain ID number gives the CAN (its last 6 digits), which opens a CCCD with PACE;
a chip without PACE needs the MRZ keys, hence the date of birth, and the read then
fails as "wrong keys" for the attendant to enter it.  A bad scan is logged with the
field that failed and ignored: the patient scans again.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from agent.app.ports import KeysEntered, Trigger
from agent.card.cccd import PersonalId, parse_card_qr
from agent.card.errors import InputError
from agent.card.keys import AccessKeys
from agent.card.mrz import parse_mrz
from agent.errors import SerialTransportError

log = logging.getLogger(__name__)

_MRZ_LINE = re.compile(r"^[A-Z0-9<]{30}$|^[A-Z0-9<]{44}$")


def parse_scan(text: str, kind: str) -> KeysEntered | None:
    """A complete scan -> keys; None when more lines are needed; InputError when it is wrong."""
    text = text.strip()
    if kind == "qr" and re.fullmatch(r"[0-9]{12}", text):
        pid = PersonalId(text)  # province code checked: a wrong scan is an InputError
        return KeysEntered(AccessKeys(can=pid.can), "qr", pid.number)
    if kind == "qr" or "|" in text:
        qr = parse_card_qr(text)
        return KeysEntered(qr.access_keys(), "qr", qr.id_number)
    mrz = parse_mrz(text)
    return KeysEntered(AccessKeys(mrz_keys=(mrz.key,)), "mrz", None)


class ScannerSource:
    """Reads a serial scanner in a thread and submits keys to the flow."""

    def __init__(self, url: str, kind: str, baudrate: int = 9600) -> None:
        self.url = url
        self.kind = kind
        self.name = f"{kind} scanner"
        self.baudrate = baudrate
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.scans = 0

    def state(self) -> str:
        return f"error: {self.error}" if self.error else "ok"

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(submit,), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3)

    def _open(self) -> object:
        import serial

        try:
            return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.3)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialTransportError(f"{self.name} at {self.url}: {exc}") from exc

    def _run(self, submit: Callable[[Trigger], None]) -> None:
        import serial

        while not self._stop.is_set():
            try:
                port = self._open()
            except SerialTransportError as exc:
                self.error = str(exc)
                self._stop.wait(2)
                continue
            self.error = None
            lines: list[str] = []
            buffer = b""
            try:
                while not self._stop.is_set():
                    # what is buffered now, else wait (up to the port timeout) for one byte: a whole
                    # line goes on at once instead of waiting out the timeout for a full block
                    chunk = port.read(port.in_waiting or 1)  # type: ignore[attr-defined]
                    if not chunk:
                        if lines:  # a pause ends a multi-line MRZ that did not parse yet
                            lines = []
                        continue
                    buffer += chunk
                    while b"\n" in buffer or b"\r" in buffer:
                        raw, _, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").partition(b"\n")
                        line = raw.decode("utf-8", "replace").strip()
                        if line:
                            lines = self._line(line, lines, submit)
            except (serial.SerialException, OSError) as exc:
                self.error = f"{self.name}: {exc}"
                log.warning("%s", self.error)
            finally:
                port.close()  # type: ignore[attr-defined]
            self._stop.wait(1)

    def _line(self, line: str, lines: list[str], submit: Callable[[Trigger], None]) -> list[str]:
        if self.kind == "mrz" and _MRZ_LINE.match(line.upper()):
            lines = [*lines, line.upper()]
            if len(lines) < 2 or (len(lines) == 2 and len(lines[0]) == 30):
                return lines
            text = "\n".join(lines)
            lines = []
        else:
            text = line
        try:
            keys = parse_scan(text, self.kind)
        except InputError as exc:
            log.warning("%s: bad scan (%s): %s", self.name, exc.field or "input", exc)
            return []
        if keys is not None:
            self.scans += 1
            submit(keys)
        return lines
