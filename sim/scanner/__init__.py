"""Simulated scanners on real pseudo-terminals: an MRZ (OCR) reader and a QR/barcode scanner.

Like the real devices they send text lines (CR LF terminated) on a serial line;
the agent opens the pty's slave side by the path it is linked at.
"""

from __future__ import annotations

import os
import termios
import tty
from pathlib import Path

from sim.population import Person


class PtyScanner:
    def __init__(self, link: Path | str) -> None:
        self.link = Path(link)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        if self.link.is_symlink() or self.link.exists():
            self.link.unlink()
        self.link.symlink_to(os.ttyname(self.slave))

    def emit(self, text: str) -> None:
        """Send one scan: each line CR LF terminated, as scanners in keyboard-less serial mode do."""
        data = "".join(line + "\r\n" for line in text.splitlines()).encode("utf-8")
        os.write(self.master, data)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link.is_symlink():
            self.link.unlink()


def scan_text(person: Person, kind: str, profile: str = "cccd") -> str:
    """What the scanner sends for this person's card: the front QR, or the MRZ lines."""
    if kind == "qr":
        return person.qr()
    return "\n".join(person.td1() if profile == "cccd" else person.td3())
