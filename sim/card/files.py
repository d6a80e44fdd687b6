"""The files of a simulated chip: EF.CardAccess, EF.COM, DG1, DG2, DG3, DG13, DG14, DG15, EF.SOD.

Encoded here with the simulator's own small DER writer (not the agent's TLV code)
and asn1crypto for the CMS part, from ICAO 9303-10 and the CCCD facts in the
references.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from asn1crypto import algos, core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sim.card.der import integer, oid, tlv, utf8
from sim.card.dh import DhKey
from sim.card.pki import Signer, signed_data
from sim.population import Person

PACE_OIDS = {"3DES": "0.4.0.127.0.7.2.2.4.2.1", "AES-128": "0.4.0.127.0.7.2.2.4.2.2",
             "AES-192": "0.4.0.127.0.7.2.2.4.2.3", "AES-256": "0.4.0.127.0.7.2.2.4.2.4"}  # fmt: skip
CURVE_IDS = {"secp256r1": 12, "brainpoolP256r1": 13, "brainpoolP384r1": 16, "secp384r1": 15}
CA_ECDH_AES128 = "0.4.0.127.0.7.2.2.3.2.2"
CA_ECDH = {"3DES": "0.4.0.127.0.7.2.2.3.2.1", "AES-128": CA_ECDH_AES128, "AES-192": "0.4.0.127.0.7.2.2.3.2.3",
           "AES-256": "0.4.0.127.0.7.2.2.3.2.4"}  # fmt: skip
PK_ECDH = "0.4.0.127.0.7.2.2.1.2"
PK_DH = "0.4.0.127.0.7.2.2.1.1"
CA_DH = {name: value.replace(".3.2.", ".3.1.") for name, value in CA_ECDH.items()}
TA = "0.4.0.127.0.7.2.2.2"
AA = "2.23.136.1.1.5"
ECDSA_SHA256 = "0.4.0.127.0.7.1.1.4.1.3"
ECDSA_RIPEMD160 = "0.4.0.127.0.7.1.1.4.1.6"  # announced by the "aa-unsupported" variant


def security_infos(pace_cipher: str, pace_curve: str, eac: bool) -> bytes:
    infos = [tlv(0x30, oid(PACE_OIDS[pace_cipher]) + integer(2) + integer(CURVE_IDS[pace_curve]))]
    if eac:
        infos.append(tlv(0x30, oid(CA_ECDH_AES128) + integer(1) + integer(1)))
        infos.append(tlv(0x30, oid(TA) + integer(1)))
    return tlv(0x31, b"".join(infos))


@dataclass
class CardFiles:
    files: dict[str, bytes] = field(repr=False)  # "cardaccess", "com", "sod", "dg1", ...
    dg_hashes: dict[int, bytes] = field(repr=False)


def face_image(person: Person, size: int) -> bytes:
    """An ISO/IEC 19794-5 facial record around JPEG-framed pseudo-random bytes of about ``size``."""
    rng = random.Random(f"face:{person.seed}")
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(max(0, size - 16)) + b"\xff\xd9"
    header = b"FAC\x00" + b"010\x00"
    face_info = (20 + 12 + len(jpeg)).to_bytes(4, "big") + (0).to_bytes(2, "big") + bytes(14)
    image_info = bytes([1, 0]) + (480).to_bytes(2, "big") + (640).to_bytes(2, "big") + bytes(6)
    body = face_info + image_info + jpeg
    record = header + (14 + len(body)).to_bytes(4, "big") + (1).to_bytes(2, "big") + body
    bht = tlv(0xA1, tlv(0x80, b"\x01\x01") + tlv(0x87, b"\x01\x01") + tlv(0x88, b"\x00\x08"))
    return tlv(0x75, tlv(0x7F61, integer(1) + tlv(0x7F60, bht + tlv(0x5F2E, record))))


def dg13(person: Person) -> bytes:
    def item(n: int, *values: bytes) -> bytes:
        return tlv(0x30, integer(n) + b"".join(values))

    fields = [
        item(1, utf8(person.id_number)),
        item(2, utf8(person.full_name)),
        item(3, utf8(person.birth.strftime("%d/%m/%Y"))),
        item(4, utf8(person.sex_vi)),
        item(5, utf8("Việt Nam")),
        item(6, utf8(person.ethnicity)),
        item(7, utf8(person.religion)),
        item(8, utf8(person.hometown)),
        item(9, utf8(person.residence)),
        item(10, utf8(person.marks)),
        item(11, utf8(person.issued.strftime("%d/%m/%Y"))),
        item(12, utf8(person.expiry.strftime("%d/%m/%Y") if person.expiry else "Không thời hạn")),
        item(13, tlv(0x30, utf8(person.father)), tlv(0x30, utf8(person.mother))),
    ]
    if person.spouse:
        fields.append(item(14, utf8(person.spouse)))
    if person.old_id:
        fields.append(item(15, utf8(person.old_id)))
    return tlv(0x6D, tlv(0x30, integer(1) + oid("2.16.704.1.1.13") + tlv(0x30, b"".join(fields))))


class _DgHash(core.Sequence):  # type: ignore[misc]
    _fields = [("n", core.Integer), ("h", core.OctetString)]  # noqa: RUF012


class _DgHashes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _DgHash


class _Lso(core.Sequence):  # type: ignore[misc]
    _fields = [("version", core.Integer), ("alg", algos.DigestAlgorithm), ("hashes", _DgHashes)]  # noqa: RUF012


def spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | DhKey) -> bytes:
    if isinstance(key, DhKey):
        return key.spki()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def dg14_content(
    pace_cipher: str,
    pace_curve: str,
    ca_public: ec.EllipticCurvePublicKey | DhKey,
    aa_oid: str | None,
    ca_cipher: str,
) -> bytes:
    """DG14; ``ca_cipher`` "3DES-implicit" leaves ChipAuthenticationInfo out (which means 3DES, 9303-11 9.2.5)."""
    infos = [tlv(0x30, oid(PACE_OIDS[pace_cipher]) + integer(2) + integer(CURVE_IDS[pace_curve]))]
    if ca_cipher != "3DES-implicit":
        ca_oids = CA_DH if isinstance(ca_public, DhKey) else CA_ECDH
        infos.append(tlv(0x30, oid(ca_oids[ca_cipher]) + integer(1) + integer(1)))
    key_id = integer(1) if ca_cipher != "3DES-implicit" else b""
    infos += [
        tlv(0x30, oid(PK_DH if isinstance(ca_public, DhKey) else PK_ECDH) + spki(ca_public) + key_id),
        tlv(0x30, oid(TA) + integer(1)),
    ]
    if aa_oid is not None:
        infos.append(tlv(0x30, oid(AA) + integer(1) + oid(aa_oid)))
    return tlv(0x6E, tlv(0x31, b"".join(infos)))


def build_files(
    person: Person,
    mrz_lines: tuple[str, ...],
    *,
    profile: str,
    signer: Signer,
    pace_cipher: str,
    pace_curve: str,
    dg2_size: int,
    ca_public: ec.EllipticCurvePublicKey | DhKey,
    aa_public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    dg3: bytes,
    aa_oid: str | None = ECDSA_SHA256,
    ca_cipher: str = "AES-128",
    corrupt_signature: bool = False,
) -> CardFiles:
    """The card's files, EF.SOD signed by ``signer``.

    ``ca_public`` is the Chip Authentication key DG14 announces; ``aa_oid`` the
    ECDSA Active Authentication algorithm DG14 names (ignored for an RSA key, whose
    signature's trailer names the hash).  Variants change the result afterwards
    (:mod:`sim.card.variants`).
    """
    files: dict[str, bytes] = {}
    files["cardaccess"] = security_infos(pace_cipher, pace_curve, profile == "cccd")
    mrz = "".join(mrz_lines).encode("ascii")
    files["dg1"] = tlv(0x61, tlv(0x5F1F, mrz))
    files["dg2"] = face_image(person, dg2_size)
    files["dg3"] = dg3  # present, but only after Terminal Authentication
    announced_aa = None if isinstance(aa_public, rsa.RSAPublicKey) else aa_oid
    files["dg14"] = dg14_content(pace_cipher, pace_curve, ca_public, announced_aa, ca_cipher)
    files["dg15"] = tlv(0x6F, spki(aa_public))
    groups = ["dg1", "dg2", "dg3", "dg14", "dg15"]
    tags = [0x61, 0x75, 0x63, 0x6E, 0x6F]
    if profile == "cccd":
        files["dg13"] = dg13(person)
        groups.insert(3, "dg13")
        tags.insert(3, 0x6D)
    files["com"] = tlv(0x60, tlv(0x5F01, b"0107") + tlv(0x5F36, b"040000") + tlv(0x5C, bytes(tags)))
    hashes = {int(name[2:]): hashlib.sha256(files[name]).digest() for name in groups}
    lso = _Lso({"version": 0, "alg": {"algorithm": "sha256"},
                "hashes": [{"n": n, "h": h} for n, h in sorted(hashes.items())]}).dump()  # fmt: skip
    sod = signed_data("2.23.136.1.1.1", lso, signer, corrupt=corrupt_signature)
    files["sod"] = tlv(0x77, sod.dump())
    return CardFiles(files, hashes)
