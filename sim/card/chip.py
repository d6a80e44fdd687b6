"""The simulated chip's operating system: file system, access control, BAC and command dispatch.

One :meth:`Chip.process` call takes one command APDU and returns one response
APDU, with the status words a real eMRTD chip uses (ISO/IEC 7816-4, ICAO 9303-11).
PACE (:mod:`sim.card.pace`), secure messaging (:mod:`sim.card.sm`) and AA/CA/TA
(:mod:`sim.card.eac_chip`) are objects and functions the chip uses; the card side
of every protocol is written from the standard, independently of the agent's
reader code.  :class:`Quirks` makes the chip of a hostile or unusual card variant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from sim.card import apdu
from sim.card import cryptoutil as cu
from sim.card.apdu import Command, ResponseChain, parse_command, sw
from sim.card.der import tlv, tlv_dict
from sim.card.eac_chip import ChipKeys, EacApplet
from sim.card.pace import Pace
from sim.card.sm import Session, unwrap, wrap

log = logging.getLogger(__name__)

AID_EMRTD = bytes.fromhex("A0000002471001")
FIDS = {0x011C: "cardaccess", 0x011E: "com", 0x011D: "sod", **{0x0100 + n: f"dg{n}" for n in range(1, 17)}}
SFIS = {0x1C: "cardaccess", 0x1E: "com", 0x1D: "sod", **{n: f"dg{n}" for n in range(1, 17)}}
#: commands that do not end a secure messaging session when they come in plain (PACE, BAC, GET CHALLENGE)
_PLAIN_KEEPS_SESSION = (0x22, 0x86, 0x84, 0x82)
FILLER = 0xFF  # what a hostile chip sends where there is no data


@dataclass(frozen=True)
class Quirks:
    """How a chip departs from a well-behaved one (the hostile and unusual card variants)."""

    #: READ BINARY with a short file identifier (P1 bit 8, or odd INS with an SFI in P2) is refused with 6A86:
    #: the reader must SELECT each file by its identifier
    no_sfi: bool = False
    #: every READ BINARY under secure messaging answers 61xx and every GET RESPONSE 61xx again, forever
    endless_chaining: bool = False
    #: READ BINARY past the end of a file returns filler bytes instead of 6B00, for any offset
    reads_past_end: bool = False


class Chip:
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
        keys: ChipKeys | None = None,
        quirks: Quirks | None = None,
    ) -> None:
        self.files = files
        self.mrz_information = mrz_information
        self.can = can
        self.extended_length = extended_length
        self.random = random
        self.quirks = quirks or Quirks()
        self.pace = Pace(mrz_information, can, random, enabled=pace, refused=pace_refused)
        self.eac = EacApplet(keys or ChipKeys(), files, random)
        self.reset()

    @property
    def current_date(self) -> dt.date:
        """The chip's notion of today (TR-03110: from personalisation and the certificates it accepted)."""
        return self.eac.current_date

    @current_date.setter
    def current_date(self, value: dt.date) -> None:
        self.eac.current_date = value

    def reset(self) -> None:
        self.app_selected = False
        self.current: str | None = None
        self.session: Session | None = None
        self.bac_challenge: bytes | None = None
        self.chain = ResponseChain(filler=FILLER)  # answers waiting for GET RESPONSE
        self.pace.reset()
        self.eac.reset()

    # --- dispatch -----------------------------------------------------------------------------------

    def process(self, raw: bytes) -> bytes:
        cmd = parse_command(raw)
        if cmd is None:
            return sw(apdu.WRONG_LENGTH)
        if cmd.ins == apdu.INS_GET_RESPONSE and self.chain.pending:
            return self.chain.next(cmd.le)  # transport-level chaining: any class byte
        self.chain.clear()
        if cmd.extended and not self.extended_length:
            self.session = None
            return sw(apdu.WRONG_LENGTH)
        if cmd.secure:
            if self.session is None:
                return sw(apdu.SM_DATA_INCORRECT)  # no session (any more): SM data objects incorrect
            inner = unwrap(self.session, cmd, self.extended_length)
            if inner is None:
                self.session = None
                return sw(apdu.SM_DATA_INCORRECT)
            data, status = self._dispatch(inner)
            answer = sw(status) if self.session is None else wrap(self.session, data, status)
            pending = self.eac.take_pending()
            if pending is not None:
                self.session = Session(pending.cipher, pending.k_enc, pending.k_mac, 0, "CA")
            if self.quirks.endless_chaining and inner.ins in (0xB0, 0xB1):
                return self.chain.start_endless(answer[:-2])
            return answer
        if cmd.cla not in (0x00, 0x10):
            return sw(apdu.CLA_NOT_SUPPORTED)
        if self.session is not None and cmd.ins not in _PLAIN_KEEPS_SESSION:
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
            return b"", apdu.INS_NOT_SUPPORTED
        return handler(cmd)

    # --- files --------------------------------------------------------------------------------------

    def _select(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 == 0x04:
            if cmd.data == AID_EMRTD:
                self.app_selected, self.current = True, None
                return b"", apdu.OK
            return b"", apdu.FILE_NOT_FOUND
        if cmd.p1 == 0x00 and cmd.data in (b"", b"\x3f\x00"):
            self.app_selected, self.current = False, None
            return b"", apdu.OK
        if cmd.p1 in (0x02, 0x00) and len(cmd.data) == 2:
            name = FIDS.get(int.from_bytes(cmd.data, "big"))
            if name == "cardaccess" and name in self.files:
                self.app_selected, self.current = False, name  # EF.CardAccess lives in the MF
                return b"", apdu.OK
            if name is None or not self.app_selected or name not in self.files:
                return b"", apdu.FILE_NOT_FOUND
            if not self._may_read(name):
                return b"", apdu.SECURITY_NOT_SATISFIED
            self.current = name
            return b"", apdu.OK
        return b"", apdu.INCORRECT_P1P2

    def _may_read(self, name: str) -> bool:
        if name == "cardaccess":
            return True
        return self.session is not None and self.eac.may_read(name)

    def _read_from(self, name: str, offset: int, le: int | None) -> tuple[bytes, int]:
        if name not in self.files:
            return b"", apdu.FILE_NOT_FOUND
        if not self._may_read(name):
            return b"", apdu.SECURITY_NOT_SATISFIED
        content = self.files[name]
        count = le if le is not None else 256
        if self.quirks.reads_past_end:
            data = content[offset : offset + count]
            return data + bytes([FILLER]) * (count - len(data)), apdu.OK
        if offset > len(content):
            return b"", apdu.WRONG_OFFSET
        return content[offset : offset + count], apdu.OK

    def _read_binary(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 & 0x80:
            if self.quirks.no_sfi:
                return b"", apdu.INCORRECT_P1P2
            name = SFIS.get(cmd.p1 & 0x1F)
            if name is None or (name != "cardaccess" and not self.app_selected):
                return b"", apdu.FILE_NOT_FOUND
            result = self._read_from(name, cmd.p2, cmd.le)
            if result[1] == apdu.OK:
                self.current = name
            return result
        if self.current is None:
            return b"", apdu.NO_CURRENT_EF
        return self._read_from(self.current, ((cmd.p1 & 0x7F) << 8) | cmd.p2, cmd.le)

    def _read_binary_odd(self, cmd: Command) -> tuple[bytes, int]:
        try:
            objs = tlv_dict(cmd.data)
        except ValueError:
            return b"", apdu.WRONG_DATA
        if 0x54 not in objs:
            return b"", apdu.WRONG_DATA
        offset = int.from_bytes(objs[0x54], "big")
        name = self.current
        if cmd.p1 == 0 and cmd.p2 & 0xE0 == 0 and cmd.p2:
            if self.quirks.no_sfi:
                return b"", apdu.INCORRECT_P1P2
            name = SFIS.get(cmd.p2 & 0x1F)
        if name is None:
            return b"", apdu.NO_CURRENT_EF
        le = None if cmd.le is None else max(0, cmd.le - 4)
        data, status = self._read_from(name, offset, le)
        if status == apdu.OK:
            self.current = name
            return tlv(0x53, data), status
        return data, status

    # --- BAC (9303-11 4.3) --------------------------------------------------------------------------

    def _bac_keys(self) -> tuple[bytes, bytes]:
        seed = hashlib.sha1(self.mrz_information.encode()).digest()[:16]  # noqa: S324 - 9303-11
        return cu.derive(seed, 1, "3DES"), cu.derive(seed, 2, "3DES")

    def _get_challenge(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None:
            return self.eac.get_challenge()
        self.bac_challenge = self.random(8)
        return self.bac_challenge, apdu.OK

    def _external_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None:
            return self.eac.external_authenticate(cmd)
        challenge, self.bac_challenge = self.bac_challenge, None
        if challenge is None or len(cmd.data) != 40:
            return b"", apdu.CONDITIONS_NOT_SATISFIED
        k_enc, k_mac = self._bac_keys()
        e_ifd, m_ifd = cmd.data[:32], cmd.data[32:]
        if not hmac.compare_digest(cu.mac8("3DES", k_mac, cu.iso_pad(e_ifd, 8)), m_ifd):
            return b"", apdu.VERIFICATION_FAILED
        plain = cu.cbc("3DES", k_enc, e_ifd, bytes(8), False)
        rnd_ifd, rnd_ic, k_ifd = plain[:8], plain[8:16], plain[16:]
        if rnd_ic != challenge:
            return b"", apdu.VERIFICATION_FAILED
        k_ic = self.random(16)
        e_ic = cu.cbc("3DES", k_enc, challenge + rnd_ifd + k_ic, bytes(8), True)
        m_ic = cu.mac8("3DES", k_mac, cu.iso_pad(e_ic, 8))
        seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
        ssc = int.from_bytes(challenge[4:] + rnd_ifd[4:], "big")
        self.session = Session("3DES", cu.derive(seed, 1, "3DES"), cu.derive(seed, 2, "3DES"), ssc, "BAC")
        self.eac.reset(id_picc=self.mrz_information[:10].encode("ascii"))
        return e_ic + m_ic, apdu.OK

    # --- PACE and the EAC applet --------------------------------------------------------------------

    def _mse(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None and (cmd.p1, cmd.p2) in ((0x41, 0xA6), (0x41, 0xA4), (0x81, 0xB6), (0x81, 0xA4)):
            return self.eac.mse(cmd)
        if cmd.p1 != 0xC1 or cmd.p2 != 0xA4:
            return b"", apdu.INCORRECT_P1P2
        status = self.pace.mse_set_at(cmd, self.files.get("cardaccess", b""))
        if status == apdu.OK:
            self.session = None
        return b"", status

    def _general_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is not None and self.eac.expects_ca_key:
            return self.eac.general_authenticate(cmd)
        data, status, result = self.pace.general_authenticate(cmd)
        if result is not None:
            self.session = Session(result.cipher, result.k_enc, result.k_mac, 0, "PACE")
            self.eac.reset(id_picc=result.id_picc)
        return data, status

    def _internal_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        return self.eac.internal_authenticate(cmd, self.session is not None)

    def _pso_verify_certificate(self, cmd: Command) -> tuple[bytes, int]:
        return self.eac.pso_verify_certificate(cmd, self.session is not None)


def check_digit(data: str) -> str:
    """ICAO 9303-3 4.9 check digit (weights 7, 3, 1)."""
    values = {**{str(i): i for i in range(10)}, **{chr(65 + i): 10 + i for i in range(26)}, "<": 0}
    return str(sum(values[c] * (7, 3, 1)[i % 3] for i, c in enumerate(data)) % 10)


def mrz_information(number: str, birth: str, expiry: str) -> str:
    """The MRZ information BAC and PACE keys come from: number, birth and expiry, each with its check digit."""
    number = number.ljust(9, "<")
    return number + check_digit(number) + birth + check_digit(birth) + expiry + check_digit(expiry)
