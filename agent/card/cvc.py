"""Card-verifiable certificates (BSI TR-03110-3, appendix C) and the terminal's EAC chain.

A CV certificate is ``7F21 { 7F4E body, 5F37 signature }``; the body holds the
profile identifier (5F29), the issuer's reference (CAR, 42), the public key (7F49:
an OID naming the Terminal Authentication algorithm, domain parameters in a CVCA
certificate only, the point or modulus/exponent), the holder's reference (CHR,
5F20), the holder's role and rights (CHAT, 7F4C) and the effective and expiry dates
(5F25/5F24, six unpacked BCD digits YYMMDD).  The signature covers the encoded body
and uses the *issuer's* algorithm; ECDSA signatures are plain ``r || s``.

Only what Terminal Authentication version 1 needs for an inspection system is
modelled: roles and the two read rights (DG3 fingerprints, DG4 iris).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from agent.card import tlv
from agent.card.errors import CardError, ParseError
from agent.card.secinfo import decode_oid
from agent.card.trust import SignatureError, curve_from_domain, der_ecdsa

ID_TA = "0.4.0.127.0.7.2.2.2"
ID_IS = "0.4.0.127.0.7.3.1.2.1"  # inspection systems (ICAO eMRTD)
_H: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
#: TA algorithm OID -> (family, hash); RSA families are "pkcs1" and "pss"
TA_ALGORITHMS: dict[str, tuple[str, str]] = {
    ID_TA + ".1.1": ("pkcs1", "sha1"),
    ID_TA + ".1.2": ("pkcs1", "sha256"),
    ID_TA + ".1.3": ("pss", "sha1"),
    ID_TA + ".1.4": ("pss", "sha256"),
    ID_TA + ".1.5": ("pkcs1", "sha512"),
    ID_TA + ".1.6": ("pss", "sha512"),
    ID_TA + ".2.1": ("ecdsa", "sha1"),
    ID_TA + ".2.2": ("ecdsa", "sha224"),
    ID_TA + ".2.3": ("ecdsa", "sha256"),
    ID_TA + ".2.4": ("ecdsa", "sha384"),
    ID_TA + ".2.5": ("ecdsa", "sha512"),
}


class Role(enum.IntEnum):
    """The two top bits of the CHAT's rights byte."""

    IS = 0
    DV_FOREIGN = 1
    DV_DOMESTIC = 2
    CVCA = 3


RIGHT_DG3 = 0x01  # read access to DG3 (fingerprints)
RIGHT_DG4 = 0x02  # read access to DG4 (iris)


class CvcError(CardError):
    """A CV certificate or chain that cannot be used; ``step`` names the check that failed."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass(frozen=True)
class CvPublicKey:
    oid: str
    point: bytes | None = None  # 86: EC public point
    modulus: int | None = None  # 81 (RSA)
    exponent: int | None = None  # 82 (RSA)
    domain: tuple[int, int, int, bytes, int] | None = None  # (p, a, b, G, r) in a CVCA certificate

    @property
    def algorithm(self) -> tuple[str, str]:
        try:
            return TA_ALGORITHMS[self.oid]
        except KeyError:
            raise CvcError("algorithm", f"unsupported Terminal Authentication algorithm {self.oid}") from None


@dataclass(frozen=True)
class CvCertificate:
    raw: bytes = field(repr=False)
    body: bytes = field(repr=False)  # the encoded 7F4E object, what the signature covers
    signature: bytes = field(repr=False)
    profile: int
    car: str
    chr: str
    public_key: CvPublicKey
    chat_oid: str
    rights: int  # the CHAT's discretionary data (one byte for inspection systems)
    effective: dt.date
    expiration: dt.date

    @property
    def role(self) -> Role:
        return Role(self.rights >> 6)

    @property
    def self_signed(self) -> bool:
        return self.car == self.chr

    def valid_on(self, day: dt.date) -> bool:
        return self.effective <= day <= self.expiration

    def describe(self) -> str:
        return f"{self.role.name} {self.chr} (by {self.car}, {self.effective}..{self.expiration})"


def _date(value: bytes, where: str) -> dt.date:
    if len(value) != 6 or any(b > 9 for b in value):
        raise ParseError("a CV certificate date is six unpacked BCD digits", where)
    y, m, d = (value[i] * 10 + value[i + 1] for i in (0, 2, 4))
    try:
        return dt.date(2000 + y, m, d)
    except ValueError:
        raise ParseError(f"not a date: {value.hex()}", where) from None


def _text(value: bytes, where: str) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise ParseError("a certificate reference is not ASCII", where) from None


def parse_public_key(obj: tlv.Tlv, where: str) -> CvPublicKey:
    items = {item.tag: item.value for item in obj.children(where)}
    if 0x06 not in items:
        raise ParseError("public key without an algorithm OID", where)
    oid = decode_oid(items[0x06], where)
    if oid.startswith(ID_TA + ".1."):
        if 0x81 not in items or 0x82 not in items:
            raise ParseError("RSA public key without modulus or exponent", where)
        return CvPublicKey(oid, modulus=int.from_bytes(items[0x81], "big"),
                           exponent=int.from_bytes(items[0x82], "big"))  # fmt: skip
    if 0x86 not in items:
        raise ParseError("EC public key without its point (86)", where)
    domain = None
    if all(t in items for t in (0x81, 0x82, 0x83, 0x84, 0x85)):
        p, a, b, r = (int.from_bytes(items[t], "big") for t in (0x81, 0x82, 0x83, 0x85))
        domain = (p, a, b, items[0x84], r)
    return CvPublicKey(oid, point=items[0x86], domain=domain)


def parse_cvc(data: bytes) -> CvCertificate:
    """Parse one CV certificate; :class:`ParseError` naming the field when it is malformed."""
    where = "CV certificate"
    outer = tlv.parse_single(data, 0x7F21, where)
    body = outer.child(0x7F4E, where)
    signature = outer.child(0x5F37, where).value
    fields = {item.tag: item for item in body.children(where)}
    for tag, name in ((0x5F29, "profile"), (0x42, "CAR"), (0x7F49, "public key"), (0x5F20, "CHR"),
                      (0x7F4C, "CHAT"), (0x5F25, "effective date"), (0x5F24, "expiration date")):  # fmt: skip
        if tag not in fields:
            raise ParseError(f"the body has no {name} ({tag:X})", where)
    chat = {item.tag: item.value for item in fields[0x7F4C].children(where + " CHAT")}
    if 0x06 not in chat or 0x53 not in chat or not chat[0x53]:
        raise ParseError("the CHAT needs an OID and its rights", where)
    cert = CvCertificate(
        raw=outer.to_bytes(),
        body=body.to_bytes(),
        signature=signature,
        profile=int.from_bytes(fields[0x5F29].value, "big"),
        car=_text(fields[0x42].value, where + " CAR"),
        chr=_text(fields[0x5F20].value, where + " CHR"),
        public_key=parse_public_key(fields[0x7F49], where + " public key"),
        chat_oid=decode_oid(chat[0x06], where + " CHAT"),
        rights=chat[0x53][0],  # role bits and, for inspection systems, the read rights: one byte
        effective=_date(fields[0x5F25].value, where + " effective date"),
        expiration=_date(fields[0x5F24].value, where + " expiration date"),
    )
    if cert.expiration < cert.effective:
        raise ParseError("expires before it becomes effective", where)
    return cert


def public_key_of(key: CvPublicKey, domain_from: CvPublicKey | None = None) -> PublicKeyTypes:
    """A cryptography key; EC keys of DV and IS certificates take the CVCA's domain parameters."""
    family, _ = key.algorithm
    try:
        if family in ("pkcs1", "pss"):
            assert key.modulus is not None and key.exponent is not None
            return rsa.RSAPublicNumbers(key.exponent, key.modulus).public_key()
        domain = key.domain or (domain_from.domain if domain_from else None)
        if domain is None:
            raise CvcError("domain parameters", "no domain parameters for this EC key (need the CVCA certificate)")
        p, a, b, g, r = domain
        assert key.point is not None
        return ec.EllipticCurvePublicKey.from_encoded_point(curve_from_domain(p, a, b, r, g), key.point)
    except SignatureError as exc:
        raise CvcError("domain parameters", str(exc)) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CvcError("public key", f"not a usable key: {exc}") from None


def verify_ta_signature(key: PublicKeyTypes, oid: str, signature: bytes, data: bytes) -> bool:
    family, hash_name = TA_ALGORITHMS.get(oid, ("", ""))
    algorithm = _H[hash_name]() if hash_name else None
    try:
        if family == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(der_ecdsa(signature), data, ec.ECDSA(algorithm))
        elif family == "pkcs1" and isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif family == "pss" and isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)
        else:
            raise CvcError("algorithm", f"key and algorithm {oid} do not go together")
    except (InvalidSignature, SignatureError, ValueError):
        return False
    return True


def sign_ta(key: PrivateKeyTypes, oid: str, data: bytes) -> bytes:
    """A Terminal Authentication signature (ECDSA plain ``r || s`` as TR-03111 wants, or RSA)."""
    family, hash_name = TA_ALGORITHMS.get(oid, ("", ""))
    if not family:
        raise CvcError("algorithm", f"unsupported Terminal Authentication algorithm {oid}")
    algorithm = _H[hash_name]()
    if family == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if family == "pkcs1" and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm)
    if family == "pss" and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)
    raise CvcError("terminal key", f"the terminal's private key does not fit algorithm {oid}")


# --- the terminal's chain ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalCredentials:
    """What an inspection system needs for TA: its chain (CVCA first) and its private key."""

    chain: tuple[CvCertificate, ...]  # CVCA, [link certificates], DV, IS
    key: PrivateKeyTypes = field(repr=False)

    @property
    def cvca(self) -> CvCertificate:
        return self.chain[0]

    @property
    def terminal(self) -> CvCertificate:
        return self.chain[-1]

    @property
    def to_send(self) -> tuple[CvCertificate, ...]:
        """The certificates the chip verifies: all but the CVCA it already trusts."""
        return self.chain[1:]

    @property
    def rights(self) -> int:
        """Effective rights: the AND over the chain (TR-03110-3, C.4)."""
        value = 0x3F
        for cert in self.chain:
            value &= cert.rights & 0x3F
        return value

    @property
    def grants_dg3(self) -> bool:
        return bool(self.rights & RIGHT_DG3)

    def check(self, day: dt.date) -> None:
        """Verify every signature and role in the chain and that the terminal's certificate is valid on ``day``."""
        verify_chain(self.chain, day)
        if not self.terminal.valid_on(day):
            raise CvcError("validity", f"the terminal certificate is not valid on {day}: {self.terminal.describe()}")


def verify_chain(chain: tuple[CvCertificate, ...] | list[CvCertificate], day: dt.date) -> None:
    if not chain:
        raise CvcError("chain", "no certificates")
    cvca = chain[0]
    if cvca.role is not Role.CVCA or not cvca.self_signed:
        raise CvcError("chain", f"the chain must start with a self-signed CVCA certificate, not {cvca.describe()}")
    domain = cvca.public_key
    issuer_key = public_key_of(cvca.public_key)
    issuer = cvca
    if not verify_ta_signature(issuer_key, cvca.public_key.oid, cvca.signature, cvca.body):
        raise CvcError("signature", f"the CVCA certificate {cvca.chr} is not self-signed by its key")
    for cert in chain[1:]:
        if cert.car != issuer.chr:
            raise CvcError("chain", f"{cert.chr} names issuer {cert.car}, but the previous certificate is {issuer.chr}")
        if not verify_ta_signature(issuer_key, issuer.public_key.oid, cert.signature, cert.body):
            raise CvcError("signature", f"the certificate {cert.chr} does not verify with {issuer.chr}'s key")
        if cert.public_key.domain is not None:
            domain = cert.public_key
        if cert.role is Role.CVCA and issuer.role is not Role.CVCA:
            raise CvcError("role", f"{cert.chr} is a CVCA certificate issued by a {issuer.role.name}")
        if (
            cert.role is not Role.CVCA
            and issuer.role is not Role.CVCA
            and not (cert.role is Role.IS and issuer.role in (Role.DV_DOMESTIC, Role.DV_FOREIGN))
        ):
            raise CvcError("role", f"a {issuer.role.name} cannot issue the {cert.role.name} certificate {cert.chr}")
        issuer, issuer_key = cert, public_key_of(cert.public_key, domain)
    if chain[-1].role is not Role.IS:
        raise CvcError("role", f"the chain ends with {chain[-1].describe()}, not an inspection system")
    if chain[-1].chat_oid != ID_IS:
        raise CvcError("role", f"the terminal certificate is for {chain[-1].chat_oid}, not an inspection system")


def load_credentials(directory: Path | str, day: dt.date | None = None) -> TerminalCredentials:
    """Read ``*.cvcert`` files and ``terminal.key`` (PEM) from ``directory``; build and check the chain.

    Raises :class:`CvcError` naming what is wrong (missing file, broken chain, expired).
    """
    path = Path(directory)
    if not path.is_dir():
        raise CvcError("credentials", f"no terminal credentials directory {path}")
    certs: dict[str, CvCertificate] = {}
    for file in sorted(path.glob("*.cvcert")):
        try:
            cert = parse_cvc(file.read_bytes())
        except ParseError as exc:
            raise CvcError("credentials", f"{file.name}: {exc}") from None
        certs[cert.chr] = cert
    key_file = path / "terminal.key"
    if not key_file.exists():
        raise CvcError("credentials", f"{path} has no terminal.key")
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CvcError("credentials", f"terminal.key is not a usable private key: {exc}") from None
    terminal = next((c for c in certs.values() if c.role is Role.IS and _matches(c, key, certs)), None)
    if terminal is None:
        raise CvcError("credentials", "no inspection-system certificate matches terminal.key")
    chain = [terminal]
    while not chain[0].self_signed:
        issuer = certs.get(chain[0].car)
        if issuer is None or issuer in chain:
            raise CvcError("chain", f"the issuer {chain[0].car} of {chain[0].chr} is not in {path}")
        chain.insert(0, issuer)
    credentials = TerminalCredentials(tuple(chain), key)
    credentials.check(day or dt.date.today())
    return credentials


def _matches(cert: CvCertificate, key: PrivateKeyTypes, certs: dict[str, CvCertificate]) -> bool:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return cert.public_key.point == point
    if isinstance(public, rsa.RSAPublicKey):
        return cert.public_key.modulus == public.public_numbers().n
    return False
