"""The simulated issuer PKI: a CSCA, document signers, a CRL and an ICAO master list.

Reproducible: the same ``seed`` gives the same keys (:mod:`sim.card.seeded`), names,
serial numbers, validity windows and signatures, byte for byte, so trust anchors
written yesterday still verify today's simulated cards.  Validity windows hang off
a fixed :data:`EPOCH`, never off the clock: the CSCA and the document signers are
valid from 2021 to 2036 (the expired signer only in 2021).  :meth:`IssuerPki.save`
and :func:`load_issuer_pki` keep one PKI in a directory for reuse across runs and
code changes.  Wrong variants for Passive Authentication tests are made here: an
unknown CSCA, an expired or revoked signer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from sim.card import seeded

EPOCH = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
CSCA_YEARS, SIGNER_YEARS = 20, 15
_YEAR = dt.timedelta(days=365)
CURVE = ec.SECP256R1()
PKI_FORMAT = 1
#: the signers an IssuerPki holds, by attribute and file stem
SIGNERS = {"signer": "signer", "revoked_signer": "revoked-signer", "expired_signer": "expired-signer",
           "foreign": "foreign-signer"}  # fmt: skip

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class PkiDirectoryError(ValueError):
    """A PKI directory that is missing files or was written for something else."""


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simulated Ministry of Public Security"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class Signer:
    key: PrivateKey = field(repr=False)
    cert: x509.Certificate

    def sign(self, data: bytes) -> tuple[bytes, str]:
        """Signature over ``data`` and its CMS algorithm name."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            return self.key.sign(data, pss, hashes.SHA256()), "rsassa_pss"
        return seeded.ecdsa_sign(self.key, data), "sha256_ecdsa"


@dataclass
class IssuerPki:
    csca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    csca: x509.Certificate
    signer: Signer
    revoked_signer: Signer
    expired_signer: Signer
    foreign: Signer  # a signer certified by a CSCA the terminal does not trust
    crl: x509.CertificateRevocationList
    seed: int = 0
    ds_algorithm: str = "ecdsa"

    def save(self, directory: Path | str) -> Path:
        """Keys, certificates and CRL under ``directory``/issuer, and the gate's anchors under ``trust``."""
        out = Path(directory)
        issuer = out / "issuer"
        issuer.mkdir(parents=True, exist_ok=True)
        _write_key(issuer / "csca.key", self.csca_key)
        (issuer / "csca.pem").write_bytes(self.csca.public_bytes(serialization.Encoding.PEM))
        (issuer / "csca.crl").write_bytes(self.crl.public_bytes(serialization.Encoding.DER))
        for attribute, stem in SIGNERS.items():
            signer: Signer = getattr(self, attribute)
            _write_key(issuer / f"{stem}.key", signer.key)
            (issuer / f"{stem}.pem").write_bytes(signer.cert.public_bytes(serialization.Encoding.PEM))
        self.write_trust(out / "trust")
        meta = {"format": PKI_FORMAT, "seed": self.seed, "ds_algorithm": self.ds_algorithm}
        (issuer / "pki.json").write_text(json.dumps(meta, indent=2) + "\n")
        return out

    def write_trust(self, directory: Path | str) -> None:
        """csca.pem, csca.crl (DER) and masterlist.ml (an ICAO master list holding the CSCA)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "csca.pem").write_bytes(self.csca.public_bytes(serialization.Encoding.PEM))
        (out / "csca.crl").write_bytes(self.crl.public_bytes(serialization.Encoding.DER))
        (out / "masterlist.ml").write_bytes(self.master_list())

    def master_list(self) -> bytes:
        """ICAO 9303-12 CSCA master list (CMS SignedData, content 2.23.136.1.1.2) signed by the CSCA key."""
        cert = asn1_x509.Certificate.load(self.csca.public_bytes(serialization.Encoding.DER))

        class CertSet(core.SetOf):  # type: ignore[misc]
            _child_spec = asn1_x509.Certificate

        class MasterList(core.Sequence):  # type: ignore[misc]
            _fields = [("version", core.Integer), ("cert_list", CertSet)]  # noqa: RUF012

        content = MasterList({"version": 0, "cert_list": [cert]}).dump()
        return bytes(signed_data("2.23.136.1.1.2", content, Signer(self.csca_key, self.csca)).dump())


def _cert(
    subject: str,
    key: PrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    serial: int,
    start: dt.datetime,
    end: dt.datetime,
    ca: bool,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )  # fmt: skip
    return seeded.resign_certificate(builder.sign(issuer_key, hashes.SHA256()), issuer_key)


def issuer_pki(seed: int = 0, ds_algorithm: str = "ecdsa") -> IssuerPki:
    """The issuer PKI of ``seed``: the same seed gives the same certificates, byte for byte."""
    if ds_algorithm not in ("ecdsa", "rsa-pss"):
        raise ValueError(f"unknown document signer algorithm {ds_algorithm!r} (ecdsa or rsa-pss)")
    csca_key = seeded.ec_key(seed, "csca", CURVE)
    csca_cn = f"CSCA Viet Nam (simulated {seed})"
    csca_name = _name(csca_cn)
    csca = _cert(csca_cn, csca_key, csca_name, csca_key, 1, EPOCH, EPOCH + CSCA_YEARS * _YEAR, True)

    def ds(serial: int, start: dt.datetime, end: dt.datetime, issuer_key: ec.EllipticCurvePrivateKey = csca_key,
           issuer: x509.Name = csca_name) -> Signer:  # fmt: skip
        label = f"ds:{serial}"
        key: PrivateKey = (
            seeded.rsa_key(seed, label) if ds_algorithm == "rsa-pss" else seeded.ec_key(seed, label, CURVE)
        )
        return Signer(key, _cert(f"Document Signer {serial}", key, issuer, issuer_key, serial, start, end, False))

    valid = (EPOCH, EPOCH + SIGNER_YEARS * _YEAR)
    signer = ds(100 + seed % 1000, *valid)
    revoked = ds(2000 + seed % 1000, *valid)
    expired = ds(3000 + seed % 1000, EPOCH, EPOCH + _YEAR)
    rogue_key = seeded.ec_key(seed, "foreign-csca", CURVE)
    foreign = ds(4000, *valid, rogue_key, _name("CSCA Nowhere"))
    return IssuerPki(csca_key, csca, signer, revoked, expired, foreign, _crl(csca, csca_key, revoked), seed,
                     ds_algorithm)  # fmt: skip


def _crl(
    csca: x509.Certificate, csca_key: ec.EllipticCurvePrivateKey, revoked: Signer
) -> x509.CertificateRevocationList:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.subject)
        .last_update(EPOCH + _YEAR)
        .next_update(EPOCH + CSCA_YEARS * _YEAR)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.cert.serial_number)
            .revocation_date(EPOCH + _YEAR)
            .build()
        )
        .sign(csca_key, hashes.SHA256())
    )
    return seeded.resign_crl(crl, csca_key)


def _write_key(path: Path, key: PrivateKey) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _read_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiDirectoryError(f"{path}: not an EC or RSA private key")
    return key


def load_issuer_pki(directory: Path | str) -> IssuerPki:
    """The issuer PKI :meth:`IssuerPki.save` wrote; :class:`PkiDirectoryError` when it is not one."""
    issuer = Path(directory) / "issuer"
    try:
        meta = json.loads((issuer / "pki.json").read_text())
        if meta.get("format") != PKI_FORMAT:
            raise PkiDirectoryError(f"{issuer}/pki.json: format {meta.get('format')!r}, expected {PKI_FORMAT}")
        csca_key = _read_key(issuer / "csca.key")
        if not isinstance(csca_key, ec.EllipticCurvePrivateKey):
            raise PkiDirectoryError(f"{issuer}/csca.key: the CSCA key must be an EC key")
        csca = x509.load_pem_x509_certificate((issuer / "csca.pem").read_bytes())
        crl = x509.load_der_x509_crl((issuer / "csca.crl").read_bytes())
        signers = {
            attribute: Signer(_read_key(issuer / f"{stem}.key"),
                              x509.load_pem_x509_certificate((issuer / f"{stem}.pem").read_bytes()))
            for attribute, stem in SIGNERS.items()
        }  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, PkiDirectoryError):
            raise
        raise PkiDirectoryError(f"{issuer}: not a simulated issuer PKI ({exc})") from exc
    if csca.public_key() != csca_key.public_key():
        raise PkiDirectoryError(f"{issuer}: csca.key does not belong to csca.pem")
    seed, ds_algorithm = int(meta.get("seed", 0)), str(meta.get("ds_algorithm", "ecdsa"))
    return IssuerPki(csca_key, csca, signers["signer"], signers["revoked_signer"], signers["expired_signer"],
                     signers["foreign"], crl, seed, ds_algorithm)  # fmt: skip


def signed_data(content_type: str, content: bytes, signer: Signer, *, corrupt: bool = False) -> cms.ContentInfo:
    """A CMS SignedData (RFC 5652) with signed attributes, as ICAO 9303-10 4.6.2 shapes EF.SOD."""
    cert = asn1_x509.Certificate.load(signer.cert.public_bytes(serialization.Encoding.DER))
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
        ]
    )
    signature, algorithm = signer.sign(attrs.dump())
    if corrupt:
        signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
    sig_alg: dict[str, object] = {"algorithm": algorithm}
    if algorithm == "rsassa_pss":
        sig_alg["parameters"] = {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
            "salt_length": 32,
        }
    info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}}
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attrs,
            "signature_algorithm": sig_alg,
            "signature": signature,
        }
    )
    data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": content_type, "content": content},
            "certificates": [cert],
            "signer_infos": [info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": data})
