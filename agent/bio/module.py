"""The fingerprint module driver: commands with deadlines, retries, resynchronisation and data phases.

Field behaviour it copes with (references.md): a stray 0x55 after power-up and
line noise (skipped while hunting for ``EF 01``), checksum and receive errors on
cheap adapters (bounded retries with backoff), a module that stops answering
(soft reset by re-handshaking), first commands failing after power-up.  Every
wait has a deadline and waiting for a finger can be cancelled, so nothing here
can hang the daemon.

Why one piece: every command, data phase and the baud negotiation go through one
port and one exchange with its deadline, retries and resynchronisation; the
module's operations are thin calls of that exchange, and split off they would need
its private state (port, packet size, deadline) from outside.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from dataclasses import dataclass, replace

from agent.bio.protocol import (
    COMMANDS,
    MAX_PAYLOAD,
    PID_ACK,
    PID_DATA,
    PID_END,
    BioError,
    FrameError,
    ModuleError,
    NoFinger,
    NoMatch,
    NotFound,
    Packet,
    ReceiveError,
    SystemParameters,
    command_packet,
    module_error,
    parse_packet,
)
from agent.errors import TransportError, TransportTimeoutError
from agent.transport.serial import SerialPort

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModuleProfile:
    """What differs between models (firmware_profiles/*.toml)."""

    name: str = "r307"
    baud: int = 57600
    address: int = 0xFFFFFFFF
    password: int = 0
    packet_size: int = 128
    template_size: int = 512
    capacity: int = 1000
    command_timeout: float = 1.0
    slow_timeout: float = 3.0
    retries: int = 3
    finger_poll: float = 0.1
    fast_baud: int = 0  # negotiated with SetSysPara after the handshake (0: stay at ``baud``)
    fast_packet_size: int = 0  # likewise for data packets (0: stay at ``packet_size``)


#: the receive buffer's bound: a few packets (the largest is 9 + 256 + 64 + 2 bytes)
MAX_PACKET = 9 + MAX_PAYLOAD + 2
MAX_BUFFER = 8 * MAX_PACKET
#: the most data an upload may bring: an 8-bit 256 x 288 image, a template (R307/R503: 512-1536 bytes)
MAX_IMAGE = 256 * 288
MAX_TEMPLATE = 4096
UPLOAD_LIMITS = {"up_image": MAX_IMAGE, "up_char": MAX_TEMPLATE}


@dataclass(frozen=True)
class MatchResult:
    matched: bool
    score: int


class FingerprintModule:
    def __init__(self, port: SerialPort, profile: ModuleProfile | None = None) -> None:
        self.port = port
        self.profile = profile or ModuleProfile()
        self._buffer = b""
        self._lock = threading.RLock()
        self.stats = {"retries": 0, "resyncs": 0, "resets": 0, "bytes_out": 0, "bytes_in": 0}
        self.transfer_seconds = 0.0
        self._line_busy_until = 0.0  # a write returns before the UART has sent it all: replies come later
        self._local = threading.local()  # per thread: the running operation's absolute deadline

    @classmethod
    def open(cls, url: str, profile: ModuleProfile | None = None) -> FingerprintModule:
        profile = profile or ModuleProfile()
        return cls(SerialPort(url, profile.baud), profile)

    def close(self) -> None:
        self.port.close()

    @property
    def _deadline(self) -> float | None:
        value: float | None = getattr(self._local, "deadline", None)
        return value

    @_deadline.setter
    def _deadline(self, value: float | None) -> None:
        self._local.deadline = value

    # --- packets ------------------------------------------------------------------------------------

    def _send(self, packet: Packet) -> None:
        data = packet.to_bytes()
        self.stats["bytes_out"] += len(data)
        self.port.write(data)

    def _receive(self, deadline: float) -> Packet:
        """The next packet for our address before ``deadline``: a stream of garbage or of others' packets
        cannot extend it, and the buffer never holds more than :data:`MAX_BUFFER` bytes."""
        if self._deadline is not None:
            deadline = min(deadline, self._deadline)
        while True:
            if time.monotonic() >= deadline:
                raise TransportTimeoutError("fingerprint module: no packet for us before the deadline")
            try:
                packet, used = parse_packet(self._buffer)
            except FrameError:
                # resynchronise: drop this header and hunt for the next EF 01
                self.stats["resyncs"] += 1
                self._buffer = self._buffer[self._buffer.find(b"\xef\x01") + 2 :]
                raise
            if packet is not None:
                self._buffer = self._buffer[used:]
                if packet.address != self.profile.address:
                    log.debug("ignoring a packet for address %08X", packet.address)
                    continue
                return packet
            if used:
                self._buffer = self._buffer[used:]
            # at most what fits: parse_packet consumes garbage and packets, and waits only for one incomplete one
            chunk = self.port.read_some(deadline, max(1, MAX_BUFFER - len(self._buffer)))
            self.stats["bytes_in"] += len(chunk)
            self._buffer += chunk

    def _exchange(self, name: str, *args: int) -> tuple[int, bytes]:
        """Send one command, return (confirmation code, reply parameters); retries transient failures."""
        cmd = COMMANDS[name]
        timeout = self.profile.slow_timeout if cmd.slow else self.profile.command_timeout
        last: BioError | TransportError | None = None
        for attempt in range(self.profile.retries + 1):
            if self._deadline is not None and time.monotonic() >= self._deadline:
                last = TransportTimeoutError(f"fingerprint module: {name} not sent, the operation's deadline passed")
                break
            if attempt:
                self.stats["retries"] += 1
                time.sleep(min(0.05 * 2**attempt, 0.5))
                self._buffer = b""
                self.port.discard_input()
            try:
                start = time.monotonic()
                self._send(command_packet(name, *args, address=self.profile.address))
                reply = self._receive(max(start, self._line_busy_until) + timeout)
            except (FrameError, TransportTimeoutError) as exc:
                last = exc
                log.debug("%s: %s (attempt %d)", name, exc, attempt + 1)
                continue
            if reply.pid != PID_ACK or not reply.payload:
                last = FrameError(f"{name}: expected an acknowledgement, got PID {reply.pid:#04x}")
                continue
            code = reply.payload[0]
            if code == 0x01:  # receive error on the module's side: send again
                last = ReceiveError(code, name)
                continue
            return code, reply.payload[1:]
        assert last is not None
        if isinstance(last, TransportTimeoutError):
            raise TransportTimeoutError(
                f"fingerprint module: no answer to {name} after {self.profile.retries + 1} tries"
            )
        raise last

    def command(self, name: str, *args: int) -> tuple[int, ...]:
        """Run a command; a non-zero confirmation code raises its typed error."""
        code, data = self._exchange(name, *args)
        if code != 0:
            raise module_error(code, name)
        fmt = COMMANDS[name].reply
        if not fmt:
            return ()
        size = struct.calcsize(fmt)
        if len(data) < size:
            raise FrameError(f"{name}: reply of {len(data)} bytes, expected {size}")
        return struct.unpack(fmt, data[:size])

    # --- data phases --------------------------------------------------------------------------------

    def _upload(self, name: str, *args: int) -> bytes:
        """Commands whose ack is followed by data packets (PID 02 ..., last PID 08)."""
        with self._lock:
            self.command(name, *args)
            data = bytearray()
            start = time.monotonic()
            limit = UPLOAD_LIMITS.get(name, MAX_TEMPLATE)
            # the whole transfer at the line's rate, twice over, plus one command's wait: no packet extends it
            deadline = start + self.profile.command_timeout + 2 * limit * 10 / self.profile.baud
            while True:
                packet = self._receive(min(time.monotonic() + self.profile.command_timeout, deadline))
                if packet.pid not in (PID_DATA, PID_END):
                    raise FrameError(f"{name}: expected data, got PID {packet.pid:#04x}")
                data += packet.payload
                if len(data) > limit:
                    raise FrameError(f"{name}: more than {limit} bytes of data")
                if packet.pid == PID_END:
                    self.transfer_seconds += time.monotonic() - start
                    return bytes(data)

    def _download(self, name: str, data: bytes, *args: int) -> None:
        with self._lock:
            self.command(name, *args)
            size = self.profile.packet_size
            start = time.monotonic()
            chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
            sent = 0
            for i, chunk in enumerate(chunks):
                pid = PID_END if i == len(chunks) - 1 else PID_DATA
                packet = Packet(pid, chunk, self.profile.address)
                sent += len(packet.to_bytes())
                self._send(packet)
            # 8N1: 10 bits a byte; the module answers the next command only once all of it arrived
            self._line_busy_until = start + sent * 10 / self.profile.baud
            self.transfer_seconds += sent * 10 / self.profile.baud

    # --- the commands -------------------------------------------------------------------------------

    def handshake(self) -> None:
        """Verify the password (the first command after power-up may fail: retried)."""
        with self._lock:
            self.command("verify_pwd", self.profile.password)

    def negotiate(self) -> tuple[int, int]:
        """Raise the UART speed and data packet size to the profile's ``fast_*`` values; (baud, packet size).

        SetSysPara 6 (packet size code) first, then SetSysPara 4 (N x 9600): the module
        acknowledges at the old speed and switches; a handshake at the new speed proves it,
        else both sides go back (a module that advertises more than it does).
        """
        with self._lock:
            p = self.profile
            if p.fast_packet_size and p.fast_packet_size != p.packet_size:
                code = {32: 0, 64: 1, 128: 2, 256: 3}[p.fast_packet_size]
                try:
                    self.command("set_sys_para", 6, code)
                    self.profile = replace(self.profile, packet_size=p.fast_packet_size)
                except ModuleError as exc:
                    log.warning("fingerprint module keeps %d-byte packets: %s", p.packet_size, exc)
            if p.fast_baud and p.fast_baud != p.baud:
                try:
                    self.command("set_sys_para", 4, p.fast_baud // 9600)
                except ModuleError as exc:
                    log.warning("fingerprint module stays at %d baud: %s", p.baud, exc)
                else:
                    self._settle()
                    self.port.baudrate = p.fast_baud
                    self.profile = replace(self.profile, baud=p.fast_baud)
                    try:
                        self.handshake()
                    except (BioError, TransportError) as exc:
                        log.warning("fingerprint module does not answer at %d baud (%s): back to %d",
                                    p.fast_baud, exc, p.baud)  # fmt: skip
                        self.port.baudrate = p.baud
                        self.profile = replace(self.profile, baud=p.baud)
                        self.reset()
            return self.profile.baud, self.profile.packet_size

    def _settle(self) -> None:
        """Let the last bytes leave the UART before its speed changes."""
        time.sleep(0.02)
        self._buffer = b""

    def reset(self) -> None:
        """Soft reset: forget buffered bytes and re-handshake."""
        self.stats["resets"] += 1
        self._buffer = b""
        self.port.discard_input()
        self.handshake()

    def system_parameters(self) -> SystemParameters:
        return SystemParameters.from_reply(self.command("read_sys_para"))

    def capture(self) -> bool:
        """Take an image; False when no finger is on the sensor."""
        try:
            self.command("gen_img")
        except NoFinger:
            return False
        return True

    def image_to_buffer(self, buffer: int) -> None:
        self.command("img2tz", buffer)

    def match_buffers(self) -> MatchResult:
        try:
            (score,) = self.command("match")
        except NoMatch:
            return MatchResult(False, 0)
        return MatchResult(True, int(score))

    def search(self, buffer: int = 1, start: int = 0, count: int | None = None) -> tuple[int, int] | None:
        try:
            page, score = self.command("search", buffer, start, count or self.profile.capacity)
        except NotFound:
            return None
        return int(page), int(score)

    def register_model(self) -> None:
        self.command("reg_model")

    def store(self, buffer: int, page: int) -> None:
        self.command("store", buffer, page)

    def load(self, buffer: int, page: int) -> None:
        self.command("load_char", buffer, page)

    def delete(self, page: int, count: int = 1) -> None:
        self.command("delete", page, count)

    def empty(self) -> None:
        self.command("empty")

    def template_count(self) -> int:
        return int(self.command("template_num")[0])

    def index(self, table: int = 0) -> list[int]:
        (raw,) = self.command("read_index", table)
        bits = bytes(raw)
        return [table * 256 + i * 8 + b for i, byte in enumerate(bits) for b in range(8) if byte >> b & 1]

    def upload_template(self, buffer: int = 1) -> bytes:
        return self._upload("up_char", buffer)

    def download_template(self, data: bytes, buffer: int = 2) -> None:
        self._download("down_char", data, buffer)

    def upload_image(self) -> bytes:
        return self._upload("up_image")

    def download_image(self, data: bytes) -> None:
        self._download("down_image", data)

    # --- what the gate does -------------------------------------------------------------------------

    def wait_finger(self, cancel: threading.Event, timeout: float) -> bool:
        """Poll for a finger until one is captured, ``cancel`` is set or ``timeout`` passes.

        ``timeout`` is absolute: every command inside (retries and resets included) ends by then.
        """
        deadline = time.monotonic() + timeout
        outer = self._deadline
        self._deadline = deadline if outer is None else min(outer, deadline)
        try:
            while not cancel.is_set() and time.monotonic() < deadline:
                try:
                    if self.capture():
                        return True
                except TransportTimeoutError:
                    if time.monotonic() >= deadline:
                        break
                    log.warning("fingerprint module stopped answering: resetting")
                    try:
                        self.reset()
                    except TransportTimeoutError:
                        continue
                except FrameError as exc:
                    log.warning("fingerprint module garbled a reply: %s", exc)
                cancel.wait(self.profile.finger_poll)
            return False
        finally:
            self._deadline = outer

    def capture_live(self, cancel: threading.Event, timeout: float) -> bool:
        """The live finger into buffer 1 (what the gate does while the chip is read).

        Everything, the feature extraction included, ends within ``timeout`` plus one slow command.
        """
        outer = self._deadline  # a caller's deadline stays in force (the shorter one wins), and comes back after
        deadline = time.monotonic() + timeout + self.profile.slow_timeout
        self._deadline = deadline if outer is None else min(outer, deadline)
        try:
            if not self.wait_finger(cancel, timeout):
                return False
            self.image_to_buffer(1)
            return True
        finally:
            self._deadline = outer

    def verify_reference(self, reference: bytes, threshold: int, *, image: bool = False) -> MatchResult:
        """1:1 against a reference from the host: into buffer 2 (features, or an image converted on the module)."""
        if image:
            self.download_image(reference)
            self.image_to_buffer(2)
        else:
            self.download_template(reference, 2)
        result = self.match_buffers()
        return MatchResult(result.matched and result.score >= threshold, result.score)

    def identify(self, cancel: threading.Event, timeout: float) -> tuple[int, int] | None:
        """1:N: capture and search the module's library; (page, score) or None."""
        if not self.capture_live(cancel, timeout):
            raise NoFinger(0x02, "identify")
        return self.search(1)

    def enroll(self, page: int, cancel: threading.Event, timeout: float) -> None:
        """Two captures of the same finger, combined and stored at ``page``."""
        for buffer in (1, 2):
            if not self.wait_finger(cancel, timeout):
                raise NoFinger(0x02, "enroll")
            self.image_to_buffer(buffer)
        self.register_model()
        self.store(1, page)


__all__ = ["FingerprintModule", "MatchResult", "ModuleError", "ModuleProfile"]
