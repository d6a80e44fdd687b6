"""The simulated issuer PKI: a CSCA, document signers, a CRL and an ICAO master list.

Deterministic enough for tests: the same ``seed`` gives the same names and dates;
keys are fresh per process (EC keys are cheap).  Wrong variants for Passive
Authentication tests are made here: an unknown CSCA, an expired or revoked signer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

EPOCH = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)


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
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = field(repr=False)
    cert: x509.Certificate

    def sign(self, data: bytes) -> tuple[bytes, str]:
        """Signature over ``data`` and its CMS algorithm name."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            return self.key.sign(data, pss, hashes.SHA256()), "rsassa_pss"
        return self.key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"


@dataclass
class IssuerPki:
    csca_key: ec.EllipticCurvePrivateKey = field(repr=False)
    csca: x509.Certificate
    signer: Signer
    revoked_signer: Signer
    expired_signer: Signer
    foreign: Signer  # a signer certified by a CSCA the terminal does not trust
    crl: x509.CertificateRevocationList

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
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
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
    return builder.sign(issuer_key, hashes.SHA256())


def issuer_pki(seed: int = 0, ds_algorithm: str = "ecdsa", today: dt.date | None = None) -> IssuerPki:
    now = dt.datetime.combine(today or dt.date.today(), dt.time(), dt.UTC)
    csca_key = ec.generate_private_key(ec.SECP256R1())
    csca_name = _name(f"CSCA Viet Nam (simulated {seed})")
    csca = _cert(
        f"CSCA Viet Nam (simulated {seed})",
        csca_key,
        csca_name,
        csca_key,
        1,
        EPOCH,
        EPOCH + dt.timedelta(days=15 * 365),
        True,
    )

    def ds(serial: int, start: dt.datetime, end: dt.datetime, issuer_key: ec.EllipticCurvePrivateKey = csca_key,
           issuer: x509.Name = csca_name) -> Signer:  # fmt: skip
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        key = (
            rsa.generate_private_key(65537, 2048)
            if ds_algorithm == "rsa-pss"
            else ec.generate_private_key(ec.SECP256R1())
        )
        return Signer(key, _cert(f"Document Signer {serial}", key, issuer, issuer_key, serial, start, end, False))

    signer = ds(100 + seed % 1000, now - dt.timedelta(days=365), now + dt.timedelta(days=3 * 365))
    revoked = ds(2000 + seed % 1000, now - dt.timedelta(days=365), now + dt.timedelta(days=3 * 365))
    expired = ds(3000 + seed % 1000, now - dt.timedelta(days=4 * 365), now - dt.timedelta(days=30))
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    foreign = ds(4000, now - dt.timedelta(days=365), now + dt.timedelta(days=365), rogue_key, _name("CSCA Nowhere"))
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca_name)
        .last_update(now - dt.timedelta(days=1))
        .next_update(now + dt.timedelta(days=90))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.cert.serial_number)
            .revocation_date(now - dt.timedelta(days=2))
            .build()
        )
        .sign(csca_key, hashes.SHA256())
    )
    return IssuerPki(csca_key, csca, signer, revoked, expired, foreign, crl)


def signed_data(content_type: str, content: bytes, signer: Signer, *, corrupt: bool = False) -> cms.ContentInfo:
    """A CMS SignedData (RFC 5652) with signed attributes, as ICAO 9303-10 4.6.2 shapes EF.SOD."""
    import hashlib

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
