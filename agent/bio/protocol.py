"""The module's serial protocol: packets, the command table and the confirmation codes.

Packet (big-endian)::

    EF 01 | address (4) | PID (1) | length (2) = len(payload) + 2 | payload | checksum (2)

checksum = (PID + both length bytes + every payload byte) mod 2^16.  PIDs: 01 command,
02 data (more follows), 07 acknowledgement, 08 end of data.  An acknowledgement's
payload starts with the confirmation code; every non-zero code maps to a typed
error carrying its meaning.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from agent.errors import GateAgentError

HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF
PID_COMMAND, PID_DATA, PID_ACK, PID_END = 0x01, 0x02, 0x07, 0x08
MAX_PAYLOAD = 256 + 64
PACKET_SIZES = {0: 32, 1: 64, 2: 128, 3: 256}


class BioError(GateAgentError):
    """Root of fingerprint module errors."""

    exit_code = 3


class FrameError(BioError):
    """Bytes that are not a valid packet (bad header, length, checksum)."""


class ModuleError(BioError):
    """The module answered with a non-zero confirmation code."""

    code = -1
    meaning = "error"

    def __init__(self, code: int, command: str = "") -> None:
        self.code = code
        super().__init__(f"module answered {code:#04x} ({CONFIRMATION.get(code, ('', 'undocumented code'))[1]})"
                         + (f" to {command}" if command else ""))  # fmt: skip


class ReceiveError(ModuleError):
    """01: the module got a damaged packet (transient: retried)."""


class NoFinger(ModuleError):
    """02: no finger on the sensor."""


class ImageError(ModuleError):
    """03 / 06 / 07 / 15: the image could not be taken or has too few features."""


class NoMatch(ModuleError):
    """08: the two templates do not match."""


class NotFound(ModuleError):
    """09: no template in the library matches."""


class BadLocation(ModuleError):
    """0B: page number outside the library."""


class WrongPassword(ModuleError):
    """13 / 21: the password is wrong or must be verified first."""


class FlashError(ModuleError):
    """18: flash write failed."""


#: confirmation code -> (error class, meaning), from the datasheet
CONFIRMATION: dict[int, tuple[type[ModuleError], str]] = {
    0x01: (ReceiveError, "error when receiving the packet"),
    0x02: (NoFinger, "no finger on the sensor"),
    0x03: (ImageError, "failed to enroll the finger"),
    0x06: (ImageError, "image too messy to generate a character file"),
    0x07: (ImageError, "too few feature points"),
    0x08: (NoMatch, "fingers do not match"),
    0x09: (NotFound, "no matching finger in the library"),
    0x0A: (ModuleError, "failed to combine the character files"),
    0x0B: (BadLocation, "page address beyond the library"),
    0x0C: (ModuleError, "error reading the template or invalid template"),
    0x0D: (ModuleError, "error uploading the template"),
    0x0E: (ModuleError, "module cannot receive the following data packets"),
    0x0F: (ModuleError, "error uploading the image"),
    0x10: (ModuleError, "failed to delete the template"),
    0x11: (ModuleError, "failed to clear the library"),
    0x13: (WrongPassword, "wrong password"),
    0x15: (ImageError, "no valid primary image in the buffer"),
    0x18: (FlashError, "error writing flash"),
    0x1A: (ModuleError, "invalid register number"),
    0x20: (ModuleError, "address code incorrect"),
    0x21: (WrongPassword, "password must be verified"),
}


def module_error(code: int, command: str = "") -> ModuleError:
    cls = CONFIRMATION.get(code, (ModuleError, ""))[0]
    return cls(code, command)


def checksum(pid: int, length: int, payload: bytes) -> int:
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


@dataclass(frozen=True)
class Packet:
    pid: int
    payload: bytes
    address: int = DEFAULT_ADDRESS

    def to_bytes(self) -> bytes:
        length = len(self.payload) + 2
        return (
            HEADER
            + self.address.to_bytes(4, "big")
            + bytes([self.pid])
            + length.to_bytes(2, "big")
            + self.payload
            + checksum(self.pid, length, self.payload).to_bytes(2, "big")
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Packet:
        """Exactly one packet; FrameError otherwise."""
        packet, used = parse_packet(data)
        if packet is None or used != len(data):
            raise FrameError("not exactly one complete packet")
        return packet


def parse_packet(buffer: bytes) -> tuple[Packet | None, int]:
    """Find the first packet in ``buffer``: (packet, bytes consumed) or (None, bytes safe to drop).

    Garbage before the EF 01 header (a power-up 0x55, line noise) is skipped; an
    incomplete packet returns (None, offset of its header) so the caller keeps waiting.
    """
    start = buffer.find(HEADER)
    if start < 0:
        return None, max(0, len(buffer) - 1)  # keep a trailing EF: it may start a header
    if len(buffer) - start < 9:
        return None, start
    pid = buffer[start + 6]
    length = int.from_bytes(buffer[start + 7 : start + 9], "big")
    if pid not in (PID_COMMAND, PID_DATA, PID_ACK, PID_END) or not 2 <= length <= MAX_PAYLOAD + 2:
        raise FrameError(f"bad packet header at offset {start} (PID {pid:#04x}, length {length})")
    end = start + 9 + length
    if len(buffer) < end:
        return None, start
    payload = buffer[start + 9 : end - 2]
    if checksum(pid, length, payload) != int.from_bytes(buffer[end - 2 : end], "big"):
        raise FrameError("packet checksum mismatch")
    return Packet(pid, payload, int.from_bytes(buffer[start + 2 : start + 6], "big")), end


@dataclass(frozen=True)
class Command:
    name: str
    code: int
    request: str  # struct format of the parameters after the instruction code
    reply: str  # struct format of the reply after the confirmation code
    data_in: bool = False  # the module sends data packets after its ack (upload)
    data_out: bool = False  # the host sends data packets after the ack (download)
    slow: bool = False  # module-side work (image capture, search): longer deadline


#: the command set (ZhianTec datasheet; references.md)
COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("gen_img", 0x01, "", "", slow=True),
    Command("img2tz", 0x02, ">B", "", slow=True),
    Command("match", 0x03, "", ">H", slow=True),
    Command("search", 0x04, ">BHH", ">HH", slow=True),
    Command("reg_model", 0x05, "", "", slow=True),
    Command("store", 0x06, ">BH", "", slow=True),
    Command("load_char", 0x07, ">BH", ""),
    Command("up_char", 0x08, ">B", "", data_in=True),
    Command("down_char", 0x09, ">B", "", data_out=True),
    Command("up_image", 0x0A, "", "", data_in=True),
    Command("down_image", 0x0B, "", "", data_out=True),
    Command("delete", 0x0C, ">HH", "", slow=True),
    Command("empty", 0x0D, "", "", slow=True),
    Command("set_sys_para", 0x0E, ">BB", ""),
    Command("read_sys_para", 0x0F, "", ">HHHHIHH"),
    Command("set_pwd", 0x12, ">I", ""),
    Command("verify_pwd", 0x13, ">I", ""),
    Command("template_num", 0x1D, "", ">H"),
    Command("read_index", 0x1F, ">B", ">32s"),
)}  # fmt: skip


def command_packet(name: str, *args: int, address: int = DEFAULT_ADDRESS) -> Packet:
    cmd = COMMANDS[name]
    return Packet(PID_COMMAND, bytes([cmd.code]) + struct.pack(cmd.request, *args), address)


@dataclass(frozen=True)
class SystemParameters:
    status: int
    system_id: int
    capacity: int
    security_level: int
    address: int
    packet_size: int  # bytes
    baud: int  # bits per second

    @classmethod
    def from_reply(cls, values: tuple[int, ...]) -> SystemParameters:
        status, system_id, capacity, level, address, size_code, baud_n = values
        if size_code not in PACKET_SIZES:
            raise FrameError(f"system parameters: packet size code {size_code} is not 0-3")
        return cls(status, system_id, capacity, level, address, PACKET_SIZES[size_code], 9600 * baud_n)
