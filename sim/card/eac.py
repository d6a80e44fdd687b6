"""The simulated EAC world: a CV-certificate PKI (CVCA, document verifier, inspection system) and DG3.

Written from BSI TR-03110-3 (appendix C) and ISO/IEC 19794-4 with the simulator's
own encoder, independently of the agent's parser.  Keys are derived from a seed
(:mod:`sim.card.seeded`), so the chip (which trusts the CVCA's key) and the terminal
credentials written for a gate agree without sharing files; :func:`save_eac_keys` /
:func:`load_eac_keys` keep them in a PKI directory instead.  The CVCA certificate is
the same for a seed on every run (fixed dates from :data:`sim.card.pki.EPOCH`,
deterministic signatures); the document verifier and terminal certificates are
short-lived by design (days to months) and dated from ``today``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from ecdsa import curves

from sim.card import seeded
from sim.card.der import oid, tlv
from sim.card.pki import CSCA_YEARS, EPOCH, PkiDirectoryError

TA_ECDSA_SHA256 = "0.4.0.127.0.7.2.2.2.2.3"
ID_IS = "0.4.0.127.0.7.3.1.2.1"
ROLE_CVCA, ROLE_DV_DOMESTIC, ROLE_DV_FOREIGN, ROLE_IS = 0xC0, 0x80, 0x40, 0x00
READ_DG3, READ_DG4 = 0x01, 0x02
CURVE = ec.BrainpoolP256R1()
_ECDSA_CURVE = curves.BRAINPOOLP256r1


def _date(day: dt.date) -> bytes:
    return bytes(int(c) for c in day.strftime("%y%m%d"))


def point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def plain_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-SHA-256 in the plain r || s format of TR-03111 (deterministic nonce: same input, same bytes)."""
    r, s = decode_dss_signature(seeded.ecdsa_sign(key, data))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def plain_verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _public_key_object(key: ec.EllipticCurvePublicKey, with_domain: bool) -> bytes:
    body = oid(TA_ECDSA_SHA256)
    if with_domain:
        c = _ECDSA_CURVE
        size = c.baselen
        g = b"\x04" + int(c.generator.x()).to_bytes(size, "big") + int(c.generator.y()).to_bytes(size, "big")
        body += (
            tlv(0x81, c.curve.p().to_bytes(size, "big"))
            + tlv(0x82, (c.curve.a() % c.curve.p()).to_bytes(size, "big"))
            + tlv(0x83, c.curve.b().to_bytes(size, "big"))
            + tlv(0x84, g)
            + tlv(0x85, c.order.to_bytes(size, "big"))
        )
    body += tlv(0x86, point(key))
    if with_domain:
        body += tlv(0x87, b"\x01")
    return tlv(0x7F49, body)


def make_cvc(
    *,
    car: str,
    chr_: str,
    public_key: ec.EllipticCurvePublicKey,
    role_rights: int,
    effective: dt.date,
    expiration: dt.date,
    signer: ec.EllipticCurvePrivateKey,
    with_domain: bool = False,
) -> bytes:
    body = tlv(
        0x7F4E,
        tlv(0x5F29, b"\x00")
        + tlv(0x42, car.encode())
        + _public_key_object(public_key, with_domain)
        + tlv(0x5F20, chr_.encode())
        + tlv(0x7F4C, oid(ID_IS) + tlv(0x53, bytes([role_rights])))
        + tlv(0x5F25, _date(effective))
        + tlv(0x5F24, _date(expiration)),
    )
    return tlv(0x7F21, body + tlv(0x5F37, plain_sign(signer, body)))


def seeded_key(seed: int, role: str) -> ec.EllipticCurvePrivateKey:
    return seeded.ec_key(seed, f"eac:{role}", CURVE)


ROLES = ("cvca", "dv", "is")


def save_eac_keys(directory: Path | str, seed: int) -> Path:
    """The CVCA, document verifier and inspection system keys of ``seed`` under ``directory``/eac."""
    out = Path(directory) / "eac"
    out.mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        path = out / f"{role}.key"
        path.write_bytes(b"")
        path.chmod(0o600)
        path.write_bytes(seeded_key(seed, role).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return out


def load_eac_keys(directory: Path | str) -> dict[str, ec.EllipticCurvePrivateKey]:
    """The keys :func:`save_eac_keys` wrote; :class:`PkiDirectoryError` when missing or not brainpoolP256r1 keys."""
    keys = {}
    for role in ROLES:
        path = Path(directory) / "eac" / f"{role}.key"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), None)
        except (OSError, ValueError, TypeError) as exc:
            raise PkiDirectoryError(f"{path}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != CURVE.name:
            raise PkiDirectoryError(f"{path}: not a {CURVE.name} key")
        keys[role] = key
    return keys


@dataclass
class EacPki:
    cvca_chr: str
    cvca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificates: dict[str, bytes] = field(repr=False)  # file stem -> encoded certificate
    terminal_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def trust_point(self) -> tuple[str, ec.EllipticCurvePublicKey]:
        return self.cvca_chr, self.cvca_key.public_key()

    def write_credentials(self, directory: Path | str) -> Path:
        """The terminal's TA credentials: ``*.cvcert`` and ``terminal.key`` (0600)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stem, data in self.certificates.items():
            (path / f"{stem}.cvcert").write_bytes(data)
        key_file = path / "terminal.key"
        key_file.write_bytes(b"")
        key_file.chmod(0o600)
        key_file.write_bytes(self.terminal_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
        return path


def eac_pki(
    seed: int = 0,
    *,
    today: dt.date | None = None,
    rights: int = READ_DG3 | READ_DG4,
    terminal_days: tuple[int, int] = (-1, 30),
    dv_role: int = ROLE_DV_DOMESTIC,
    forge_terminal: bool = False,
    keys: dict[str, ec.EllipticCurvePrivateKey] | None = None,
) -> EacPki:
    """CVCA "VNCVCA00001", DV "VNDVBHYT00001", inspection system "VNISGATE00001".

    ``rights`` are the inspection system's read rights; ``terminal_days`` its validity
    relative to ``today``; ``forge_terminal`` signs the terminal certificate with a key
    that is not the DV's (a chip must refuse it).  ``keys`` (from :func:`load_eac_keys`)
    replace the keys of ``seed``.
    """
    day = today or dt.date.today()
    keys = keys or {role: seeded_key(seed, role) for role in ROLES}
    cvca, dv, term = keys["cvca"], keys["dv"], keys["is"]
    cvca_chr, dv_chr, is_chr = "VNCVCA00001", "VNDVBHYT00001", "VNISGATE00001"
    certs = {
        "cvca": make_cvc(car=cvca_chr, chr_=cvca_chr, public_key=cvca.public_key(), role_rights=ROLE_CVCA | 0x03,
                         effective=EPOCH.date(), expiration=EPOCH.date() + dt.timedelta(days=CSCA_YEARS * 365),
                         signer=cvca, with_domain=True),
        "dv": make_cvc(car=cvca_chr, chr_=dv_chr, public_key=dv.public_key(), role_rights=dv_role | 0x03,
                       effective=day - dt.timedelta(days=60), expiration=day + dt.timedelta(days=90), signer=cvca),
        "is": make_cvc(car=dv_chr, chr_=is_chr, public_key=term.public_key(), role_rights=ROLE_IS | rights,
                       effective=day + dt.timedelta(days=terminal_days[0]),
                       expiration=day + dt.timedelta(days=terminal_days[1]),
                       signer=seeded_key(seed, "forger") if forge_terminal else dv),
    }  # fmt: skip
    return EacPki(cvca_chr, cvca, certs, term)


# --- DG3 ---------------------------------------------------------------------------------------------


def finger_record(images: list[tuple[int, bytes]], width: int = 256, height: int = 288, *, depth: int = 4,
                  compression: int = 1, ppi: int = 500) -> bytes:  # fmt: skip
    """An ISO/IEC 19794-4:2005 record, one view per finger position (default: 4-bit bit-packed images)."""
    views = b""
    for position, image in images:
        header = (
            (14 + len(image)).to_bytes(4, "big")
            + bytes([position, 1, 0, 80, 0])  # position, view count, view number, quality, live-scan plain
            + width.to_bytes(2, "big")
            + height.to_bytes(2, "big")
            + b"\x00"
        )
        views += header + image
    general = (
        b"FIR\x00010\x00"
        + (32 + len(views)).to_bytes(6, "big")
        + b"\x00\x00"  # capture device id
        + (31).to_bytes(2, "big")  # image acquisition level
        + bytes([len(images), 1])  # number of fingers, scale units: pixels per inch
        + ppi.to_bytes(2, "big") * 4  # scan and image resolution, horizontal and vertical
        + bytes([depth, compression])  # pixel depth, compression (0 raw, 1 bit-packed, 2 WSQ, 4 JPEG 2000, 5 PNG)
        + b"\x00\x00"
    )
    return general + views


#: DG3 image encodings the simulated chip can hold: name -> (19794-4 compression code, pixel depth)
DG3_FORMATS = {"raw": (0, 8), "packed4": (1, 4), "wsq": (2, 8), "jp2": (4, 8), "png": (5, 8)}


def dg3(identity: str, fingers: tuple[int, ...] = (2,), fmt: str = "wsq") -> bytes:
    """DG3 with one template per finger, each the enrolment impression of the person's synthetic finger."""
    from agent.bio.image import GrayImage, encode
    from sim.finger import synth

    compression, depth = DG3_FORMATS[fmt]
    templates = b""
    for position in fingers:
        ref = synth.reference_for(finger_identity(identity, position))
        image = encode(GrayImage(ref.width, ref.height, ref.pixels), compression)
        record = finger_record([(position, image)], ref.width, ref.height, depth=depth, compression=compression)
        # biometric header: CBEFF version 1.1, type finger (08), format owner 0101, type 0007 (19794-4)
        header = tlv(0xA1, tlv(0x80, b"\x01\x01") + tlv(0x81, b"\x08") + tlv(0x87, b"\x01\x01")
                     + tlv(0x88, b"\x00\x07"))  # fmt: skip
        templates += tlv(0x7F60, header + tlv(0x5F2E, record))
    return tlv(0x63, tlv(0x7F61, tlv(0x02, bytes([len(fingers)])) + templates))


def finger_identity(identity: str, position: int = 2) -> str:
    """The synthetic finger identity of a person's finger (for the simulated module)."""
    return f"{identity}:{position}"
