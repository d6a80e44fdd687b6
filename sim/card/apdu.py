"""Command APDUs as the card receives them, status words, and response chaining (ISO/IEC 7816-4 5.1, 5.3).

The simulator's own parser (the agent builds APDUs with its own code): a command
the card cannot parse is answered 6700, as real chips do.
"""

from __future__ import annotations

from dataclasses import dataclass

# status words the simulated chip answers (ISO/IEC 7816-4 5.6, ICAO 9303-11 / TR-03110 where noted)
OK = 0x9000
MORE_DATA = 0x6100  # 61xx: xx more bytes with GET RESPONSE
WRONG_LENGTH = 0x6700
SM_DATA_INCORRECT = 0x6988
SECURITY_NOT_SATISFIED = 0x6982
CONDITIONS_NOT_SATISFIED = 0x6985
NO_CURRENT_EF = 0x6986
WRONG_DATA = 0x6A80
FILE_NOT_FOUND = 0x6A82
INCORRECT_P1P2 = 0x6A86
REFERENCE_NOT_FOUND = 0x6A88
WRONG_OFFSET = 0x6B00
INS_NOT_SUPPORTED = 0x6D00
CLA_NOT_SUPPORTED = 0x6E00
VERIFICATION_FAILED = 0x6300

INS_GET_RESPONSE = 0xC0


def sw(value: int) -> bytes:
    """A status word as its two bytes."""
    return value.to_bytes(2, "big")


SW_OK = sw(OK)


@dataclass(frozen=True)
class Command:
    """One command APDU: header, data field and Ne (None when absent; 256 or 65536 for a zero Le)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None
    extended: bool

    @property
    def secure(self) -> bool:
        """CLA bits 4-3 say secure messaging (ISO/IEC 7816-4 5.4.1)."""
        return bool(self.cla & 0x0C)


def parse_command(raw: bytes) -> Command | None:
    """The four cases of 7816-4 5.1, short and extended; None for a malformed APDU (answered 6700)."""
    if len(raw) < 4:
        return None
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return Command(cla, ins, p1, p2, b"", None, False)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0] or 256, False)
    if body[0]:
        lc = body[0]
        if len(body) == 1 + lc:
            return Command(cla, ins, p1, p2, body[1:], None, False)
        if len(body) == 2 + lc:
            return Command(cla, ins, p1, p2, body[1:-1], body[-1] or 256, False)
        return None
    if len(body) == 3:
        return Command(cla, ins, p1, p2, b"", int.from_bytes(body[1:], "big") or 65536, True)
    lc = int.from_bytes(body[1:3], "big")
    rest = body[3:]
    if lc and len(rest) == lc:
        return Command(cla, ins, p1, p2, rest, None, True)
    if lc and len(rest) == lc + 2:
        return Command(cla, ins, p1, p2, rest[:lc], int.from_bytes(rest[lc:], "big") or 65536, True)
    return None


class ResponseChain:
    """Response chaining (7816-4 5.3.4): a long answer goes out in parts, each but the last ending 61xx.

    :meth:`start` gives the first part; each GET RESPONSE (``xx C0 00 00 Le``) gives
    the next, and the last part ends with the real status word.  ``xx`` in 61xx is the
    count still waiting (00: 256 or more).  :meth:`start_endless` is a hostile chip's
    version: after the first part, GET RESPONSE always has 256 more bytes.
    """

    def __init__(self, part: int = 256, filler: int = 0xFF) -> None:
        self.part = part
        self.filler = filler
        self._rest = b""
        self._status = OK
        self._endless = False

    @property
    def pending(self) -> bool:
        return bool(self._rest) or self._endless

    def start(self, data: bytes, status: int) -> bytes:
        self._rest, self._status, self._endless = data, status, False
        return self.next(self.part)

    def start_endless(self, first: bytes) -> bytes:
        self._rest, self._endless = b"", True
        return first + sw(MORE_DATA)

    def next(self, le: int | None) -> bytes:
        """The answer to GET RESPONSE with ``le`` (None or 0: up to 256); 6985 when nothing waits."""
        count = min(self.part, le or 256)
        if self._endless:
            return bytes([self.filler]) * count + sw(MORE_DATA)
        if not self._rest:
            return sw(CONDITIONS_NOT_SATISFIED)
        out, self._rest = self._rest[:count], self._rest[count:]
        if self._rest:
            return out + sw(MORE_DATA | (min(len(self._rest), 0x100) & 0xFF))
        return out + sw(self._status)

    def clear(self) -> None:
        self._rest, self._endless = b"", False
