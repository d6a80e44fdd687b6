"""The simulated module: the device side of the protocol, written from the datasheet (not the agent's code).

It answers on a pty exactly as a module of its profile: packet framing and
checksums, every command of the set, data phases in the profile's packet size, a
flash library kept while it runs, modelled timings (sensor, matching, and the
UART's bytes per second), and seeded faults: garbage bytes, the power-up 0x55,
bad checksums, dropped replies, and a hang that lasts until the host re-handshakes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import struct
import termios
import threading
import time
import tty
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.bio.image import GrayImage, from_module_image, to_module_image
from agent.bio.matcher import ExtractionError, Minutia, NbisMatcher, Template
from agent.errors import ConfigError
from sim.finger import synth

log = logging.getLogger(__name__)

OK, RECV_ERR, NO_FINGER, BAD_IMAGE, NO_MATCH, NOT_FOUND, BAD_PAGE, BAD_TEMPLATE = 0, 1, 2, 6, 8, 9, 0x0B, 0x0C
WRONG_PWD, NO_IMAGE, MUST_VERIFY = 0x13, 0x15, 0x21


@dataclass
class SimProfile:
    """A module model: the datasheet facts from its ``firmware_profiles/<name>.toml``, and modelled times."""

    name: str = "r307"
    capacity: int = 1000
    packet_size: int = 128
    packet_code: int = 2
    template_size: int = 512
    baud: int = 57600
    security: int = 3
    address: int = 0xFFFFFFFF
    password: int = 0
    # modelled times (seconds); scaled by ``speed``
    t_image: float = 0.25
    t_features: float = 0.3
    t_match: float = 0.05
    t_search_per_100: float = 0.03
    t_store: float = 0.05


IMAGE_BYTES = 256 * 288 // 2  # the module's image: 4 bits a pixel
TEMPLATE_TAG = b"NBT1"
MODULE_PASS = 25  # the simulated module's own acceptance (its "security level"); the host applies its threshold
TOO_FEW = 0x07


def sensor_image(finger: str, capture: int) -> bytes:
    """What the module's sensor sees: live impression ``capture`` of the finger, in the module's format."""
    live = synth.live_for(finger, capture)
    return to_module_image(GrayImage(live.width, live.height, live.pixels))


_MATCHER: NbisMatcher | None = None


def _matcher() -> NbisMatcher:
    # the simulated module extracts and compares with NBIS: a stand-in for the vendor's own algorithm
    global _MATCHER
    if _MATCHER is None:
        _MATCHER = NbisMatcher()
    return _MATCHER


def image_features(image: bytes, size: int) -> bytes | None:
    """The module's template of an image: ``NBT1``, count, then 7 bytes a minutia (x, y, direction, quality, kind)."""
    try:
        t = _matcher().extract(from_module_image(image))
    except ExtractionError:
        return None
    body = bytearray(TEMPLATE_TAG + bytes([len(t.minutiae)]))
    for m in t.minutiae[: (size - 5) // 7]:
        body += struct.pack(">HHBBB", m.x, m.y, m.direction, round(m.reliability * 255), m.kind)
    return bytes(body.ljust(size, b"\x00"))


def template_minutiae(data: bytes) -> Template | None:
    if data[:4] != TEMPLATE_TAG:
        return None
    count = min(data[4], (len(data) - 5) // 7)
    found = [struct.unpack(">HHBBB", data[5 + 7 * i : 12 + 7 * i]) for i in range(count)]
    return Template(256, 288, tuple(Minutia(x, y, d, q / 255, k) for x, y, d, q, k in found))


def template_score(a: bytes, b: bytes) -> int:
    ta, tb = template_minutiae(a), template_minutiae(b)
    if ta is None or tb is None:
        return 0  # not a template of this module: a clone's or garbage
    return _matcher().compare(ta, tb)


PACKET_SIZES = {0: 32, 1: 64, 2: 128, 3: 256}


#: the modelled processing times of a model (not datasheet facts, so not in its firmware profile)
TIMES: dict[str, dict[str, float]] = {
    "r503": {"t_image": 0.15, "t_features": 0.2},
    "zfm20": {"t_image": 0.35},
}
PACKET_CODES = {32: 0, 64: 1, 128: 2, 256: 3}


def load_profile(name: str) -> SimProfile:
    """The simulated module of ``firmware_profiles/<name>.toml`` (a ConfigError if it is not a fingerprint one)."""
    from agent import profiles

    data = profiles.load(name, "fingerprint")
    profile = SimProfile(
        name=name, capacity=data["capacity"], packet_size=data["packet_size"],
        packet_code=PACKET_CODES[data["packet_size"]], template_size=data["template_size"], baud=data["baud"],
        address=data["address"], password=data["password"],
    )  # fmt: skip
    for key, seconds in TIMES.get(name, {}).items():
        setattr(profile, key, seconds)
    return profile


def profile_names() -> list[str]:
    """The fingerprint models of the firmware profiles directory (``r307``, ``r503``, ...)."""
    from agent import profiles

    names = []
    for directory in profiles.search_path():
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
            try:
                kind = profiles.load_file(path)["kind"]
            except ConfigError:
                continue
            if kind == "fingerprint" and path.stem not in names:
                names.append(path.stem)
    return names


class _Profiles(Mapping[str, SimProfile]):
    """``PROFILES["r307"]``: every fingerprint firmware profile, read when first asked for."""

    def __getitem__(self, name: str) -> SimProfile:
        try:
            return load_profile(name)
        except ConfigError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(profile_names())

    def __len__(self) -> int:
        return len(profile_names())


PROFILES: Mapping[str, SimProfile] = _Profiles()


@dataclass
class SimFaults:
    garbage: float = 0.0  # probability of noise bytes before a reply
    power_up_byte: bool = False  # send 0x55 once when the host first talks
    bad_checksum: float = 0.0
    drop: float = 0.0
    hang_after: int | None = None  # stop answering after this many commands, until a password verify
    seed: int = 0


def parse_sim_faults(spec: str | None) -> SimFaults:
    faults = SimFaults()
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        if name == "garbage":
            faults.garbage = float(value)
        elif name == "power-up":
            faults.power_up_byte = True
        elif name == "checksum":
            faults.bad_checksum = float(value)
        elif name == "drop":
            faults.drop = float(value)
        elif name == "hang":
            faults.hang_after = int(value)
        elif name == "seed":
            faults.seed = int(value)
        else:
            raise ValueError(f"unknown fault {item!r} (garbage=P, power-up, checksum=P, drop=P, hang=N, seed=N)")
    return faults


def _frame(pid: int, payload: bytes, address: int) -> bytes:
    length = len(payload) + 2
    total = pid + (length >> 8) + (length & 0xFF) + sum(payload)
    return b"\xef\x01" + struct.pack(">IBH", address, pid, length) + payload + struct.pack(">H", total & 0xFFFF)


@dataclass
class SimModule:
    profile: SimProfile = field(default_factory=lambda: load_profile("r307"))
    faults: SimFaults = field(default_factory=SimFaults)
    password: int | None = None  # None: the profile's
    address: int | None = None  # None: the profile's
    speed: float = 1.0  # 0: no modelled delays (fast tests)
    finger: str | None = None  # identity on the sensor
    library: dict[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.finger is not None:
            synth.master_for(self.finger)  # generated now, not during the first GenImg
        self.pin: int = self.profile.password if self.password is None else self.password
        self.wire_address: int = self.profile.address if self.address is None else self.address
        self.rng = random.Random(self.faults.seed)
        self.buffers: dict[int, bytes | None] = {1: None, 2: None}
        self.image: bytes | None = None
        self.verified = self.pin == 0
        self.commands = 0
        self.hung = False
        self.sent_power_up = False
        self._captures = 0
        self._pending_download: tuple[str, int] | None = None
        self._download = bytearray()
        self.busy_seconds = 0.0  # modelled processing time (capture, features, match, ...) so far

    # --- control ------------------------------------------------------------------------------------

    def place(self, identity: str | int) -> None:
        synth.master_for(str(identity))  # the finger exists before it touches the sensor (not during GenImg)
        self.finger = str(identity)

    def remove(self) -> None:
        self.finger = None

    def enroll_synthetic(self, count: int, first_identity: int = 1000) -> None:
        """Templates of synthetic people's fingers in pages 0..count-1 (about half a second a finger)."""
        for page in range(count):
            ref = synth.reference_for(f"{first_identity + page}")
            template = image_features(to_module_image(GrayImage(ref.width, ref.height, ref.pixels)),
                                      self.profile.template_size)  # fmt: skip
            if template is not None:
                self.library[page] = template

    # --- the wire -----------------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        if self.speed:
            self.busy_seconds += seconds * self.speed
            time.sleep(seconds * self.speed)

    def _uart(self, data: bytes) -> bytes:
        """Model the UART: 10 bits per byte at the profile's baud."""
        self._wait(len(data) * 10 / self.profile.baud)
        return data

    def _reply(self, code: int, params: bytes = b"") -> bytes:
        out = b""
        if self.faults.garbage and self.rng.random() < self.faults.garbage:
            out += self.rng.randbytes(self.rng.randint(1, 6)).replace(b"\xef", b"\xee")
        frame = bytearray(_frame(0x07, bytes([code]) + params, self.wire_address))
        if self.faults.bad_checksum and self.rng.random() < self.faults.bad_checksum:
            frame[-1] ^= 0xFF
        return out + bytes(frame)

    def handle(self, pid: int, payload: bytes) -> bytes:
        """One packet from the host -> the bytes the module sends back."""
        prefix = b""
        if self.faults.power_up_byte and not self.sent_power_up:
            self.sent_power_up = True
            prefix = b"\x55"
        if pid in (0x02, 0x08):
            return prefix + self._data_packet(pid, payload)
        if pid != 0x01 or not payload:
            return prefix + self._reply(RECV_ERR)
        self.commands += 1
        code, args = payload[0], payload[1:]
        if self.hung:
            if code != 0x13:
                return b""
            self.hung = False
        if self.faults.hang_after is not None and self.commands == self.faults.hang_after:
            self.hung = True
            return b""
        if self.faults.drop and self.rng.random() < self.faults.drop:
            return b""
        if not self.verified and code not in (0x13, 0x0F):
            return prefix + self._reply(MUST_VERIFY)
        try:
            return prefix + self._command(code, args)
        except struct.error:
            return prefix + self._reply(RECV_ERR)

    def _command(self, code: int, args: bytes) -> bytes:
        p = self.profile
        if code == 0x13:  # VfyPwd
            (pwd,) = struct.unpack(">I", args[:4])
            self.verified = pwd == self.pin
            return self._reply(OK if self.verified else WRONG_PWD)
        if code == 0x12:  # SetPwd
            (self.pin,) = struct.unpack(">I", args[:4])
            return self._reply(OK)
        if code == 0x0F:  # ReadSysPara
            params = struct.pack(
                ">HHHHIHH", 0, 0x0009, p.capacity, p.security, self.wire_address, p.packet_code, p.baud // 9600
            )
            return self._reply(OK, params)
        if code == 0x01:  # GenImg
            self._wait(p.t_image)
            if self.finger is None:
                return self._reply(NO_FINGER)
            self._captures += 1
            self.image = sensor_image(self.finger, self._captures)
            return self._reply(OK)
        if code == 0x02:  # Img2Tz
            (buffer,) = struct.unpack(">B", args[:1])
            self._wait(p.t_features)
            if self.image is None:
                return self._reply(NO_IMAGE)
            template = image_features(self.image, p.template_size)
            if template is None:
                return self._reply(TOO_FEW)
            self.buffers[1 if buffer == 1 else 2] = template
            return self._reply(OK)
        if code == 0x03:  # Match
            self._wait(p.t_match)
            a, b = self.buffers[1], self.buffers[2]
            if a is None or b is None:
                return self._reply(BAD_TEMPLATE)
            s = template_score(a, b)
            return self._reply(OK if s >= MODULE_PASS else NO_MATCH, struct.pack(">H", min(s, 0xFFFF)))
        if code == 0x04:  # Search
            buffer, start, count = struct.unpack(">BHH", args[:5])
            template = self.buffers[1 if buffer == 1 else 2]
            self._wait(p.t_search_per_100 * count / 100)
            if template is None:
                return self._reply(BAD_TEMPLATE)
            best = max(((template_score(template, t), page) for page, t in self.library.items()
                        if start <= page < start + count), default=(0, 0))  # fmt: skip
            if best[0] < MODULE_PASS:
                return self._reply(NOT_FOUND, struct.pack(">HH", 0, 0))
            return self._reply(OK, struct.pack(">HH", best[1], best[0]))
        if code == 0x05:  # RegModel: combine buffers 1 and 2 into both
            a, b = self.buffers[1], self.buffers[2]
            if a is None or b is None or template_score(a, b) < MODULE_PASS:
                return self._reply(0x0A)
            self.buffers[2] = a  # the module keeps the first capture as the model
            return self._reply(OK)
        if code in (0x06, 0x07):  # Store / LoadChar
            buffer, page = struct.unpack(">BH", args[:3])
            if page >= p.capacity:
                return self._reply(BAD_PAGE)
            slot = 1 if buffer == 1 else 2
            if code == 0x06:
                self._wait(p.t_store)
                template = self.buffers[slot]
                if template is None:
                    return self._reply(BAD_TEMPLATE)
                self.library[page] = template
                return self._reply(OK)
            if page not in self.library:
                return self._reply(BAD_TEMPLATE)
            self.buffers[slot] = self.library[page]
            return self._reply(OK)
        if code in (0x08, 0x0A):  # UpChar / UpImage: ack, then data packets
            if code == 0x08:
                (buffer,) = struct.unpack(">B", args[:1])
                data = self.buffers[1 if buffer == 1 else 2]
                if data is None:
                    return self._reply(0x0D)
            else:
                if self.image is None:
                    return self._reply(0x0F)
                data = self.image
            out = self._reply(OK)
            size = p.packet_size
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
            for i, chunk in enumerate(chunks):
                out += _frame(0x08 if i == len(chunks) - 1 else 0x02, chunk, self.wire_address)
            return out
        if code in (0x09, 0x0B):  # DownChar / DownImage: ack, then the host sends data packets
            buffer = struct.unpack(">B", args[:1])[0] if code == 0x09 else 0
            self._pending_download = ("char" if code == 0x09 else "image", buffer)
            self._download = bytearray()
            return self._reply(OK)
        if code == 0x0C:  # Delete
            page, count = struct.unpack(">HH", args[:4])
            if page + count > p.capacity:
                return self._reply(0x10)
            for n in range(page, page + count):
                self.library.pop(n, None)
            return self._reply(OK)
        if code == 0x0D:  # Empty
            self.library.clear()
            return self._reply(OK)
        if code == 0x1D:  # TemplateNum
            return self._reply(OK, struct.pack(">H", len(self.library)))
        if code == 0x1F:  # ReadIndex
            (table,) = struct.unpack(">B", args[:1])
            bits = bytearray(32)
            for page in self.library:
                if table * 256 <= page < (table + 1) * 256:
                    n = page - table * 256
                    bits[n // 8] |= 1 << (n % 8)
            return self._reply(OK, bytes(bits))
        if code == 0x0E:  # SetSysPara: 4 baud (N x 9600), 5 security level, 6 packet size code
            param, value = struct.unpack(">BB", args[:2])
            if param == 4 and value in (1, 2, 4, 6, 12):
                reply = self._reply(OK)  # sent at the old speed, then the module switches
                self.profile = dataclasses.replace(self.profile, baud=value * 9600)
                return reply
            if param == 6 and value in PACKET_SIZES:
                self.profile = dataclasses.replace(self.profile, packet_code=value, packet_size=PACKET_SIZES[value])
                return self._reply(OK)
            if param == 5 and 1 <= value <= 5:
                self.profile = dataclasses.replace(self.profile, security=value)
                return self._reply(OK)
            return self._reply(0x1A)  # bad register
        return self._reply(RECV_ERR)  # undocumented instruction: a clone would say something odd here

    def _data_packet(self, pid: int, payload: bytes) -> bytes:
        if self._pending_download is None:
            return self._reply(0x0E)
        self._download += payload
        if pid == 0x08:
            kind, buffer = self._pending_download
            self._pending_download = None
            data = bytes(self._download)
            if kind == "char":
                self.buffers[1 if buffer == 1 else 2] = data
            else:
                self.image = data if len(data) == IMAGE_BYTES else None  # only its own 4-bit 256x288 format
        return b""


class PtyModule:
    """Serve a SimModule on a pseudo-terminal linked at ``link``."""

    def __init__(self, module: SimModule, link: Path | str) -> None:
        self.module = module
        self.link = Path(link)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        if self.link.is_symlink() or self.link.exists():
            self.link.unlink()
        self.link.parent.mkdir(parents=True, exist_ok=True)
        self.link.symlink_to(os.ttyname(self.slave))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sim-finger", daemon=True)
        self.uart_seconds = 0.0  # modelled time on the serial line so far

    def start(self) -> PtyModule:
        self._thread.start()
        return self

    def _serve(self) -> None:
        import select

        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                buffer += os.read(self.master, 4096)
            except OSError:
                return
            while True:
                start = buffer.find(b"\xef\x01")
                if start < 0:
                    buffer = buffer[-1:]
                    break
                buffer = buffer[start:]
                if len(buffer) < 9:
                    break
                pid = buffer[6]
                length = int.from_bytes(buffer[7:9], "big")
                if len(buffer) < 9 + length:
                    break
                payload = buffer[9 : 7 + length]
                check = int.from_bytes(buffer[7 + length : 9 + length], "big")
                buffer = buffer[9 + length :]
                self._line(9 + length)  # the frame took this long to arrive over the module's UART
                total = (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF
                if total != check:
                    answer = self.module._reply(RECV_ERR)
                else:
                    answer = self.module.handle(pid, payload)
                if answer:
                    wire = self.module._uart(answer)
                    self._line(len(wire))
                    try:
                        os.write(self.master, wire)
                    except OSError:
                        return

    def _line(self, count: int) -> None:
        """Model the UART: 10 bits a byte (8N1) at the profile's baud rate, scaled by the module's speed."""
        if self.module.speed:
            seconds = count * 10 / self.module.profile.baud * self.module.speed
            self.uart_seconds += seconds
            time.sleep(seconds)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link.is_symlink():
            self.link.unlink()
