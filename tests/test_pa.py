"""Passive Authentication on data made by tests/ldsgen.py: the genuine pass and one test per failing step."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.card.pa import passive_authentication
from agent.card.sod import parse_sod
from agent.card.trust import TrustStore
from tests import ldsgen as g

DAY = g.DAY
CSCA = g.csca("ecdsa")
DS = g.signer(CSCA, "ecdsa", serial=100)


def files() -> dict[str, bytes]:
    return {"dg1": g.dg1(g.td1()), "dg13": g.dg13(g.DG13_SAMPLE), "dg2": g.dg2([(g.fake_jpeg(), 480, 640, 0)])}


def numbered(read: dict[str, bytes]) -> dict[int, bytes]:
    return {int(k[2:]): v for k, v in read.items()}


def trust(*cscas: g.Party, crl: bytes | None = None) -> TrustStore:
    store = TrustStore()
    for c in cscas or (CSCA,):
        store.add_certificate(c.pem)
    if crl is not None:
        store.add_crl(crl)
    return store


def run(sod: bytes, read: dict[str, bytes] | None = None, store: TrustStore | None = None, **kw: Any) -> Any:
    return passive_authentication(sod, read if read is not None else files(), store or trust(), at=kw.get("at", g.NOW))


def assert_failed(result: Any, step: str) -> None:
    assert result.valid is False, result
    assert result.failed_step == step, result
    assert result.steps[-1].name == step and result.steps[-1].ok is False
    assert all(s.ok for s in result.steps[:-1])


@pytest.mark.parametrize("kind", ["ecdsa", "brainpool", "rsa", "rsa-pss", "p384"])
def test_genuine_document_passes(kind: str) -> None:
    csca = g.csca(kind)
    ds = g.signer(csca, kind)
    read = files()
    result = run(g.sod(numbered(read), ds), read, trust(csca))
    assert result.valid, result
    assert result.failed_step is None
    names = [s.name for s in result.steps]
    assert names == ["sod", "message-digest", "signature", "chain", "validity", "revocation",
                     "hash:dg1", "hash:dg2", "hash:dg13"]  # fmt: skip
    assert "DS VN test" in (result.signer or "") and "CSCA VN test" in (result.csca or "")
    assert result.as_dict()["valid"] is True


def test_plain_ecdsa_signature_and_other_digests_pass() -> None:
    read = files()
    sod = g.sod(numbered(read), DS, algorithm="ecdsa-plain", digest="sha384", lso_digest="sha512")
    assert run(sod, read).valid


def test_subject_key_identifier_signer_id_passes() -> None:
    read = files()
    assert run(g.sod(numbered(read), DS, subject_key_id=True), read).valid


def test_only_the_files_read_are_hashed() -> None:
    read = files()
    sod = g.sod(numbered(read), DS)
    result = run(sod, {"dg1": read["dg1"], "com": b"not hashed"})
    assert result.valid
    assert [s.name for s in result.steps if s.name.startswith("hash:")] == ["hash:dg1"]


def test_altered_data_group_fails_its_hash_step() -> None:
    read = files()
    sod = g.sod(numbered(read), DS)
    read["dg13"] = g.dg13({**g.DG13_SAMPLE, 2: "Nguyễn Văn Ân"})
    assert_failed(run(sod, read), "hash:dg13")


def test_data_group_absent_from_the_sod_fails() -> None:
    read = files()
    sod = g.sod({1: read["dg1"]}, DS)
    assert_failed(run(sod, read), "hash:dg2")


def test_bad_signature_fails_the_signature_step() -> None:
    read = files()
    assert_failed(run(g.sod(numbered(read), DS, corrupt_signature=True), read), "signature")


def test_bad_rsa_pss_signature_fails() -> None:
    csca = g.csca("rsa-pss")
    ds = g.signer(csca, "rsa-pss")
    read = files()
    assert_failed(run(g.sod(numbered(read), ds, corrupt_signature=True), read, trust(csca)), "signature")


def test_signed_attribute_digest_mismatch_fails_message_digest() -> None:
    read = files()
    assert_failed(run(g.sod(numbered(read), DS, message_digest=bytes(32)), read), "message-digest")


def test_content_type_attribute_mismatch_fails_message_digest() -> None:
    read = files()
    sod = g.sod(numbered(read), DS, attr_content_type="1.2.840.113549.1.7.1")
    assert_failed(run(sod, read), "message-digest")


def test_unknown_csca_fails_the_chain() -> None:
    other = g.csca("ecdsa", cn="CSCA VN test")  # same name, different key: must not chain
    assert_failed(run(g.sod(numbered(files()), DS), store=trust(other)), "chain")
    foreign = g.csca("ecdsa", cn="CSCA elsewhere")
    assert_failed(run(g.sod(numbered(files()), g.signer(foreign))), "chain")


def test_no_trust_anchors_fails_the_chain() -> None:
    result = passive_authentication(g.sod(numbered(files()), DS), files(), None, at=g.NOW)
    assert_failed(result, "chain")
    assert "trust" in result.detail


def test_expired_signer_fails_validity() -> None:
    ds = g.signer(CSCA, start=g.NOW - 800 * DAY, end=g.NOW - DAY)
    result = run(g.sod(numbered(files()), ds))
    assert_failed(result, "validity")
    assert "document signer" in result.detail


def test_signer_not_yet_valid_fails_validity() -> None:
    ds = g.signer(CSCA, start=g.NOW + DAY, end=g.NOW + 300 * DAY)
    assert_failed(run(g.sod(numbered(files()), ds)), "validity")


def test_expired_csca_fails_validity() -> None:
    csca = g.csca(start=g.NOW - 4000 * DAY, end=g.NOW - 10 * DAY)
    ds = g.signer(csca, start=g.NOW - 100 * DAY, end=g.NOW + 100 * DAY)
    result = run(g.sod(numbered(files()), ds), store=trust(csca))
    assert_failed(result, "validity")
    assert "CSCA" in result.detail


def test_validity_is_judged_at_the_given_time() -> None:
    sod = g.sod(numbered(files()), DS)
    assert run(sod, at=g.NOW).valid
    assert_failed(run(sod, at=g.NOW + 400 * DAY), "validity")
    naive = (g.NOW + 400 * DAY).replace(tzinfo=None)  # naive times are taken as UTC, not a crash
    assert_failed(run(sod, at=naive), "validity")


def test_revoked_signer_fails_revocation() -> None:
    result = run(g.sod(numbered(files()), DS), store=trust(crl=g.crl(CSCA, [DS.cert.serial_number])))
    assert_failed(result, "revocation")
    assert "revoked" in result.detail


def test_crl_without_the_signer_passes_and_says_checked() -> None:
    result = run(g.sod(numbered(files()), DS), store=trust(crl=g.crl(CSCA, [12345])))
    assert result.valid
    assert next(s for s in result.steps if s.name == "revocation").detail == "not revoked"


def test_crl_signed_by_another_key_fails_revocation() -> None:
    impostor = g.csca(cn="CSCA VN test")  # same issuer name, wrong key
    result = run(g.sod(numbered(files()), DS), store=trust(crl=g.crl(impostor, [])))
    assert_failed(result, "revocation")


def test_no_crl_passes_but_says_not_checked() -> None:
    result = run(g.sod(numbered(files()), DS))
    assert result.valid
    assert "not checked" in next(s for s in result.steps if s.name == "revocation").detail


def test_unsupported_signature_algorithm_fails_the_signature_step() -> None:
    read = files()
    dsa_alg = {"algorithm": "sha256_dsa"}
    result = run(g.sod(numbered(read), DS, signature_algorithm=dsa_alg), read)
    assert_failed(result, "signature")
    assert "unsupported" in result.detail


def test_unsupported_digest_algorithm_fails_the_sod_step() -> None:
    read = files()
    result = run(g.sod(numbered(read), DS, lso_digest="md5"), read)
    assert_failed(result, "sod")
    assert "md5" in result.detail


def test_signer_certificate_missing_from_the_sod_fails_signature() -> None:
    assert_failed(run(g.sod(numbered(files()), DS, include_cert=False)), "signature")


def test_garbage_sod_fails_the_first_step() -> None:
    result = run(b"\x77\x03\x30\x01\x00")
    assert_failed(result, "sod")
    assert result.steps == (result.steps[-1],)


def test_csca_with_explicit_domain_parameters_chains() -> None:
    csca = g.csca("brainpool")
    explicit = g.with_explicit_key(csca.cert, csca.key)
    ds = g.signer(csca, "brainpool")
    store = TrustStore()
    store.add_certificate(explicit.public_bytes(serialization.Encoding.DER))
    read = files()
    result = run(g.sod(numbered(read), ds), read, store)
    assert result.valid, result


def test_signer_with_explicit_domain_parameters_verifies() -> None:
    ds = g.signer(CSCA, "ecdsa")
    explicit = g.with_explicit_key(ds.cert, CSCA.key)
    read = files()
    sod = g.sod(numbered(read), g.Party(ds.key, explicit))
    assert run(sod, read).valid
    bad = g.sod(numbered(read), g.Party(ds.key, explicit), corrupt_signature=True)
    assert_failed(run(bad, read), "signature")


def test_result_as_dict_names_the_failure() -> None:
    out = run(g.sod(numbered(files()), DS, corrupt_signature=True)).as_dict()
    assert out["valid"] is False and out["failed_step"] == "signature"
    assert [s["name"] for s in out["steps"]] == ["sod", "message-digest", "signature"]


def test_time_default_is_now() -> None:
    ds = g.signer(CSCA, start=dt.datetime.now(dt.UTC) - DAY, end=dt.datetime.now(dt.UTC) + DAY)
    store = trust()
    assert passive_authentication(g.sod(numbered(files()), ds), files(), store).valid


def test_end_entity_certificate_is_not_accepted_as_csca() -> None:
    # a trust anchor marked cA=false with the right name and key still must not issue document signers
    fake_anchor = g.Party(
        CSCA.key,
        g.certificate(CSCA.cert.subject, CSCA.key, CSCA.cert.subject, CSCA.key, serial=9, start=g.NOW - 10 * DAY,
                      end=g.NOW + 10 * DAY, ca=False),
    )  # fmt: skip
    result = run(g.sod(numbered(files()), DS), store=trust(fake_anchor))
    assert_failed(result, "chain")
    assert "not a CA" in result.detail


def test_ca_certificate_as_document_signer_fails_the_chain() -> None:
    key = g.new_key("ecdsa")
    cert = g.certificate(g.name("Sub CA"), key, CSCA.cert.subject, CSCA.key, serial=77, start=g.NOW - DAY,
                         end=g.NOW + DAY, ca=True)  # fmt: skip
    result = run(g.sod(numbered(files()), g.Party(key, cert)))
    assert_failed(result, "chain")
    assert "CA certificate" in result.detail


PSS_CSCA = g.csca("rsa-pss")
PSS_DS = g.signer(PSS_CSCA, "rsa-pss")
PSS_FILES = files()
PSS_SOD = g.sod(numbered(PSS_FILES), PSS_DS)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_damaged_rsa_pss_sod_never_crashes_and_never_passes(data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(PSS_SOD) - 1))
    damaged = PSS_SOD[:pos] + bytes([PSS_SOD[pos] ^ data.draw(st.integers(1, 255))]) + PSS_SOD[pos + 1 :]
    result = passive_authentication(damaged, PSS_FILES, trust(PSS_CSCA), at=g.NOW)
    if result.valid:
        # only bytes outside what is hashed or signed may change: the unsigned parts of the certificate set
        # are covered by the chain check, so a pass means the flip hit a field nobody signs (e.g. signingTime
        # is signed: it cannot be that)
        assert parse_sod(damaged).econtent == parse_sod(PSS_SOD).econtent
    else:
        assert result.failed_step in ("sod", "message-digest", "signature", "chain", "validity", "revocation")


def test_signer_certificate_with_an_invalid_version_fails_cleanly() -> None:
    sod = g.sod(numbered(files()), DS)
    version = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3) of the certificate inside the SOD
    assert sod.count(version) == 1
    result = run(sod.replace(version, bytes.fromhex("a003020103")))
    assert_failed(result, "signature")
    assert "malformed" in result.detail


def test_crl_signed_by_the_rolled_over_csca_key_is_used() -> None:
    new = g.csca(cn="CSCA VN test", serial=2)  # same name, new key
    store = trust(CSCA, new, crl=g.crl(new, [DS.cert.serial_number]))
    assert_failed(run(g.sod(numbered(files()), DS), store=store), "revocation")
    store = trust(CSCA, new, crl=g.crl(new, [4242]))
    assert run(g.sod(numbered(files()), DS), store=store).valid
