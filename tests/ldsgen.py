"""Test-data generator for the LDS side: data groups, a CSCA -> document signer PKI, EF.SOD, CRLs, master lists.

Written from ICAO 9303-10/-12 and RFC 5652 independently of ``sim.card`` so the agent's parsers and
Passive Authentication are checked against a second implementation.  Every builder takes the knobs a
negative test needs (wrong digest, wrong signature, other CSCA, dates) instead of patching bytes later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import algos, cms, core, keys
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from agent.card import tlv
from agent.card.keys import check_digit

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
CSCA_MASTER_LIST = "2.23.136.1.1.2"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_HASH = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
         "sha512": hashes.SHA512}  # fmt: skip


# --- TLV helpers ---------------------------------------------------------------------------------------------


def t(tag: int, *parts: bytes) -> bytes:
    return tlv.encode(tag, b"".join(parts))


def der_int(n: int) -> bytes:
    return t(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def utf8(text: str) -> bytes:
    return t(0x0C, text.encode("utf-8"))


# --- data groups ---------------------------------------------------------------------------------------------


def td1(id_number: str = "001090012345", birth: str = "900101", sex: str = "M", expiry: str = "300101",
        surname: str = "NGUYEN", given: str = "VAN AN") -> str:  # fmt: skip
    """A CCCD TD1 MRZ: the last 9 digits of the ID in the document number field, all 12 in the optional data."""
    doc = id_number[-9:]
    l1 = f"IDVNM{doc}{check_digit(doc)}{id_number}".ljust(30, "<")[:30]
    l2 = f"{birth}{check_digit(birth)}{sex}{expiry}{check_digit(expiry)}VNM".ljust(29, "<")
    l2 += check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
    l3 = f"{surname}<<{given.replace(' ', '<')}".ljust(30, "<")[:30]
    return "\n".join((l1, l2, l3))


def td3(doc: str = "C01234567", birth: str = "850203", sex: str = "F", expiry: str = "310505") -> str:
    l1 = "P<VNMTRAN<<THI<MAI".ljust(44, "<")
    personal = "<" * 14
    l2 = f"{doc}{check_digit(doc)}VNM{birth}{check_digit(birth)}{sex}{expiry}{check_digit(expiry)}{personal}<"
    l2 += check_digit(l2[0:10] + l2[13:20] + l2[21:43])
    return l1 + "\n" + l2


def com(tags: bytes = bytes([0x61, 0x75, 0x63, 0x6D, 0x6E, 0x6F]), version: bytes = b"0107") -> bytes:
    return t(0x60, t(0x5F01, version), t(0x5F36, b"040000"), t(0x5C, tags))


def dg1(mrz: str) -> bytes:
    return t(0x61, t(0x5F1F, mrz.replace("\n", "").encode("ascii")))


def face_record(image: bytes, width: int, height: int, data_type: int = 0, landmarks: int = 0) -> bytes:
    """ISO/IEC 19794-5:2005 facial record: general header, one facial record (info, landmarks, image info, data)."""
    info = (
        (20 + 8 * landmarks + 12 + len(image)).to_bytes(4, "big")
        + landmarks.to_bytes(2, "big")
        + bytes([1, 0, 0])  # gender, eye colour, hair colour
        + bytes(3)  # feature mask
        + bytes(2)  # expression
        + bytes(3)  # pose angles
        + bytes(3)  # pose uncertainty
    )
    points = b"".join(bytes([1, 0x11]) + bytes(6) for _ in range(landmarks))
    image_info = (
        bytes([1, data_type]) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes([1, 2, 0, 0, 0, 0])
    )
    record = info + points + image_info + image
    return b"FAC\x00" + b"010\x00" + (14 + len(record)).to_bytes(4, "big") + (1).to_bytes(2, "big") + record


def dg2(images: list[tuple[bytes, int, int, int]], block_tag: int = 0x5F2E) -> bytes:
    """``images``: (bytes, width, height, data type 0 JPEG / 1 JPEG 2000)."""
    bits = [
        t(0x7F60, t(0xA1, t(0x80, b"\x01\x01"), t(0x87, b"\x01\x01"), t(0x88, b"\x00\x08")),
          t(block_tag, face_record(img, w, h, kind)))
        for img, w, h, kind in images
    ]  # fmt: skip
    return t(0x75, t(0x7F61, t(0x02, bytes([len(bits)])), *bits))


def fake_jpeg(size: int = 2000) -> bytes:
    body = hashlib.shake_256(b"face").digest(max(0, size - 4))
    return b"\xff\xd8" + body + b"\xff\xd9"


DG13_SAMPLE: dict[int, Any] = {
    1: "001090012345",
    2: "Nguyễn Văn An",
    3: "01/01/1990",
    4: "Nam",
    5: "Việt Nam",
    6: "Kinh",
    7: "Không",
    8: "Xã Đông Hưng, Huyện Đông Hưng, Thái Bình",
    9: "Số 12 Ngõ 34 Phố Huế, Phường Bùi Thị Xuân, Quận Hai Bà Trưng, Hà Nội",
    10: "Nốt ruồi C:2cm trên sau đuôi mắt trái",
    11: "15/08/2021",
    12: "01/01/2030",
    13: ("Nguyễn Văn Bình", "Trần Thị Cúc"),
    14: "Lê Thị Dung",
    15: "012345678",
}


def dg13(fields: dict[int, Any], *, nested_pairs: bool = True) -> bytes:
    """DG13 as the CCCD lays it out: one SEQUENCE {INTEGER n, value} per field, absent fields left out."""
    items = []
    for number, value in fields.items():
        if isinstance(value, tuple):
            inner = b"".join(t(0x30, utf8(v)) if nested_pairs else utf8(v) for v in value)
            items.append(t(0x30, der_int(number), inner))
        else:
            items.append(t(0x30, der_int(number), utf8(value)))
    return t(0x6D, t(0x30, t(0x06, b"\x60\x86\x48\x01\x65\x03\x04\x02\x01"), *items))


def spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def dg15(key: PrivateKey) -> bytes:
    return t(0x6F, spki(key))


def oid(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


def card_access(pace: list[tuple[str, int, int]] | None = None, extra: list[bytes] | None = None) -> bytes:
    """SET OF SecurityInfo. ``pace``: (protocol oid, version, parameter id)."""
    pace = pace if pace is not None else [("0.4.0.127.0.7.2.2.4.2.2", 2, 13)]
    infos = [t(0x30, oid(o), der_int(v), der_int(p)) for o, v, p in pace]
    return t(0x31, *infos, *(extra or []))


def dg14(ca_key: ec.EllipticCurvePrivateKey, key_id: int | None = None) -> bytes:
    ca_info = t(0x30, oid("0.4.0.127.0.7.2.2.3.2.2"), der_int(1), *([der_int(key_id)] if key_id is not None else []))
    pk = t(0x30, oid("0.4.0.127.0.7.2.2.1.2"), spki(ca_key), *([der_int(key_id)] if key_id is not None else []))
    ta = t(0x30, oid("0.4.0.127.0.7.2.2.2"), der_int(1))
    aa = t(0x30, oid("2.23.136.1.1.5"), der_int(1), oid("0.4.0.127.0.7.1.1.4.1.3"))
    return t(0x6E, t(0x31, ca_info, pk, ta, aa))


# --- PKI -----------------------------------------------------------------------------------------------------


def name(cn: str, country: str = "VN") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Party:
    key: PrivateKey = field(repr=False)
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def new_key(kind: str) -> PrivateKey:
    if kind in ("rsa", "rsa-pss"):
        return rsa.generate_private_key(65537, 2048)
    curve = {"ecdsa": ec.SECP256R1(), "brainpool": ec.BrainpoolP256R1(), "p384": ec.SECP384R1()}[kind]
    return ec.generate_private_key(curve)


def certificate(
    subject: x509.Name,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    *,
    serial: int,
    start: dt.datetime,
    end: dt.datetime,
    ca: bool,
    pss: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if pss and isinstance(issuer_key, rsa.RSAPrivateKey):
        return builder.sign(issuer_key, hashes.SHA256(), rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), 32))
    return builder.sign(issuer_key, hashes.SHA256())


def csca(kind: str = "ecdsa", cn: str = "CSCA VN test", *, start: dt.datetime | None = None,
         end: dt.datetime | None = None, serial: int = 1) -> Party:  # fmt: skip
    key = new_key(kind)
    subject = name(cn)
    start = start or NOW - 3650 * DAY
    end = end or NOW + 3650 * DAY
    return Party(key, certificate(subject, key, subject, key, serial=serial, start=start, end=end, ca=True,
                                  pss=kind == "rsa-pss"))  # fmt: skip


def signer(issuer: Party, kind: str = "ecdsa", *, serial: int = 100, start: dt.datetime | None = None,
           end: dt.datetime | None = None, cn: str = "DS VN test") -> Party:  # fmt: skip
    key = new_key(kind)
    cert = certificate(name(cn), key, issuer.cert.subject, issuer.key, serial=serial, start=start or NOW - 365 * DAY,
                       end=end or NOW + 365 * DAY, ca=False, pss=kind == "rsa-pss")  # fmt: skip
    return Party(key, cert)


def crl(issuer: Party, revoked: list[int], *, next_update: dt.datetime | None = None) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(NOW - 10 * DAY)
        .next_update(next_update or NOW + 80 * DAY)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - 5 * DAY).build()
        )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


# --- CMS -----------------------------------------------------------------------------------------------------


class _DgHash(core.Sequence):  # type: ignore[misc]
    _fields = [("number", core.Integer), ("value", core.OctetString)]  # noqa: RUF012


class _DgHashes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _DgHash


class _LdsVersion(core.Sequence):  # type: ignore[misc]
    _fields = [("lds", core.PrintableString), ("unicode", core.PrintableString)]  # noqa: RUF012


class _Lso(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("alg", algos.DigestAlgorithm),
        ("hashes", _DgHashes),
        ("info", _LdsVersion, {"optional": True}),
    ]


class _CertSet(core.SetOf):  # type: ignore[misc]
    _child_spec = ax509.Certificate


class _MasterList(core.Sequence):  # type: ignore[misc]
    _fields = [("version", core.Integer), ("certs", _CertSet)]  # noqa: RUF012


def lso(files: dict[int, bytes], digest: str = "sha256", *, lds_version: str | None = "0107") -> bytes:
    hashes_ = [{"number": n, "value": hashlib.new(digest, data).digest()} for n, data in sorted(files.items())]
    value: dict[str, Any] = {"version": 1 if lds_version else 0, "alg": {"algorithm": digest}, "hashes": hashes_}
    if lds_version:
        value["info"] = {"lds": lds_version, "unicode": "040000"}
    return bytes(_Lso(value).dump())


def _sign(key: PrivateKey, data: bytes, algorithm: str, digest: str) -> tuple[bytes, dict[str, Any]]:
    h = _HASH[digest]()
    if algorithm == "rsa-pss":
        assert isinstance(key, rsa.RSAPrivateKey)
        params = {
            "hash_algorithm": {"algorithm": digest},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": digest}},
            "salt_length": h.digest_size,
        }
        sig = key.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h)
        return sig, {"algorithm": "rsassa_pss", "parameters": params}
    if algorithm == "rsa":
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, padding.PKCS1v15(), h), {"algorithm": f"{digest}_rsa"}
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    sig = key.sign(data, ec.ECDSA(h))
    if algorithm == "ecdsa-plain":  # BSI TR-03111 plain r||s
        r, s = decode_dss_signature(sig)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big"), {"algorithm": f"{digest}_ecdsa"}
    return sig, {"algorithm": f"{digest}_ecdsa"}


def signed_data(
    content_type: str,
    content: bytes,
    by: Party,
    *,
    algorithm: str | None = None,
    digest: str = "sha256",
    message_digest: bytes | None = None,
    attr_content_type: str | None = None,
    corrupt_signature: bool = False,
    signature_algorithm: dict[str, Any] | None = None,
    include_cert: bool = True,
    subject_key_id: bool = False,
) -> bytes:
    """DER ContentInfo(SignedData) over ``content``, signed attributes as 9303-10 4.6.2 requires."""
    if algorithm is None:
        algorithm = "ecdsa" if isinstance(by.key, ec.EllipticCurvePrivateKey) else "rsa"
    cert = ax509.Certificate.load(by.der)
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [attr_content_type or content_type]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": NOW - DAY})]}),
            cms.CMSAttribute(
                {"type": "message_digest", "values": [message_digest or hashlib.new(digest, content).digest()]}
            ),
        ]
    )
    signature, sig_alg = _sign(by.key, attrs.dump(), algorithm, digest)
    if corrupt_signature:
        signature = bytes(signature[:8]) + bytes([signature[8] ^ 0x40]) + bytes(signature[9:])
    if subject_key_id:
        ski = x509.SubjectKeyIdentifier.from_public_key(by.key.public_key()).digest
        sid = cms.SignerIdentifier({"subject_key_identifier": ski})
        cert = ax509.Certificate.load(by.der)  # no SKI extension in our certs: matched by key id computed the same way
    else:
        sid = cms.SignerIdentifier(
            {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}}
        )
    info = cms.SignerInfo(
        {
            "version": "v3" if subject_key_id else "v1",
            "sid": sid,
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": attrs,
            "signature_algorithm": signature_algorithm or sig_alg,
            "signature": signature,
        }
    )
    data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": digest}],
            "encap_content_info": {"content_type": content_type, "content": content},
            "certificates": [cert] if include_cert else None,
            "signer_infos": [info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": data}).dump())


def sod(
    files: dict[int, bytes], by: Party, *, lso_digest: str = "sha256", lds_version: str | None = "0107", **kwargs: Any
) -> bytes:
    """EF.SOD: tag 77 around the SignedData over the LDS security object of ``files`` (number -> bytes)."""
    return t(0x77, signed_data(LDS_SECURITY_OBJECT, lso(files, lso_digest, lds_version=lds_version), by, **kwargs))


def master_list(certs: list[Party], by: Party) -> bytes:
    content = _MasterList({"version": 0, "certs": [ax509.Certificate.load(c.der) for c in certs]}).dump()
    return signed_data(CSCA_MASTER_LIST, content, by)


# --- explicit EC domain parameters (as many CSCAs publish their keys) ----------------------------------------


def explicit_spki(public: ec.EllipticCurvePublicKey) -> bytes:
    """The SubjectPublicKeyInfo of ``public`` with the curve spelled out (ECParameters) instead of its OID."""
    named = keys.PublicKeyInfo.load(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    curve = named["algorithm"]["parameters"].chosen.native
    p, a, b, gx, gy, n, h = CURVE_PARAMS[curve]
    size = (p.bit_length() + 7) // 8
    params = keys.SpecifiedECDomain(
        {
            "version": "ecdpVer1",
            "field_id": {"field_type": "prime_field", "parameters": p},
            "curve": {"a": a.to_bytes(size, "big"), "b": b.to_bytes(size, "big")},
            "base": b"\x04" + gx.to_bytes(size, "big") + gy.to_bytes(size, "big"),
            "order": n,
            "cofactor": h,
        }
    )
    out = keys.PublicKeyInfo(
        {
            "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters({"specified": params})},
            "public_key": named["public_key"],
        }
    )
    return bytes(out.dump())


CURVE_PARAMS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "secp256r1": (
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        1,
    ),
    "brainpoolp256r1": (
        0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
        0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
        0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
        0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
        0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
        0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
        1,
    ),
}


def with_explicit_key(cert: x509.Certificate, signer_key: PrivateKey) -> x509.Certificate:
    """Re-issue ``cert`` with its EC public key in explicit-parameter form, signed again by ``signer_key``."""
    parsed = ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"].copy()
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    tbs["subject_public_key_info"] = keys.PublicKeyInfo.load(explicit_spki(public))
    body = tbs.dump(force=True)
    assert isinstance(signer_key, ec.EllipticCurvePrivateKey)
    sig = signer_key.sign(body, ec.ECDSA(hashes.SHA256()))
    out = ax509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sha256_ecdsa"}, "signature_value": sig}
    )
    return x509.load_der_x509_certificate(out.dump())
