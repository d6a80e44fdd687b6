"""Trust anchors for Passive Authentication: CSCA certificates, CRLs and ICAO master lists.

A directory (``[reader] trust_dir``) holds ``*.pem``/``*.crt``/``*.cer``/``*.der``
certificates, ``*.crl`` revocation lists (PEM or DER) and ``*.ml`` ICAO master lists
(CMS SignedData of a CscaMasterList, 9303-12 section 8).  A file that cannot be
read is an error naming the file: a terminal silently missing its anchors would
refuse every genuine card.

Master lists are loaded for their certificates; their own signature is not a
source of trust here (the list is signed by a key certified by a CSCA inside the
list), so only place master lists obtained over a trusted channel in the directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import algos, cms, core, keys
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from ecdsa import curves as ecdsa_curves

from agent.card.errors import CardError

log = logging.getLogger(__name__)

CSCA_MASTER_LIST = "2.23.136.1.1.2"


class TrustStoreError(CardError):
    """A trust anchor file is unreadable or malformed."""

    exit_code = 2


class SignatureError(CardError):
    """A signature does not verify, or uses an algorithm or key we cannot check."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

#: curves ICAO keys use, by the ``ecdsa`` package's name (for explicit domain parameters) -> cryptography curve
_NAMED_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "NIST192p": ec.SECP192R1,
    "NIST224p": ec.SECP224R1,
    "NIST256p": ec.SECP256R1,
    "NIST384p": ec.SECP384R1,
    "NIST521p": ec.SECP521R1,
    "BRAINPOOLP256r1": ec.BrainpoolP256R1,
    "BRAINPOOLP384r1": ec.BrainpoolP384R1,
    "BRAINPOOLP512r1": ec.BrainpoolP512R1,
}


def _curve_of(params: keys.SpecifiedECDomain) -> ec.EllipticCurve:
    """The named curve whose parameters are spelled out in ``params`` (9303-12 lets CSCAs publish them so)."""
    if params["field_id"]["field_type"].native != "prime_field":
        raise SignatureError("explicit EC parameters over a binary field are not supported", unsupported=True)
    return curve_from_domain(
        params["field_id"]["parameters"].native,
        int.from_bytes(params["curve"]["a"].native, "big"),
        int.from_bytes(params["curve"]["b"].native, "big"),
        params["order"].native,
        params["base"].native,
    )


def curve_from_domain(p: int, a: int, b: int, order: int, base: bytes) -> ec.EllipticCurve:
    """The named curve with these prime-field domain parameters (explicit in X.509 keys and CV certificates)."""
    for curve in ecdsa_curves.curves:
        if curve.name not in _NAMED_CURVES:
            continue
        c = curve.curve
        if (c.p(), c.a() % c.p(), c.b(), curve.order) != (p, a % p, b, order):
            continue
        size = (p.bit_length() + 7) // 8
        gx, gy = curve.generator.x(), curve.generator.y()
        if base[:1] == b"\x04" and base != b"\x04" + gx.to_bytes(size, "big") + gy.to_bytes(size, "big"):
            continue
        return _NAMED_CURVES[curve.name]()
    raise SignatureError("explicit EC parameters of an unknown curve", unsupported=True)


def load_public_key(spki: bytes) -> PublicKeyTypes:
    """A DER SubjectPublicKeyInfo as a cryptography key, including EC keys with explicit domain parameters."""
    try:
        return serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm) as first:
        try:
            info = keys.PublicKeyInfo.load(spki, strict=True)
            if info["algorithm"]["algorithm"].native != "ec":
                raise SignatureError(f"unsupported public key: {first}", unsupported=True) from first
            params = info["algorithm"]["parameters"]
            if params.name != "specified":
                raise SignatureError(f"unsupported EC curve {params.native}", unsupported=True) from first
            point = bytes(info["public_key"].native)
            return ec.EllipticCurvePublicKey.from_encoded_point(_curve_of(params.chosen), point)
        except SignatureError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            # asn1crypto: an absent or undecodable parameters field is a Void without .name (AttributeError)
            raise SignatureError(f"malformed public key: {exc}") from exc


def certificate_key(cert: x509.Certificate) -> PublicKeyTypes:
    """The public key of ``cert`` (explicit EC domain parameters understood)."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return load_public_key(bytes(parsed["tbs_certificate"]["subject_public_key_info"].dump()))


def der_ecdsa(signature: bytes) -> bytes:
    """ECDSA-Sig-Value as DER; a plain r||s signature (BSI TR-03111) is converted."""
    try:
        parsed = algos.DSASignature.load(signature, strict=True)
        parsed.native  # noqa: B018 - forces the lazy parse
        return signature
    except (ValueError, TypeError):
        if not signature or len(signature) % 2:
            raise SignatureError("ECDSA signature is neither DER nor plain r||s") from None
        half = len(signature) // 2
        return encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))


def verify_signature(
    key: PublicKeyTypes,
    algorithm: algos.SignedDigestAlgorithm,
    signature: bytes,
    data: bytes,
    digest: str | None = None,
) -> None:
    """Check ``signature`` over ``data``; ``digest`` names the hash when the algorithm OID does not (CMS).

    Raises :class:`SignatureError` (``unsupported`` set when we cannot judge rather than it being wrong).
    """
    try:
        name = algorithm.signature_algo
    except ValueError:
        raise SignatureError(f"unsupported signature algorithm {algorithm['algorithm'].dotted}", True) from None
    try:
        if name == "rsassa_pss":
            params = algorithm["parameters"]
            hash_name = params["hash_algorithm"]["algorithm"].native
            mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
            if hash_name not in HASHES or mgf_hash not in HASHES:
                raise SignatureError(f"unsupported RSA-PSS hash {hash_name}/{mgf_hash}", True)
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError("RSA-PSS signature but the certificate key is not RSA")
            pss = padding.PSS(padding.MGF1(HASHES[mgf_hash]()), params["salt_length"].native)
            key.verify(signature, data, pss, HASHES[hash_name]())
            return
        try:
            hash_name = algorithm.hash_algo
        except ValueError:
            hash_name = digest or ""
        if hash_name not in HASHES:
            raise SignatureError(f"unsupported digest algorithm {hash_name or '(none)'} for {name}", True)
        if name == "rsassa_pkcs1v15":
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError("RSA signature but the certificate key is not RSA")
            key.verify(signature, data, padding.PKCS1v15(), HASHES[hash_name]())
        elif name == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SignatureError("ECDSA signature but the certificate key is not EC")
            key.verify(der_ecdsa(signature), data, ec.ECDSA(HASHES[hash_name]()))
        else:
            raise SignatureError(f"unsupported signature algorithm {algorithm['algorithm'].native}", True)
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
    except UnsupportedAlgorithm as exc:
        raise SignatureError(f"unsupported algorithm: {exc}", True) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise SignatureError(f"malformed signature or parameters: {exc}") from None


def verify_issued_by(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> None:
    """Check the signature on ``cert`` (or raise :class:`SignatureError`)."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    verify_signature(
        issuer_key, parsed["signature_algorithm"], parsed["signature_value"].native, parsed["tbs_certificate"].dump()
    )


def verify_crl(crl: x509.CertificateRevocationList, issuer_key: PublicKeyTypes) -> None:
    parsed = asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))
    verify_signature(
        issuer_key, parsed["signature_algorithm"], parsed["signature"].native, parsed["tbs_cert_list"].dump()
    )


class _CertificateSet(core.SetOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    _fields = [("version", core.Integer), ("cert_list", _CertificateSet)]  # noqa: RUF012 - asn1crypto schema


def signer_certificate(signed: cms.SignedData, info: cms.SignerInfo) -> x509.Certificate | None:
    """The certificate in ``signed`` that the signer info's sid names (issuer and serial, or key identifier)."""
    sid = info["sid"]
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            match = cert.issuer == sid.chosen["issuer"] and cert.serial_number == sid.chosen["serial_number"].native
        else:
            match = sid.chosen.native in (cert.key_identifier, cert.public_key.sha1)
        if match:
            return x509.load_der_x509_certificate(cert.dump())
    return None


def _verify_master_list(signed: cms.SignedData, content: bytes, listed: list[x509.Certificate], source: str) -> None:
    """9303-12 8: the list is signed by a Master List Signer whose certificate a CSCA in the list issued.

    This proves the file is intact and self-consistent; it does not make an untrusted list trustworthy.
    """
    infos = signed["signer_infos"]
    if len(infos) != 1:
        raise TrustStoreError(f"{source}: master list has {len(infos)} signers, expected one")
    info = infos[0]
    signer = signer_certificate(signed, info)
    if signer is None:
        raise TrustStoreError(f"{source}: the master list signer certificate is not in the file")
    digest = info["digest_algorithm"]["algorithm"].native
    attrs = info["signed_attrs"]
    try:
        if not attrs:
            raise SignatureError("no signed attributes")
        values = {a["type"].native: a["values"][0].native for a in attrs}
        if digest not in HASHES or values.get("message_digest") != _hash(digest, content):
            raise SignatureError("messageDigest does not match the list")
        verify_signature(
            certificate_key(signer), info["signature_algorithm"], info["signature"].native, attrs.untag().dump(), digest
        )
    except SignatureError as exc:
        raise TrustStoreError(f"{source}: master list signature: {exc}") from exc
    for csca in listed:
        if csca.subject != signer.issuer:
            continue
        try:
            verify_issued_by(signer, certificate_key(csca))
            return
        except SignatureError:
            continue
    raise TrustStoreError(f"{source}: the master list signer is not certified by a CSCA in the list")


def _hash(name: str, data: bytes) -> bytes:
    h = hashes.Hash(HASHES[name]())
    h.update(data)
    return h.finalize()


@dataclass
class TrustStore:
    certificates: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)

    def add_certificate(self, data: bytes, source: str = "certificate") -> int:
        try:
            if b"-----BEGIN" in data:
                certs = x509.load_pem_x509_certificates(data)
            else:
                certs = [x509.load_der_x509_certificate(data)]
        except (ValueError, x509.InvalidVersion) as exc:
            raise TrustStoreError(f"{source}: not a certificate: {exc}") from exc
        self.certificates.extend(certs)
        return len(certs)

    def add_crl(self, data: bytes, source: str = "CRL") -> None:
        try:
            crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
        except ValueError as exc:
            raise TrustStoreError(f"{source}: not a CRL: {exc}") from exc
        self.crls.append(crl)

    def add_master_list(self, data: bytes, source: str = "master list") -> int:
        try:
            info = cms.ContentInfo.load(data, strict=True)
            encap = info["content"]["encap_content_info"]
            if encap["content_type"].dotted != CSCA_MASTER_LIST:
                raise TrustStoreError(f"{source}: content is {encap['content_type'].dotted}, not a CSCA master list")
            content = encap["content"].native
            if not isinstance(content, bytes):
                raise TrustStoreError(f"{source}: master list without content")
            certs = CscaMasterList.load(content, strict=True)["cert_list"]
            loaded = [x509.load_der_x509_certificate(c.dump()) for c in certs]
            _verify_master_list(info["content"], content, loaded, source)
        except TrustStoreError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, x509.InvalidVersion) as exc:
            raise TrustStoreError(f"{source}: malformed master list: {exc}") from exc
        self.certificates.extend(loaded)
        return len(loaded)

    @classmethod
    def from_directory(cls, path: Path | str) -> TrustStore:
        root = Path(path)
        if not root.is_dir():
            raise TrustStoreError(f"{root}: trust anchor directory does not exist")
        store = cls()
        for file in sorted(root.iterdir()):
            suffix = file.suffix.lower()
            if suffix not in (".pem", ".crt", ".cer", ".der", ".crl", ".ml"):
                continue
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise TrustStoreError(f"{file}: cannot read: {exc}") from exc
            if suffix == ".crl":
                store.add_crl(data, str(file))
            elif suffix == ".ml":
                store.add_master_list(data, str(file))
            else:
                store.add_certificate(data, str(file))
        log.info("trust store: %d certificates, %d CRLs", len(store.certificates), len(store.crls))
        return store

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        return [c for c in self.certificates if c.subject == cert.issuer]

    def crls_of(self, issuer: x509.Certificate) -> list[x509.CertificateRevocationList]:
        return [crl for crl in self.crls if crl.issuer == issuer.subject]
