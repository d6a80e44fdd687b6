"""The simulated chip's operating system: files, access control, BAC, PACE and secure messaging.

One :meth:`Chip.process` call takes one command APDU and returns one response
APDU, with the status words a real eMRTD chip uses (ISO/IEC 7816-4, ICAO 9303-11).
The card side of every protocol is written here from the standard, independently
of the agent's reader code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ecdsa import curves, ellipticcurve

from sim.card import cryptoutil as cu
from sim.card.eac_chip import ChipKeys, EacMixin, TaState

log = logging.getLogger(__name__)

AID_EMRTD = bytes.fromhex("A0000002471001")
FIDS = {0x011C: "cardaccess", 0x011E: "com", 0x011D: "sod", **{0x0100 + n: f"dg{n}" for n in range(1, 17)}}
SFIS = {0x1C: "cardaccess", 0x1E: "com", 0x1D: "sod", **{n: f"dg{n}" for n in range(1, 17)}}
CURVES = {12: curves.NIST256p, 13: curves.BRAINPOOLP256r1, 15: curves.NIST384p, 16: curves.BRAINPOOLP384r1}
PACE_CIPHERS = {"1": "3DES", "2": "AES-128", "3": "AES-192", "4": "AES-256"}

SW_OK = b"\x90\x00"


def sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


def read_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """Simple BER-TLV walk for the few objects the card receives; ValueError on junk."""
    out, i = [], 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            while True:
                if i >= len(data):
                    raise ValueError("truncated tag")
                tag = (tag << 8) | data[i]
                i += 1
                if not data[i - 1] & 0x80:
                    break
        if i >= len(data):
            raise ValueError("truncated length")
        length = data[i]
        i += 1
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 3 or i + n > len(data):
                raise ValueError("bad length")
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        if i + length > len(data):
            raise ValueError("value runs past the end")
        out.append((tag, data[i : i + length]))
        i += length
    return out


def enc_tlv(tag: int, value: bytes) -> bytes:
    from sim.card.files import tlv

    return tlv(tag, value)


@dataclass
class Session:
    cipher: str
    k_enc: bytes = field(repr=False)
    k_mac: bytes = field(repr=False)
    ssc: int
    via: str  # "BAC" / "PACE"

    @property
    def block(self) -> int:
        return 8 if self.cipher == "3DES" else 16

    def ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.block, "big")

    def iv(self) -> bytes:
        return bytes(8) if self.cipher == "3DES" else cu.aes_block(self.k_enc, self.ssc_bytes())


@dataclass
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None
    extended: bool


def parse_command(raw: bytes) -> Command | None:
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


class Chip(EacMixin):
    """Card state between power-ons; ``process`` is the whole card OS."""

    def __init__(
        self,
        files: dict[str, bytes],
        mrz_information: str,
        can: str | None,
        *,
        pace: bool = True,
        pace_refused: str | None = None,
        extended_length: bool = True,
        random: Callable[[int], bytes] = os.urandom,
        eac: ChipKeys | None = None,
    ) -> None:
        self.files = files
        self.eac = eac or ChipKeys()
        self.current_date = self.eac.personalised
        self.mrz_information = mrz_information
        self.can = can
        self.pace_enabled = pace
        self.pace_refused = pace_refused  # None | "mse" | "ga"
        self.extended_length = extended_length
        self.random = random
        self.reset()

    def reset(self) -> None:
        self.app_selected = False
        self.current: str | None = None
        self.session: Session | None = None
        self.bac_challenge: bytes | None = None
        self.pace_state: dict[str, object] = {}
        self.pending_session: Session | None = None  # Chip Authentication's keys, used after its answer
        self.ca_done = False
        self.ca_ephemeral: bytes = b""  # Comp(PK_IFD) of the terminal's CA key
        self.ta = TaState()

    # --- dispatch -----------------------------------------------------------------------------------

    def process(self, raw: bytes) -> bytes:
        cmd = parse_command(raw)
        if cmd is None:
            return sw(0x6700)
        if cmd.extended and not self.extended_length:
            self.session = None
            return sw(0x6700)
        if cmd.cla & 0x0C:
            if self.session is None:
                return sw(0x6988)  # no session (any more): SM data objects incorrect
            inner = self._unwrap(cmd)
            if inner is None:
                self.session = None
                return sw(0x6988)
            data, status = self._dispatch(inner)
            answer = self._wrap(data, status)
            if self.pending_session is not None:
                self.session, self.pending_session = self.pending_session, None
            return answer
        if cmd.cla not in (0x00, 0x10):
            return sw(0x6E00)
        if self.session is not None and cmd.ins not in (0x22, 0x86, 0x84, 0x82):
            self.session = None  # a plain command ends the secure messaging session
        data, status = self._dispatch(cmd)
        return data + sw(status)

    def _dispatch(self, cmd: Command) -> tuple[bytes, int]:
        handler = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0xB1: self._read_binary_odd,
            0x84: self._get_challenge,
            0x82: self._external_authenticate,
            0x22: self._mse,
            0x86: self._general_authenticate,
            0x88: self._internal_authenticate,
            0x2A: self._pso_verify_certificate,
        }.get(cmd.ins)
        if handler is None:
            return b"", 0x6D00
        return handler(cmd)

    def _new_session(self, cipher: str, k_enc: bytes, k_mac: bytes, via: str) -> Session:
        return Session(cipher, k_enc, k_mac, 0, via)

    # --- files --------------------------------------------------------------------------------------

    def _select(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 == 0x04:
            if cmd.data == AID_EMRTD:
                self.app_selected, self.current = True, None
                return b"", 0x9000
            return b"", 0x6A82
        if cmd.p1 == 0x00 and cmd.data in (b"", b"\x3f\x00"):
            self.app_selected, self.current = False, None
            return b"", 0x9000
        if cmd.p1 in (0x02, 0x00) and len(cmd.data) == 2:
            fid = int.from_bytes(cmd.data, "big")
            name = FIDS.get(fid)
            if name == "cardaccess":
                self.app_selected, self.current = False, name  # EF.CardAccess lives in the MF
                return b"", 0x9000
            if name is None or not self.app_selected or name not in self.files:
                return b"", 0x6A82
            if not self._may_read(name):
                return b"", 0x6982
            self.current = name
            return b"", 0x9000
        return b"", 0x6A86

    def _may_read(self, name: str) -> bool:
        if name == "cardaccess":
            return True
        if self.session is None:
            return False
        if name == "dg3":
            return bool(self.ta.rights & 0x01)  # fingerprints: only after Terminal Authentication granting them
        if name == "dg4":
            return bool(self.ta.rights & 0x02)
        return True

    def _read_from(self, name: str, offset: int, le: int | None) -> tuple[bytes, int]:
        if name not in self.files:
            return b"", 0x6A82
        if not self._may_read(name):
            return b"", 0x6982
        content = self.files[name]
        if offset > len(content):
            return b"", 0x6B00
        count = le if le is not None else 256
        return content[offset : offset + count], 0x9000

    def _read_binary(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 & 0x80:
            name = SFIS.get(cmd.p1 & 0x1F)
            if name is None or (name != "cardaccess" and not self.app_selected):
                return b"", 0x6A82
            offset = cmd.p2
            result = self._read_from(name, offset, cmd.le)
            if result[1] == 0x9000:
                self.current = name
            return result
        if self.current is None:
            return b"", 0x6986  # no current EF
        return self._read_from(self.current, ((cmd.p1 & 0x7F) << 8) | cmd.p2, cmd.le)

    def _read_binary_odd(self, cmd: Command) -> tuple[bytes, int]:
        try:
            objs = dict(read_tlvs(cmd.data))
        except ValueError:
            return b"", 0x6A80
        if 0x54 not in objs:
            return b"", 0x6A80
        offset = int.from_bytes(objs[0x54], "big")
        name = self.current
        if cmd.p1 == 0 and cmd.p2 & 0xE0 == 0 and cmd.p2:
            name = SFIS.get(cmd.p2 & 0x1F)
        if name is None:
            return b"", 0x6986
        le = None if cmd.le is None else max(0, cmd.le - 4)
        data, status = self._read_from(name, offset, le)
        if status == 0x9000:
            self.current = name
            return enc_tlv(0x53, data), status
        return data, status

    # --- BAC ----------------------------------------------------------------------------------------

    def _bac_keys(self) -> tuple[bytes, bytes]:
        seed = hashlib.sha1(self.mrz_information.encode()).digest()[:16]  # noqa: S324 - 9303-11
        return cu.derive(seed, 1, "3DES"), cu.derive(seed, 2, "3DES")

    def _get_challenge(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None:
            self.ta.challenge = self.random(8)  # Terminal Authentication's r_PICC
            return self.ta.challenge, 0x9000
        self.bac_challenge = self.random(8)
        return self.bac_challenge, 0x9000

    def _external_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None:
            return self._ta_external_authenticate(cmd)
        challenge, self.bac_challenge = self.bac_challenge, None
        if challenge is None or len(cmd.data) != 40:
            return b"", 0x6985
        k_enc, k_mac = self._bac_keys()
        e_ifd, m_ifd = cmd.data[:32], cmd.data[32:]
        if not hmac.compare_digest(cu.mac8("3DES", k_mac, cu.iso_pad(e_ifd, 8)), m_ifd):
            return b"", 0x6300
        plain = cu.cbc("3DES", k_enc, e_ifd, bytes(8), False)
        rnd_ifd, rnd_ic, k_ifd = plain[:8], plain[8:16], plain[16:]
        if rnd_ic != challenge:
            return b"", 0x6300
        k_ic = self.random(16)
        e_ic = cu.cbc("3DES", k_enc, challenge + rnd_ifd + k_ic, bytes(8), True)
        m_ic = cu.mac8("3DES", k_mac, cu.iso_pad(e_ic, 8))
        seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
        ssc = int.from_bytes(challenge[4:] + rnd_ifd[4:], "big")
        self.session = Session("3DES", cu.derive(seed, 1, "3DES"), cu.derive(seed, 2, "3DES"), ssc, "BAC")
        self.ca_done, self.ta = False, TaState(id_picc=self.mrz_information[:10].encode("ascii"))
        return e_ic + m_ic, 0x9000

    # --- PACE ---------------------------------------------------------------------------------------

    def _mse(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None and (cmd.p1, cmd.p2) in ((0x41, 0xA6), (0x41, 0xA4), (0x81, 0xB6), (0x81, 0xA4)):
            return self._mse_eac(cmd)
        if cmd.p1 != 0xC1 or cmd.p2 != 0xA4:
            return b"", 0x6A86
        if not self.pace_enabled or self.pace_refused == "mse":
            return b"", 0x6A80
        try:
            objs = dict(read_tlvs(cmd.data))
        except ValueError:
            return b"", 0x6A80
        proto = objs.get(0x80, b"")
        ref = objs.get(0x83, b"")
        access = self.files["cardaccess"]
        if not proto or proto not in access or ref not in (b"\x01", b"\x02"):
            return b"", 0x6A80
        if ref == b"\x02" and self.can is None:
            return b"", 0x6A88
        # the OID ends in the cipher number; the curve comes from EF.CardAccess
        cipher = PACE_CIPHERS.get(str(proto[-1]))
        param = objs.get(0x84)
        curve_id = param[0] if param else access[access.index(proto) + len(proto) + 5]
        if cipher is None or curve_id not in CURVES:
            return b"", 0x6A80
        self.session = None
        self.pace_state = {"oid": proto, "ref": ref[0], "cipher": cipher, "curve": CURVES[curve_id], "step": 1}
        return b"", 0x9000

    def _general_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None and self.ta.ca_oid:
            return self._ca_general_authenticate(cmd)
        st = self.pace_state
        if not st:
            return b"", 0x6985
        if self.pace_refused == "ga":
            self.pace_state = {}
            return b"", 0x6985
        try:
            (tag, body), *_ = read_tlvs(cmd.data)
            inner = dict(read_tlvs(body)) if tag == 0x7C else None
        except ValueError:
            inner = None
        if inner is None:
            self.pace_state = {}
            return b"", 0x6A80
        cipher = str(st["cipher"])
        curve = st["curve"]
        assert isinstance(curve, curves.Curve)
        size = curve.baselen
        step = st["step"]
        try:
            if step == 1:
                secret = self.mrz_information.encode() if st["ref"] == 1 else str(self.can).encode()
                if st["ref"] == 1:
                    secret = hashlib.sha1(secret).digest()  # noqa: S324 - 9303-11
                k_pi = cu.derive(secret, 3, cipher)
                nonce = self.random(16)
                st["s"] = int.from_bytes(nonce, "big")
                z = cu.cbc(cipher, k_pi, nonce, bytes(8 if cipher == "3DES" else 16), True)
                st["step"] = 2
                return enc_tlv(0x7C, enc_tlv(0x80, z)), 0x9000
            if step == 2:
                pk_map_ifd = self._point(curve, inner[0x81])
                sk = int.from_bytes(self.random(size), "big") % (curve.order - 1) + 1
                h = pk_map_ifd * sk
                st["g"] = curve.generator * int(st["s"]) + h  # type: ignore[call-overload]
                st["step"] = 3
                return enc_tlv(0x7C, enc_tlv(0x82, self._bytes(curve.generator * sk, size))), 0x9000
            if step == 3:
                pk_ifd_bytes = inner[0x83]
                pk_ifd = self._point(curve, pk_ifd_bytes)
                g = st["g"]
                sk = int.from_bytes(self.random(size), "big") % (curve.order - 1) + 1
                pk_ic_bytes = self._bytes(g * sk, size)  # type: ignore[operator]
                k = int((pk_ifd * sk).x()).to_bytes(size, "big")
                st.update(
                    k_enc=cu.derive(k, 1, cipher), k_mac=cu.derive(k, 2, cipher), pk_ifd=pk_ifd_bytes, pk_ic=pk_ic_bytes
                )
                st["step"] = 4
                return enc_tlv(0x7C, enc_tlv(0x84, pk_ic_bytes)), 0x9000
            if step == 4:
                k_mac = st["k_mac"]
                assert isinstance(k_mac, bytes)
                expected = self._token(cipher, k_mac, st["oid"], st["pk_ic"])  # type: ignore[arg-type]
                if not hmac.compare_digest(inner.get(0x85, b""), expected):
                    self.pace_state = {}
                    return b"", 0x6300
                t_ic = self._token(cipher, k_mac, st["oid"], st["pk_ifd"])  # type: ignore[arg-type]
                k_enc = st["k_enc"]
                assert isinstance(k_enc, bytes)
                self.session = Session(cipher, k_enc, k_mac, 0, "PACE")
                pk_ic = st["pk_ic"]
                assert isinstance(pk_ic, bytes)
                self.ca_done, self.ta = False, TaState(id_picc=pk_ic[1 : 1 + size])
                self.pace_state = {}
                return enc_tlv(0x7C, enc_tlv(0x86, t_ic)), 0x9000
        except (KeyError, ValueError):
            self.pace_state = {}
            return b"", 0x6A80
        return b"", 0x6985

    @staticmethod
    def _point(curve: curves.Curve, data: bytes) -> ellipticcurve.Point:
        size = curve.baselen
        if len(data) != 1 + 2 * size or data[0] != 4:
            raise ValueError("bad point")
        x, y = int.from_bytes(data[1 : 1 + size], "big"), int.from_bytes(data[1 + size :], "big")
        if not curve.curve.contains_point(x, y):
            raise ValueError("point not on curve")
        return ellipticcurve.Point(curve.curve, x, y, curve.order)

    @staticmethod
    def _bytes(point: ellipticcurve.Point | ellipticcurve.PointJacobi, size: int) -> bytes:
        return b"\x04" + int(point.x()).to_bytes(size, "big") + int(point.y()).to_bytes(size, "big")

    @staticmethod
    def _token(cipher: str, k_mac: bytes, oid_value: bytes, point: bytes) -> bytes:
        data = enc_tlv(0x7F49, enc_tlv(0x06, oid_value) + enc_tlv(0x86, point))
        return cu.mac8(cipher, k_mac, cu.iso_pad(data, 8) if cipher == "3DES" else data)

    # --- secure messaging ---------------------------------------------------------------------------

    def _unwrap(self, cmd: Command) -> Command | None:
        s = self.session
        assert s is not None
        try:
            objs = read_tlvs(cmd.data)
        except ValueError:
            return None
        found = dict(objs)
        if 0x8E not in found:
            return None
        s.ssc += 1
        header = cu.iso_pad(bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2)), s.block)
        covered = b"".join(enc_tlv(t, v) for t, v in objs if t in (0x85, 0x87, 0x97))
        if not hmac.compare_digest(
            cu.mac8(s.cipher, s.k_mac, cu.iso_pad(s.ssc_bytes() + header + covered, s.block)), found[0x8E]
        ):
            return None
        data = b""
        if 0x87 in found or 0x85 in found:
            payload = found[0x87][1:] if 0x87 in found else found[0x85]
            if 0x87 in found and found[0x87][:1] != b"\x01":
                return None
            if not payload or len(payload) % s.block:
                return None
            plain = cu.iso_unpad(cu.cbc(s.cipher, s.k_enc, payload, s.iv(), False))
            if plain is None:
                return None
            data = plain
        le = None
        if 0x97 in found:
            raw = found[0x97]
            le = int.from_bytes(raw, "big") or (256 if len(raw) == 1 else 65536)
        extended = cmd.extended or (le is not None and le > 256)
        if extended and not self.extended_length:
            return None
        return Command(cmd.cla & ~0x0C & 0xFF, cmd.ins, cmd.p1, cmd.p2, data, le, extended)

    def _wrap(self, data: bytes, status: int) -> bytes:
        s = self.session
        if s is None:  # the command ended the session (e.g. a failed check)
            return sw(status)
        s.ssc += 1
        do87 = b""
        if data:
            do87 = enc_tlv(0x87, b"\x01" + cu.cbc(s.cipher, s.k_enc, cu.iso_pad(data, s.block), s.iv(), True))
        do99 = enc_tlv(0x99, sw(status))
        mac = cu.mac8(s.cipher, s.k_mac, cu.iso_pad(s.ssc_bytes() + do87 + do99, s.block))
        return do87 + do99 + enc_tlv(0x8E, mac) + SW_OK
