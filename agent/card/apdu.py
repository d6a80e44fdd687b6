"""Command and response APDUs (ISO/IEC 7816-4, 5.1-5.6) and the channel that exchanges them.

The channel is the only place that knows the T=0 era conventions a PC/SC reader
may still surface: ``61xx`` (more data: GET RESPONSE) and ``6Cxx`` (wrong Le: re-issue
with Le = xx).  Above it, callers see one response per command, and an error
status word as a typed :class:`~agent.card.errors.StatusError`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from agent.card.errors import (
    AuthenticationFailed,
    CardError,
    ChainingError,
    FileNotFoundOnCard,
    OffsetError,
    ReadDeadlineError,
    SecurityStatusError,
    SmObjectsError,
    StatusError,
    UnsupportedCommand,
    WrongLengthError,
    WrongParameters,
)
from agent.logs import WIRE
from agent.transport.base import CardTransport

log = logging.getLogger(__name__)

SW_OK = 0x9000
#: the most a short Le asks for (Le = 00) and an extended one (Le = 0000)
SHORT_MAX = 256
EXTENDED_MAX = 65536
#: the most GET RESPONSE rounds one command may take: an extended response (65536 bytes) in 256-byte parts
MAX_CHAINED = EXTENDED_MAX // SHORT_MAX


@dataclass(frozen=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # expected response length; 256 (short) or 65536 (extended) = "as much as you have"
    extended: bool = False  # force extended encoding even when short would do

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} must be a byte, got {value}")
        if len(self.data) > 65535:
            raise ValueError("command data longer than 65535 bytes")
        if self.le is not None and not 1 <= self.le <= EXTENDED_MAX:
            raise ValueError(f"Le must be 1..65536, got {self.le}")

    @property
    def is_extended(self) -> bool:
        return self.extended or len(self.data) > 255 or (self.le is not None and self.le > SHORT_MAX)

    def to_bytes(self) -> bytes:
        """ISO/IEC 7816-4, 5.1: cases 1-4, short or extended."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not self.is_extended:
            body = b""
            if self.data:
                body += bytes((len(self.data),)) + self.data
            if self.le is not None:
                body += bytes((self.le % SHORT_MAX,))
            return header + body
        body = b""
        if self.data:
            body += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            le = (self.le % EXTENDED_MAX).to_bytes(2, "big")
            body += le if self.data else b"\x00" + le
        return header + body

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandApdu:
        """Parse any of the seven encodings; :class:`CardError` on malformed input."""
        if len(raw) < 4:
            raise CardError(f"command APDU of {len(raw)} bytes is shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX)
        if body[0] != 0:  # short with data
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:])
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, body[1 : 1 + lc], le=body[-1] or SHORT_MAX)
            raise CardError(f"command APDU: Lc {lc} does not match {len(body) - 1} body bytes")
        if len(body) == 3:  # extended, Le only
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or EXTENDED_MAX, extended=True)
        if len(body) < 3:
            raise CardError("command APDU: truncated extended length")
        lc = int.from_bytes(body[1:3], "big")
        rest = body[3:]
        if lc == 0:
            raise CardError("command APDU: extended Lc of zero")
        if len(rest) == lc:
            return cls(cla, ins, p1, p2, rest, extended=True)
        if len(rest) == lc + 2:
            le = int.from_bytes(rest[lc:], "big") or EXTENDED_MAX
            return cls(cla, ins, p1, p2, rest[:lc], le=le, extended=True)
        raise CardError(f"command APDU: extended Lc {lc} does not match {len(rest)} body bytes")


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise CardError(f"response APDU of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


def status_error(sw: int, command: str = "") -> StatusError:
    """The typed error for an error status word."""
    if sw == 0x6982:
        return SecurityStatusError(sw, command)
    if sw in (0x6A82, 0x6A83):
        return FileNotFoundOnCard(sw, command)
    if sw == 0x6700:
        return WrongLengthError(sw, command)
    if sw == 0x6300 or sw & 0xFFF0 == 0x63C0:
        return AuthenticationFailed(sw, command)
    if sw in (0x6987, 0x6988):
        return SmObjectsError(sw, command)
    if sw == 0x6B00:
        return OffsetError(sw, command)
    if sw in (0x6D00, 0x6E00):
        return UnsupportedCommand(sw, command)
    if sw in (0x6A80, 0x6A81, 0x6A86, 0x6A87):
        return WrongParameters(sw, command)
    return StatusError(sw, command)


def check(response: ResponseApdu, command: str = "") -> bytes:
    """The response data when the status word says success; else the typed error."""
    if response.sw != SW_OK:
        raise status_error(response.sw, command)
    return response.data


@dataclass
class Counters:
    apdus: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0


@dataclass
class ApduChannel:
    """Plain APDU exchange over a :class:`CardTransport`, with GET RESPONSE and 6Cxx handling."""

    transport: CardTransport
    counters: Counters = field(default_factory=Counters)
    #: absolute deadline (time.monotonic()) after which no command is sent: a slow or hostile chip costs no more
    deadline: float | None = None

    def transceive(self, command: CommandApdu) -> ResponseApdu:
        response = self._raw(command.to_bytes())
        if response.sw1 == 0x6C:  # wrong Le: re-issue with the exact length (ISO/IEC 7816-3, 10.3.3)
            retry = CommandApdu(command.cla, command.ins, command.p1, command.p2, command.data, response.sw2 or 256)
            response = self._raw(retry.to_bytes())
        data = response.data
        rounds = 0
        while response.sw1 == 0x61:  # more data available
            rounds += 1
            if rounds > MAX_CHAINED or len(data) > EXTENDED_MAX:
                raise ChainingError(f"response chaining past {EXTENDED_MAX} bytes ({rounds} GET RESPONSE rounds)")
            get = CommandApdu(command.cla & 0x0C, 0xC0, 0, 0, le=response.sw2 or 256)
            response = self._raw(get.to_bytes())
            data += response.data
        return ResponseApdu(data, response.sw)

    def _raw(self, raw: bytes) -> ResponseApdu:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ReadDeadlineError("the chip read passed its deadline")
        start = time.perf_counter()
        if log.isEnabledFor(WIRE):
            log.log(WIRE, "> %s", raw[:5].hex())  # the header only: command data may be personal
        answer = self.transport.transmit(raw)
        self.counters.seconds += time.perf_counter() - start
        self.counters.apdus += 1
        self.counters.bytes_sent += len(raw)
        self.counters.bytes_received += len(answer)
        response = ResponseApdu.from_bytes(answer)
        if log.isEnabledFor(WIRE):
            log.log(WIRE, "< %d bytes %04X", len(response.data), response.sw)
        return response
