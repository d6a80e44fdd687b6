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

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from agent.card.errors import CardError

log = logging.getLogger(__name__)

CSCA_MASTER_LIST = "2.23.136.1.1.2"


class TrustStoreError(CardError):
    """A trust anchor file is unreadable or malformed."""

    exit_code = 2


class _CertificateSet(core.SetOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    _fields = [("version", core.Integer), ("cert_list", _CertificateSet)]  # noqa: RUF012 - asn1crypto schema


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
        except ValueError as exc:
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
        except TrustStoreError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
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
