"""Scanner bytes -> complete scans: line framing and MRZ line grouping, with no serial port in sight.

Scanners send text lines ended by CR, LF or CR LF (models differ, some are
configurable).  Any of CR and LF ends a line and empty lines are skipped, so a CR LF
split across two reads frames the same as one that arrives whole.  A QR scanner's
line is one scan.  An MRZ reader sends a document's MRZ as consecutive lines: 3 lines
of 30 characters (TD1, the CCCD) or 2 lines of 44 (TD3, a passport), ICAO 9303-3
§4.2; the framer collects them and yields them joined by LF.  A pause in the byte
stream (:meth:`ScanFramer.pause`, called by the reading loop when nothing arrived for
a while) ends an MRZ that is still missing lines, so a partial scan does not glue
itself to the next document.

The line buffer is bounded: a line longer than ``max_line`` bytes (no scanner sends
one; a stuck or misconfigured device can) is dropped up to its end, with a warning
that says nothing of its content.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

MAX_LINE = 4096  # bytes; a CCCD front QR text is about 100, an MRZ line 30 or 44
_MRZ_LINE = re.compile(r"^[A-Z0-9<]{30}$|^[A-Z0-9<]{44}$")
_ENDS = re.compile(rb"[\r\n]")


class ScanFramer:
    """Fed bytes as they arrive, returns the complete scans they finish (text, MRZ lines joined by LF)."""

    def __init__(self, kind: str, *, max_line: int = MAX_LINE) -> None:
        if kind not in ("mrz", "qr"):
            raise ValueError(f"scanner kind must be mrz or qr, not {kind!r}")
        self.kind = kind
        self.max_line = max_line
        self._buffer = bytearray()
        self._overlong = False  # inside a line that was too long: drop bytes up to its end
        self._mrz: list[str] = []
        self.dropped_lines = 0

    @property
    def partial(self) -> bool:
        """Part of a scan is held: a line without its end, or MRZ lines without the rest."""
        return bool(self._buffer) or bool(self._mrz)

    def feed(self, data: bytes) -> list[str]:
        scans: list[str] = []
        start = 0
        for end in _ENDS.finditer(data):
            self._take(data[start : end.start()])
            if not self._overlong and self._buffer:
                line = bytes(self._buffer).decode("utf-8", "replace").strip()
                if line:
                    scans.extend(self._line(line))
            self._buffer.clear()
            self._overlong = False
            start = end.end()
        self._take(data[start:])
        return scans

    def pause(self) -> None:
        """Nothing arrived for a while: an MRZ still missing lines will not be completed."""
        self._mrz = []

    def discard_partial(self) -> None:
        """The scan so far was bad: forget the MRZ lines collected (the patient scans again)."""
        self.pause()

    def _take(self, chunk: bytes) -> None:
        if self._overlong or not chunk:
            return
        if len(self._buffer) + len(chunk) > self.max_line:
            self._buffer.clear()
            self._overlong = True
            self.dropped_lines += 1
            log.warning("%s scanner: dropped a line longer than %d bytes", self.kind, self.max_line)
            return
        self._buffer += chunk

    def _line(self, line: str) -> list[str]:
        if self.kind != "mrz" or not _MRZ_LINE.match(line.upper()):
            return [line]
        self._mrz.append(line.upper())
        if len(self._mrz) < 2 or (len(self._mrz) == 2 and len(self._mrz[0]) == 30):
            return []  # TD1 needs a third line
        text = "\n".join(self._mrz)
        self._mrz = []
        return [text]
