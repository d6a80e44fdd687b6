"""The simulated chip's side of Active, Chip and Terminal Authentication (ICAO 9303-11 6.1/6.2, TR-03110 v1).

Mixed into :class:`sim.card.chip.Chip`.  Written from the standards, apart from
the agent: the chip keeps a current date (from personalisation, advanced by the
certificates it accepts), verifies CV certificates down from its trust point, and
opens DG3 only when the chain's rights allow it and the terminal signed its
challenge together with the ephemeral key of the preceding Chip Authentication.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sim.card import cryptoutil as cu
from sim.card.dh import DhKey
from sim.card.eac import plain_verify

if TYPE_CHECKING:
    from sim.card.chip import Command

log = logging.getLogger(__name__)

CA_CIPHERS = {1: "3DES", 2: "AES-128", 3: "AES-192", 4: "AES-256"}
AA_HASHES: dict[str, Any] = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
                             "sha384": hashes.SHA384, "sha512": hashes.SHA512}  # fmt: skip
TRAILER_IDS = {"sha1": 0x33, "sha256": 0x34, "sha512": 0x35, "sha384": 0x36, "sha224": 0x38}


@dataclass
class ChipKeys:
    """The chip's secrets and trust: what a copy of its files does not have."""

    aa_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = field(default=None, repr=False)
    aa_hash: str = "sha256"
    ca_key: ec.EllipticCurvePrivateKey | DhKey | None = field(default=None, repr=False)
    trust_point: tuple[str, ec.EllipticCurvePublicKey] | None = field(default=None, repr=False)
    personalised: dt.date = dt.date(2021, 1, 1)


@dataclass
class Imported:
    key: ec.EllipticCurvePublicKey
    role: int  # top two bits of the CHAT
    rights: int  # effective read rights (AND over the chain)


@dataclass
class TaState:
    ca_oid: bytes = b""
    dst: str | None = None
    at: str | None = None
    imported: dict[str, Imported] = field(default_factory=dict)
    challenge: bytes | None = None
    rights: int = 0
    id_picc: bytes = b""


def _tlvs(data: bytes) -> dict[int, bytes]:
    from sim.card.chip import read_tlvs

    return dict(read_tlvs(data))


def _cv_date(value: bytes) -> dt.date:
    if len(value) != 6 or any(b > 9 for b in value):
        raise ValueError("bad date")
    return dt.date(2000 + value[0] * 10 + value[1], value[2] * 10 + value[3], value[4] * 10 + value[5])


class EacMixin:
    # provided by Chip
    eac: ChipKeys
    current_date: dt.date
    files: dict[str, bytes]
    session: Any
    pending_session: Any
    ca_done: bool
    ca_ephemeral: bytes
    ta: TaState
    mrz_information: str

    def random(self, n: int) -> bytes:  # pragma: no cover - replaced by the instance attribute
        raise NotImplementedError

    def _new_session(self, cipher: str, k_enc: bytes, k_mac: bytes, via: str) -> Any:
        raise NotImplementedError

    # --- Active Authentication ---------------------------------------------------------------------

    def _internal_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        key = self.eac.aa_key
        if self.session is None:
            return b"", 0x6982
        if key is None:
            return b"", 0x6D00
        if len(cmd.data) != 8:
            return b"", 0x6700
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(cmd.data, ec.ECDSA(AA_HASHES[self.eac.aa_hash]())))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big"), 0x9000
        return self._sign_9796_2(key, cmd.data), 0x9000

    def _sign_9796_2(self, key: rsa.RSAPrivateKey, m2: bytes) -> bytes:
        """ISO/IEC 9796-2 scheme 1, partial recovery: 6A || M1 || H(M1 || M2) || trailer."""
        numbers = key.private_numbers()
        n, d = numbers.public_numbers.n, numbers.d
        k = (n.bit_length() + 7) // 8
        name = self.eac.aa_hash
        trailer = b"\xbc" if name == "sha1" else bytes([TRAILER_IDS[name], 0xCC])
        h_len = hashlib.new(name).digest_size
        m1 = self.random(k - 1 - h_len - len(trailer))
        block = b"\x6a" + m1 + hashlib.new(name, m1 + m2).digest() + trailer
        sig = pow(int.from_bytes(block, "big"), d, n)
        return min(sig, n - sig).to_bytes(k, "big")

    # --- MSE for CA and TA --------------------------------------------------------------------------

    def _mse_eac(self, cmd: Command) -> tuple[bytes, int]:
        try:
            objs = _tlvs(cmd.data)
        except ValueError:
            return b"", 0x6A80
        if (cmd.p1, cmd.p2) == (0x41, 0xA6):  # CA with 3DES: MSE:Set KAT carries the key
            if 0x91 not in objs:
                return b"", 0x6A80
            return self._ca_agree(objs[0x91], "3DES")
        if (cmd.p1, cmd.p2) == (0x41, 0xA4):  # CA with AES: the protocol now, the key in GENERAL AUTHENTICATE
            proto = objs.get(0x80, b"")
            if self.eac.ca_key is None or not proto or proto not in self.files.get("dg14", b""):
                return b"", 0x6A80
            self.ta.ca_oid = proto
            return b"", 0x9000
        if (cmd.p1, cmd.p2) == (0x81, 0xB6):  # TA: the key that verifies the next certificate
            ref = objs.get(0x83, b"").decode("ascii", "replace")
            known = self.eac.trust_point is not None and ref == self.eac.trust_point[0]
            if not (known or ref in self.ta.imported) or not self.ca_done:
                return b"", 0x6A88
            self.ta.dst = ref
            return b"", 0x9000
        ref = objs.get(0x83, b"").decode("ascii", "replace")  # 81 A4: TA, the terminal's key
        imported = self.ta.imported.get(ref)
        if imported is None or imported.role != 0x00:
            return b"", 0x6A88
        self.ta.at = ref
        return b"", 0x9000

    # --- Chip Authentication ------------------------------------------------------------------------

    def _ca_general_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        oid_value, self.ta.ca_oid = self.ta.ca_oid, b""
        try:
            outer = _tlvs(cmd.data)
            inner = _tlvs(outer[0x7C])
            public = inner[0x80]
        except (ValueError, KeyError):
            return b"", 0x6A80
        cipher = CA_CIPHERS.get(oid_value[-1])
        if cipher is None:
            return b"", 0x6A80
        data, status = self._ca_agree(public, cipher)
        return (b"\x7c\x00" if status == 0x9000 else data), status

    def _ca_agree(self, public: bytes, cipher: str) -> tuple[bytes, int]:
        key = self.eac.ca_key
        if key is None:
            return b"", 0x6A80
        if isinstance(key, DhKey):
            y = int.from_bytes(public, "big")
            if len(public) != key.size or not 1 < y < key.p - 1 or pow(y, key.q, key.p) != 1:
                return b"", 0x6A80
            shared = pow(y, key.x, key.p).to_bytes(key.size, "big")
            self.ca_ephemeral = hashlib.sha1(public).digest()  # noqa: S324 - Comp() of a DH key
        else:
            try:
                peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, public)
            except ValueError:
                return b"", 0x6A80
            shared = key.exchange(ec.ECDH(), peer)
            size = (key.curve.key_size + 7) // 8
            self.ca_ephemeral = public[1 : 1 + size]
        self.pending_session = self._new_session(cipher, cu.derive(shared, 1, cipher), cu.derive(shared, 2, cipher),
                                                 "CA")  # fmt: skip
        self.ca_done = True
        self.ta = TaState(id_picc=self.ta.id_picc)
        return b"", 0x9000

    # --- Terminal Authentication --------------------------------------------------------------------

    def _verifier(self, ref: str) -> tuple[ec.EllipticCurvePublicKey, int, int] | None:
        tp = self.eac.trust_point
        if tp is not None and ref == tp[0]:
            return tp[1], 0xC0, 0x03
        imported = self.ta.imported.get(ref)
        return (imported.key, imported.role, imported.rights) if imported else None

    def _pso_verify_certificate(self, cmd: Command) -> tuple[bytes, int]:
        if (cmd.p1, cmd.p2) != (0x00, 0xBE) or self.session is None or not self.ca_done:
            return b"", 0x6985
        verifier = self._verifier(self.ta.dst or "")
        if verifier is None:
            return b"", 0x6A88
        issuer_key, issuer_role, issuer_rights = verifier
        try:
            from sim.card.chip import read_tlvs

            parts = read_tlvs(cmd.data)
            if len(parts) != 2 or parts[0][0] != 0x7F4E or parts[1][0] != 0x5F37:
                return b"", 0x6A80
            body_value, signature = parts[0][1], parts[1][1]
            body_raw = cmd.data[: len(cmd.data) - len(_encode(0x5F37, signature))]
            fields = _tlvs(body_value)
            car = fields[0x42].decode("ascii")
            chr_ = fields[0x5F20].decode("ascii")
            key_objs = _tlvs(fields[0x7F49])
            chat = _tlvs(fields[0x7F4C])
            role_rights = chat[0x53][0]
            effective, expiration = _cv_date(fields[0x5F25]), _cv_date(fields[0x5F24])
            point = key_objs[0x86]
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            return b"", 0x6A80
        if car != self.ta.dst:
            return b"", 0x6A88
        if not plain_verify(issuer_key, signature, body_raw):
            log.info("TA: certificate %s does not verify", chr_)
            return b"", 0x6300
        if expiration < self.current_date:
            log.info("TA: certificate %s expired on %s (chip date %s)", chr_, expiration, self.current_date)
            return b"", 0x6985
        role = role_rights & 0xC0
        allowed = {0xC0: (0xC0, 0x80, 0x40), 0x80: (0x00,), 0x40: (0x00,)}.get(issuer_role, ())
        if role not in allowed:
            return b"", 0x6985
        try:
            subject_key = ec.EllipticCurvePublicKey.from_encoded_point(issuer_key.curve, point)
        except ValueError:
            return b"", 0x6A80
        if role in (0xC0, 0x80) and effective > self.current_date:
            self.current_date = effective  # only CVCA and domestic DV certificates are accurate enough
        self.ta.imported[chr_] = Imported(subject_key, role, issuer_rights & role_rights & 0x03)
        return b"", 0x9000

    def _ta_external_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        challenge, self.ta.challenge = self.ta.challenge, None
        imported = self.ta.imported.get(self.ta.at or "")
        if challenge is None or imported is None or not self.ca_done:
            return b"", 0x6985
        if not plain_verify(imported.key, cmd.data, self.ta.id_picc + challenge + self.ca_ephemeral):
            log.info("TA: the terminal's signature does not verify")
            return b"", 0x6300
        self.ta.rights = imported.rights
        return b"", 0x9000


def _encode(tag: int, value: bytes) -> bytes:
    from sim.card.files import tlv

    return tlv(tag, value)
