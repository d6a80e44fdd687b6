"""The simulated chip's side of Active, Chip and Terminal Authentication (ICAO 9303-11 6.1/6.2, TR-03110 v1).

:class:`EacApplet` is an object the chip holds (not a base class of it): the chip
hands it the commands that belong to AA, CA and TA together with whether a secure
messaging session is open, and takes back the answer and, after Chip
Authentication, the keys of the session to switch to.  Written from the
standards, apart from the agent: the applet keeps a current date (from
personalisation, advanced by the certificates it accepts), verifies CV
certificates down from its trust point, and opens DG3 only when the chain's rights
allow it and the terminal signed its challenge together with the ephemeral key of
the preceding Chip Authentication.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sim.card import apdu
from sim.card import cryptoutil as cu
from sim.card.apdu import Command
from sim.card.der import read_tlvs, tlv, tlv_dict
from sim.card.dh import DhKey
from sim.card.eac import plain_verify

log = logging.getLogger(__name__)

CA_CIPHERS = {1: "3DES", 2: "AES-128", 3: "AES-192", 4: "AES-256"}
AA_HASHES: dict[str, Any] = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
                             "sha384": hashes.SHA384, "sha512": hashes.SHA512}  # fmt: skip
#: ISO/IEC 9796-2 trailer: BC (implicit SHA-1), or the ISO/IEC 10118-3 hash identifier and CC
TRAILER_IDS = {"sha1": 0x33, "sha256": 0x34, "sha512": 0x35, "sha384": 0x36, "sha224": 0x38}


@dataclass
class ChipKeys:
    """The chip's secrets and trust: what a copy of its files does not have."""

    aa_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = field(default=None, repr=False)
    aa_hash: str = "sha256"
    ca_key: ec.EllipticCurvePrivateKey | DhKey | None = field(default=None, repr=False)
    trust_point: tuple[str, ec.EllipticCurvePublicKey] | None = field(default=None, repr=False)
    personalised: dt.date = dt.date(2021, 1, 1)
    #: the two trailer bytes of an RSA AA answer instead of the standard ones (a hostile chip); None = standard
    aa_trailer: bytes | None = None


@dataclass(frozen=True)
class SessionKeys:
    """Keys of a secure messaging session that Chip Authentication starts (after its own answer)."""

    cipher: str
    k_enc: bytes = field(repr=False)
    k_mac: bytes = field(repr=False)


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


def _cv_date(value: bytes) -> dt.date:
    if len(value) != 6 or any(b > 9 for b in value):
        raise ValueError("bad date")
    return dt.date(2000 + value[0] * 10 + value[1], value[2] * 10 + value[3], value[4] * 10 + value[5])


def sign_9796_2(
    key: rsa.RSAPrivateKey, hash_name: str, m2: bytes, random: Callable[[int], bytes], trailer: bytes | None = None
) -> bytes:
    """ISO/IEC 9796-2 scheme 1, partial recovery: 6A || M1 || H(M1 || M2) || trailer.

    ``trailer`` replaces the standard trailer bytes (same length), for a chip that
    names a hash no reader knows.
    """
    numbers = key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    k = (n.bit_length() + 7) // 8
    standard = b"\xbc" if hash_name == "sha1" else bytes([TRAILER_IDS[hash_name], 0xCC])
    if trailer is not None and len(trailer) != len(standard):
        raise ValueError("a replacement trailer must be as long as the standard one")
    h_len = hashlib.new(hash_name).digest_size
    m1 = random(k - 1 - h_len - len(standard))
    block = b"\x6a" + m1 + hashlib.new(hash_name, m1 + m2).digest() + (trailer or standard)
    sig = pow(int.from_bytes(block, "big"), d, n)
    return min(sig, n - sig).to_bytes(k, "big")


class EacApplet:
    """AA, CA and TA state of one chip between power-ons."""

    def __init__(self, keys: ChipKeys, files: dict[str, bytes], random: Callable[[int], bytes]) -> None:
        self.keys = keys
        self.files = files
        self.random = random
        self.current_date = keys.personalised
        self.reset()

    def reset(self, id_picc: bytes = b"") -> None:
        """A new access session (BAC or PACE) or power-on: nothing of CA or TA carries over."""
        self.ca_done = False
        self.ca_ephemeral = b""  # Comp(PK_IFD) of the terminal's CA key
        self.ta = TaState(id_picc=id_picc)
        self.pending: SessionKeys | None = None

    def take_pending(self) -> SessionKeys | None:
        """The session keys Chip Authentication agreed, once its answer has gone out under the old ones."""
        keys, self.pending = self.pending, None
        return keys

    def may_read(self, name: str) -> bool:
        """DG3 and DG4 only with the rights Terminal Authentication granted."""
        if name == "dg3":
            return bool(self.ta.rights & 0x01)
        if name == "dg4":
            return bool(self.ta.rights & 0x02)
        return True

    # --- Active Authentication ---------------------------------------------------------------------

    def internal_authenticate(self, cmd: Command, secure: bool) -> tuple[bytes, int]:
        key = self.keys.aa_key
        if not secure:
            return b"", apdu.SECURITY_NOT_SATISFIED
        if key is None:
            return b"", apdu.INS_NOT_SUPPORTED
        if len(cmd.data) != 8:
            return b"", apdu.WRONG_LENGTH
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(cmd.data, ec.ECDSA(AA_HASHES[self.keys.aa_hash]())))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big"), apdu.OK
        return sign_9796_2(key, self.keys.aa_hash, cmd.data, self.random, self.keys.aa_trailer), apdu.OK

    # --- MSE for CA and TA --------------------------------------------------------------------------

    def mse(self, cmd: Command) -> tuple[bytes, int]:
        try:
            objs = tlv_dict(cmd.data)
        except ValueError:
            return b"", apdu.WRONG_DATA
        if (cmd.p1, cmd.p2) == (0x41, 0xA6):  # CA with 3DES: MSE:Set KAT carries the key
            if 0x91 not in objs:
                return b"", apdu.WRONG_DATA
            return self._ca_agree(objs[0x91], "3DES")
        if (cmd.p1, cmd.p2) == (0x41, 0xA4):  # CA with AES: the protocol now, the key in GENERAL AUTHENTICATE
            proto = objs.get(0x80, b"")
            if self.keys.ca_key is None or not proto or proto not in self.files.get("dg14", b""):
                return b"", apdu.WRONG_DATA
            self.ta.ca_oid = proto
            return b"", apdu.OK
        if (cmd.p1, cmd.p2) == (0x81, 0xB6):  # TA: the key that verifies the next certificate
            ref = objs.get(0x83, b"").decode("ascii", "replace")
            known = self.keys.trust_point is not None and ref == self.keys.trust_point[0]
            if not (known or ref in self.ta.imported) or not self.ca_done:
                return b"", apdu.REFERENCE_NOT_FOUND
            self.ta.dst = ref
            return b"", apdu.OK
        ref = objs.get(0x83, b"").decode("ascii", "replace")  # 81 A4: TA, the terminal's key
        imported = self.ta.imported.get(ref)
        if imported is None or imported.role != 0x00:
            return b"", apdu.REFERENCE_NOT_FOUND
        self.ta.at = ref
        return b"", apdu.OK

    # --- Chip Authentication ------------------------------------------------------------------------

    @property
    def expects_ca_key(self) -> bool:
        """MSE:Set AT for CA came: the next GENERAL AUTHENTICATE carries the terminal's key."""
        return bool(self.ta.ca_oid)

    def general_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        oid_value, self.ta.ca_oid = self.ta.ca_oid, b""
        try:
            inner = tlv_dict(tlv_dict(cmd.data)[0x7C])
            public = inner[0x80]
        except (ValueError, KeyError):
            return b"", apdu.WRONG_DATA
        cipher = CA_CIPHERS.get(oid_value[-1])
        if cipher is None:
            return b"", apdu.WRONG_DATA
        data, status = self._ca_agree(public, cipher)
        return (b"\x7c\x00" if status == apdu.OK else data), status

    def _ca_agree(self, public: bytes, cipher: str) -> tuple[bytes, int]:
        key = self.keys.ca_key
        if key is None:
            return b"", apdu.WRONG_DATA
        if isinstance(key, DhKey):
            y = int.from_bytes(public, "big")
            if len(public) != key.size or not 1 < y < key.p - 1 or pow(y, key.q, key.p) != 1:
                return b"", apdu.WRONG_DATA
            shared = pow(y, key.x, key.p).to_bytes(key.size, "big")
            ephemeral = hashlib.sha1(public).digest()  # noqa: S324 - Comp() of a DH key
        else:
            try:
                peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, public)
            except ValueError:
                return b"", apdu.WRONG_DATA
            shared = key.exchange(ec.ECDH(), peer)
            size = (key.curve.key_size + 7) // 8
            ephemeral = public[1 : 1 + size]
        self.reset(self.ta.id_picc)
        self.pending = SessionKeys(cipher, cu.derive(shared, 1, cipher), cu.derive(shared, 2, cipher))
        self.ca_done, self.ca_ephemeral = True, ephemeral
        return b"", apdu.OK

    # --- Terminal Authentication --------------------------------------------------------------------

    def _verifier(self, ref: str) -> tuple[ec.EllipticCurvePublicKey, int, int] | None:
        tp = self.keys.trust_point
        if tp is not None and ref == tp[0]:
            return tp[1], 0xC0, 0x03
        imported = self.ta.imported.get(ref)
        return (imported.key, imported.role, imported.rights) if imported else None

    def pso_verify_certificate(self, cmd: Command, secure: bool) -> tuple[bytes, int]:
        if (cmd.p1, cmd.p2) != (0x00, 0xBE) or not secure or not self.ca_done:
            return b"", apdu.CONDITIONS_NOT_SATISFIED
        verifier = self._verifier(self.ta.dst or "")
        if verifier is None:
            return b"", apdu.REFERENCE_NOT_FOUND
        issuer_key, issuer_role, issuer_rights = verifier
        try:
            parts = read_tlvs(cmd.data)
            if len(parts) != 2 or parts[0][0] != 0x7F4E or parts[1][0] != 0x5F37:
                return b"", apdu.WRONG_DATA
            body_value, signature = parts[0][1], parts[1][1]
            body_raw = cmd.data[: len(cmd.data) - len(tlv(0x5F37, signature))]
            fields = tlv_dict(body_value)
            car = fields[0x42].decode("ascii")
            chr_ = fields[0x5F20].decode("ascii")
            key_objs = tlv_dict(fields[0x7F49])
            chat = tlv_dict(fields[0x7F4C])
            role_rights = chat[0x53][0]
            effective, expiration = _cv_date(fields[0x5F25]), _cv_date(fields[0x5F24])
            point = key_objs[0x86]
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            return b"", apdu.WRONG_DATA
        if car != self.ta.dst:
            return b"", apdu.REFERENCE_NOT_FOUND
        if not plain_verify(issuer_key, signature, body_raw):
            log.info("TA: certificate %s does not verify", chr_)
            return b"", apdu.VERIFICATION_FAILED
        if expiration < self.current_date:
            log.info("TA: certificate %s expired on %s (chip date %s)", chr_, expiration, self.current_date)
            return b"", apdu.CONDITIONS_NOT_SATISFIED
        role = role_rights & 0xC0
        allowed = {0xC0: (0xC0, 0x80, 0x40), 0x80: (0x00,), 0x40: (0x00,)}.get(issuer_role, ())
        if role not in allowed:
            return b"", apdu.CONDITIONS_NOT_SATISFIED
        try:
            subject_key = ec.EllipticCurvePublicKey.from_encoded_point(issuer_key.curve, point)
        except ValueError:
            return b"", apdu.WRONG_DATA
        if role in (0xC0, 0x80) and effective > self.current_date:
            self.current_date = effective  # only CVCA and domestic DV certificates are accurate enough
        self.ta.imported[chr_] = Imported(subject_key, role, issuer_rights & role_rights & 0x03)
        return b"", apdu.OK

    def get_challenge(self) -> tuple[bytes, int]:
        self.ta.challenge = self.random(8)  # Terminal Authentication's r_PICC
        return self.ta.challenge, apdu.OK

    def external_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        challenge, self.ta.challenge = self.ta.challenge, None
        imported = self.ta.imported.get(self.ta.at or "")
        if challenge is None or imported is None or not self.ca_done:
            return b"", apdu.CONDITIONS_NOT_SATISFIED
        if not plain_verify(imported.key, cmd.data, self.ta.id_picc + challenge + self.ca_ephemeral):
            log.info("TA: the terminal's signature does not verify")
            return b"", apdu.VERIFICATION_FAILED
        self.ta.rights = imported.rights
        return b"", apdu.OK
