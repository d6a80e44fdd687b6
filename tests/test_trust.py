"""Trust store: CSCA certificates, CRLs and ICAO master lists from a directory; bad files named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.card.pa import passive_authentication
from agent.card.trust import TrustStore, TrustStoreError
from tests import ldsgen as g

CSCA = g.csca()
CSCA2 = g.csca("brainpool", cn="CSCA VN 2")
DS = g.signer(CSCA)
ML_SIGNER = g.signer(CSCA, cn="Master List Signer VN")


def test_directory_with_every_kind_of_file(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(CSCA.pem + CSCA2.pem)  # two certificates in one PEM
    (tmp_path / "b.der").write_bytes(CSCA.der)
    (tmp_path / "c.CRT").write_bytes(CSCA2.der)
    (tmp_path / "d.crl").write_bytes(g.crl(CSCA, [DS.cert.serial_number]))
    pem_crl = g.crl(CSCA2, [])
    from cryptography import x509

    (tmp_path / "e.crl").write_bytes(x509.load_der_x509_crl(pem_crl).public_bytes(serialization.Encoding.PEM))
    (tmp_path / "f.ml").write_bytes(g.master_list([CSCA, CSCA2], ML_SIGNER))
    (tmp_path / "README.txt").write_text("ignored")
    store = TrustStore.from_directory(tmp_path)
    assert len(store.certificates) == 2 + 1 + 1 + 2
    assert len(store.crls) == 2
    assert {c.subject for c in store.issuers_of(DS.cert)} == {CSCA.cert.subject}
    assert len(store.crls_of(CSCA.cert)) == 1


def test_master_list_alone_is_a_trust_anchor(tmp_path: Path) -> None:
    (tmp_path / "vn.ml").write_bytes(g.master_list([CSCA2, CSCA], CSCA))  # signed by a listed CSCA directly
    read = {"dg1": g.dg1(g.td1())}
    sod = g.sod({1: read["dg1"]}, DS)
    assert passive_authentication(sod, read, TrustStore.from_directory(tmp_path), at=g.NOW).valid


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("csca.pem", b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "not a certificate"),
        ("csca.der", b"\x30\x03\x02\x01\x01", "not a certificate"),
        ("revoked.crl", b"garbage", "not a CRL"),
        ("list.ml", b"\x30\x00", "malformed master list"),
    ],
)
def test_bad_file_is_named(tmp_path: Path, filename: str, content: bytes, message: str) -> None:
    (tmp_path / "good.pem").write_bytes(CSCA.pem)
    (tmp_path / filename).write_bytes(content)
    with pytest.raises(TrustStoreError, match=message) as info:
        TrustStore.from_directory(tmp_path)
    assert filename in str(info.value)


def test_master_list_of_other_content_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.ml").write_bytes(g.signed_data("1.2.840.113549.1.7.1", b"\x30\x00", CSCA))
    with pytest.raises(TrustStoreError, match=r"x\.ml.*not a CSCA master list"):
        TrustStore.from_directory(tmp_path)


def test_master_list_with_bad_signature_is_refused() -> None:
    from asn1crypto import x509 as ax509

    from tests.ldsgen import CSCA_MASTER_LIST, _MasterList

    content = _MasterList({"version": 0, "certs": [ax509.Certificate.load(CSCA.der)]}).dump()
    bad = g.signed_data(CSCA_MASTER_LIST, content, ML_SIGNER, corrupt_signature=True)
    with pytest.raises(TrustStoreError, match="master list signature"):
        TrustStore().add_master_list(bad, "bad.ml")


def test_master_list_signed_outside_the_list_is_refused() -> None:
    stranger = g.csca(cn="Someone else")
    with pytest.raises(TrustStoreError, match="not certified by a CSCA in the list"):
        TrustStore().add_master_list(g.master_list([CSCA], g.signer(stranger)), "stranger.ml")


def test_missing_directory() -> None:
    with pytest.raises(TrustStoreError, match="does not exist"):
        TrustStore.from_directory("/nonexistent/trust")


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "dir.pem").mkdir()  # a directory where a file is expected
    with pytest.raises(TrustStoreError, match=r"dir\.pem"):
        TrustStore.from_directory(tmp_path)


def test_certificate_with_invalid_version_is_named(tmp_path: Path) -> None:
    bad = CSCA.der.replace(bytes.fromhex("a003020102"), bytes.fromhex("a003020105"), 1)
    (tmp_path / "v6.der").write_bytes(bad)
    with pytest.raises(TrustStoreError, match=r"v6\.der: not a certificate"):
        TrustStore.from_directory(tmp_path)
