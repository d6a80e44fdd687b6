"""Chip authenticity and EAC: Active, Chip and Terminal Authentication, CV certificates, DG3.

Protocol tests run over the in-process card and through a real pcscd + vpcd (the
``serve`` fixture).  The primitives are cross-checked against ``cryptography`` and
``hashlib``; the simulated chip's side is written apart from the agent's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.bio import image as bioimage
from agent.card import aa, cvc
from agent.card.apdu import CommandApdu, ResponseApdu
from agent.card.dg3 import parse_dg3
from agent.card.errors import ParseError
from agent.card.read import read_document
from agent.card.secinfo import parse_security_infos
from agent.card.trust import SignatureError, TrustStore
from sim.card import VARIANT_EXPECT, VARIANTS, InProcessReader, build_card
from sim.card import eac as sim_eac
from sim.card.eac_chip import sign_9796_2
from sim.finger import synth
from sim.infra.pcscd import Pcscd
from tests.card_fixtures import Serve, keys_of, pcscd_card

ALL_FILES = ["com", "dg1", "dg13", "dg14", "dg15", "dg3"]


@pytest.fixture(scope="module")
def credentials_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sim_eac.eac_pki(0).write_credentials(tmp_path_factory.mktemp("eac") / "terminal")


@pytest.fixture(scope="module")
def credentials(credentials_dir: Path) -> cvc.TerminalCredentials:
    return cvc.load_credentials(credentials_dir)


# --- CV certificates ----------------------------------------------------------------------------------


def test_cv_certificates_parse_and_chain(credentials: cvc.TerminalCredentials) -> None:
    chain = credentials.chain
    assert [c.chr for c in chain] == ["VNCVCA00001", "VNDVBHYT00001", "VNISGATE00001"]
    assert [c.role for c in chain] == [cvc.Role.CVCA, cvc.Role.DV_DOMESTIC, cvc.Role.IS]
    assert chain[0].public_key.domain is not None and chain[2].public_key.domain is None
    assert chain[1].car == "VNCVCA00001" and chain[2].car == "VNDVBHYT00001"
    assert credentials.grants_dg3 and credentials.rights == 0x03
    assert chain[2].public_key.oid == cvc.ID_TA + ".2.3" and chain[2].chat_oid == cvc.ID_IS
    today = dt.date.today()
    assert chain[2].effective == today - dt.timedelta(days=1) and chain[2].expiration == today + dt.timedelta(days=30)
    assert credentials.to_send == chain[1:]


def test_cv_signature_is_plain_ecdsa_over_the_body(credentials: cvc.TerminalCredentials) -> None:
    """Cross-check with cryptography: the DV certificate's 5F37 is r||s of ECDSA-SHA256 over the 7F4E object."""
    cvca, dv = credentials.chain[0], credentials.chain[1]
    key = cvc.public_key_of(cvca.public_key)
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "brainpoolP256r1"
    der = encode_dss_signature(int.from_bytes(dv.signature[:32], "big"), int.from_bytes(dv.signature[32:], "big"))
    key.verify(der, dv.body, ec.ECDSA(hashes.SHA256()))  # raises if not
    assert dv.body[:2] == b"\x7f\x4e"


def test_ta_signature_roundtrip_with_cryptography(credentials: cvc.TerminalCredentials) -> None:
    data = b"ID_PICC" + os.urandom(8) + os.urandom(32)
    sig = cvc.sign_ta(credentials.key, credentials.terminal.public_key.oid, data)
    assert len(sig) == 64
    key = cvc.public_key_of(credentials.terminal.public_key, credentials.cvca.public_key)
    assert cvc.verify_ta_signature(key, credentials.terminal.public_key.oid, sig, data)
    assert not cvc.verify_ta_signature(key, credentials.terminal.public_key.oid, sig, data + b"x")


def test_chain_checks_name_the_failing_step(credentials: cvc.TerminalCredentials, tmp_path: Path) -> None:
    today = dt.date.today()
    chain = list(credentials.chain)
    with pytest.raises(cvc.CvcError) as exc:
        cvc.verify_chain([chain[0], chain[2]], today)  # DV missing
    assert exc.value.step == "chain"
    forged = sim_eac.eac_pki(0, forge_terminal=True).certificates["is"]
    with pytest.raises(cvc.CvcError) as exc:
        cvc.verify_chain([chain[0], chain[1], cvc.parse_cvc(forged)], today)
    assert exc.value.step == "signature"
    with pytest.raises(cvc.CvcError) as exc:
        cvc.verify_chain(chain[:2], today)
    assert exc.value.step == "role"
    expired = sim_eac.eac_pki(0, terminal_days=(-60, -1)).write_credentials(tmp_path / "expired")
    with pytest.raises(cvc.CvcError) as exc:
        cvc.load_credentials(expired)
    assert exc.value.step == "validity"


def test_credentials_directory_errors(tmp_path: Path, credentials_dir: Path) -> None:
    with pytest.raises(cvc.CvcError, match="no terminal credentials directory"):
        cvc.load_credentials(tmp_path / "absent")
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("cvca.cvcert", "is.cvcert", "terminal.key"):
        (partial / name).write_bytes((credentials_dir / name).read_bytes())
    with pytest.raises(cvc.CvcError, match="VNDVBHYT00001 of VNISGATE00001 is not in"):
        cvc.load_credentials(partial)
    (partial / "dv.cvcert").write_bytes((credentials_dir / "dv.cvcert").read_bytes())
    (partial / "terminal.key").write_bytes(b"not a key")
    with pytest.raises(cvc.CvcError, match=r"terminal\.key is not a usable private key"):
        cvc.load_credentials(partial)
    other = sim_eac.seeded_key(7, "is")
    from cryptography.hazmat.primitives import serialization

    (partial / "terminal.key").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    with pytest.raises(cvc.CvcError, match=r"no inspection-system certificate matches terminal\.key"):
        cvc.load_credentials(partial)
    (partial / "junk.cvcert").write_bytes(b"\x7f\x21\x03\x01\x02\x03")
    with pytest.raises(cvc.CvcError, match=r"junk.cvcert: .*CV certificate"):
        cvc.load_credentials(partial)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_malformed_cv_certificates_are_parse_errors(data: st.DataObject) -> None:
    raw = sim_eac.eac_pki(0).certificates["dv"]
    cut = data.draw(st.integers(0, len(raw) - 1))
    flip = data.draw(st.integers(0, len(raw) - 1))
    for candidate in (raw[:cut], raw[:flip] + bytes([raw[flip] ^ 0xFF]) + raw[flip + 1 :]):
        try:
            cert = cvc.parse_cvc(candidate)
        except ParseError:
            continue
        # a flip that still parses must not verify under the CVCA unless it only touched the signature's encoding
        cvca = cvc.parse_cvc(sim_eac.eac_pki(0).certificates["cvca"])
        ok = cvc.verify_ta_signature(cvc.public_key_of(cvca.public_key), cvca.public_key.oid, cert.signature, cert.body)
        assert not ok or candidate == raw


# --- Active Authentication primitives ----------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.mark.parametrize("hash_name", ["sha1", "sha224", "sha256", "sha384", "sha512"])
def test_iso9796_2_scheme_1_recovers_message_and_hash(rsa_key: rsa.RSAPrivateKey, hash_name: str) -> None:
    challenge = os.urandom(8)
    sig = sign_9796_2(rsa_key, hash_name, challenge, os.urandom)
    m1, recovered_hash, digest = aa.recover_9796_2(sig, rsa_key.public_key())
    assert recovered_hash == hash_name
    assert digest == hashlib.new(hash_name, m1 + challenge).digest()  # cross-check with hashlib
    assert len(m1) == 256 - 1 - hashlib.new(hash_name).digest_size - (1 if hash_name == "sha1" else 2)
    assert aa.verify_rsa(rsa_key.public_key(), sig, challenge) == hash_name
    with pytest.raises(SignatureError, match="does not match the challenge"):
        aa.verify_rsa(rsa_key.public_key(), sig, bytes(8))


def test_iso9796_2_rejects_malformed_blocks(rsa_key: rsa.RSAPrivateKey) -> None:
    pub = rsa_key.public_key()
    n, d = pub.public_numbers().n, rsa_key.private_numbers().d

    def raw_sign(block: bytes) -> bytes:
        return pow(int.from_bytes(block, "big"), d, n).to_bytes(256, "big")

    good = b"\x6a" + bytes(256 - 22) + bytes(20) + b"\xbc"
    aa.recover_9796_2(raw_sign(good), pub)
    with pytest.raises(SignatureError, match="header bits"):
        aa.recover_9796_2(raw_sign(b"\x0a" + good[1:]), pub)
    with pytest.raises(SignatureError, match="trailer"):
        aa.recover_9796_2(raw_sign(good[:-2] + b"\x99\xcc"), pub)
    # a last nibble that is not C, chosen so that the other representative n - J does not end in C either:
    # with a fixed 0xBD, one key in sixteen turns the block into one that recovers (a flaky test, seen once)
    last = next(b for b in range(0xB0, 0xC0)
                if b & 0x0F != 0x0C and (n - int.from_bytes(good[:-1] + bytes([b]), "big")) & 0x0F != 0x0C)  # fmt: skip
    with pytest.raises(SignatureError, match="trailer"):
        aa.recover_9796_2(raw_sign(good[:-1] + bytes([last])), pub)
    with pytest.raises(SignatureError, match="below the modulus"):
        aa.recover_9796_2(b"\xff" * 256, pub)
    with pytest.raises(SignatureError, match="below the modulus"):
        aa.recover_9796_2(raw_sign(good)[1:], pub)


def test_ecdsa_aa_cross_checked_with_cryptography() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    challenge = os.urandom(8)
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(key.sign(challenge, ec.ECDSA(hashes.SHA256())))
    plain = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert aa.verify_ecdsa(key.public_key(), plain, challenge, "0.4.0.127.0.7.1.1.4.1.3") == "sha256"
    with pytest.raises(SignatureError):
        aa.verify_ecdsa(key.public_key(), plain, challenge[::-1], "0.4.0.127.0.7.1.1.4.1.3")
    with pytest.raises(SignatureError) as exc:
        aa.verify_ecdsa(key.public_key(), plain, challenge, "0.4.0.127.0.7.1.1.4.1.6")
    assert exc.value.unsupported


def test_aa_sends_a_fresh_challenge_each_time() -> None:
    card = build_card("cccd", seed=3)
    sent: list[bytes] = []

    def send(command: CommandApdu) -> ResponseApdu:
        sent.append(command.data)
        return ResponseApdu(b"", 0x6985)

    infos = parse_security_infos(card.files.files["dg14"])
    for _ in range(2):
        result = aa.active_authentication(send, card.files.files["dg15"], infos)
        assert result.valid is False and result.failed_step == "command"
    assert len(sent) == 2 and len(sent[0]) == 8 and sent[0] != sent[1]


# --- the protocols against the simulated chip -------------------------------------------------------


def test_genuine_cccd_full_eac_read(serve: Serve, credentials: cvc.TerminalCredentials, tmp_path: Path) -> None:
    card = build_card("cccd", seed=41)
    card.write_trust(str(tmp_path / "trust"))
    trust = TrustStore.from_directory(tmp_path / "trust")
    with serve(card) as transport:
        r = read_document(transport, keys_of(card), ALL_FILES, trust=trust, terminal=credentials)
    assert r.access == "PACE"
    assert r.passive_auth is not None and r.passive_auth.valid, r.passive_auth
    assert "hash:dg3" in [s.name for s in r.passive_auth.steps]  # the fingerprints are covered by the SOD too
    assert r.active_auth is not None and r.active_auth.valid and r.active_auth.algorithm == "ECDSA-SHA256"
    assert r.chip_auth is not None and r.chip_auth.valid and r.chip_auth.algorithm == "CA-ECDH-AES-128"
    assert r.terminal_auth is not None and r.terminal_auth.valid
    assert r.dg3 is not None and len(r.dg3.fingers) == 1
    finger = r.dg3.fingers[0]
    assert (finger.position, finger.width, finger.height, finger.compression) == (2, 256, 288, 2)  # WSQ
    # the card's reference is the simulated person's finger (its enrolment impression), WSQ-compressed
    ref = synth.reference_for(sim_eac.finger_identity(card.person.id_number))
    decoded = bioimage.decode(finger.image, 256, 288, finger.compression, finger.pixel_depth, finger.resolution)
    assert sum(abs(a - b) for a, b in zip(decoded.pixels, ref.pixels, strict=True)) / len(ref.pixels) < 12
    out = r.as_dict()
    assert out["terminal_auth"]["valid"] is True and out["dg3"]["fingers"][0]["position"] == "right index"
    # the chip moved its clock to the newest accurate certificate it accepted (the DV's effective date)
    assert card.chip.current_date == credentials.chain[1].effective


def test_bac_chip_runs_ta_with_the_document_number(credentials: cvc.TerminalCredentials) -> None:
    card = build_card("passport", seed=42, pace=False)
    r = read_document(InProcessReader(card), keys_of(card), ALL_FILES, terminal=credentials)
    assert r.access == "BAC"
    assert r.chip_auth is not None and r.chip_auth.valid
    assert r.terminal_auth is not None and r.terminal_auth.valid and r.dg3 is not None


def test_rsa_active_authentication_on_the_chip() -> None:
    for hash_name in ("sha1", "sha256"):
        card = build_card("cccd", seed=43, aa_algorithm="rsa", aa_hash=hash_name)
        r = read_document(InProcessReader(card), keys_of(card), ["dg14", "dg15"])
        assert r.active_auth is not None and r.active_auth.valid, r.active_auth
        assert r.active_auth.algorithm == f"RSA-9796-2-{hash_name.upper()}"


def test_dg3_without_credentials_or_rights(tmp_path: Path) -> None:
    card = build_card("cccd", seed=44)
    r = read_document(InProcessReader(card), keys_of(card), ALL_FILES)
    assert "dg3" in r.denied and "dg3" not in r.files
    assert r.terminal_auth is not None and r.terminal_auth.valid is None
    assert r.terminal_auth.failed_step == "credentials"
    assert r.chip_auth is not None and r.chip_auth.valid  # the chip is still proven genuine
    no_right = cvc.load_credentials(sim_eac.eac_pki(0, rights=sim_eac.READ_DG4).write_credentials(tmp_path / "n"))
    assert not no_right.grants_dg3
    card = build_card("cccd", seed=44)
    r = read_document(InProcessReader(card), keys_of(card), ALL_FILES, terminal=no_right)
    assert r.terminal_auth is not None and r.terminal_auth.valid  # TA itself succeeds...
    assert "dg3" in r.denied and r.dg3 is None  # ...but the chip keeps DG3 closed (6982)


def test_the_chip_refuses_bad_terminals(tmp_path: Path, credentials: cvc.TerminalCredentials) -> None:
    # a terminal certificate not signed by the DV: the chip refuses it at PSO:Verify Certificate
    forged = sim_eac.eac_pki(0, forge_terminal=True)
    chain = [*credentials.chain[:2], cvc.parse_cvc(forged.certificates["is"])]
    card = build_card("cccd", seed=45)
    bad = cvc.TerminalCredentials(tuple(chain), forged.terminal_key)
    r = read_document(InProcessReader(card), keys_of(card), ALL_FILES, terminal=bad)
    assert r.terminal_auth is not None and r.terminal_auth.valid is False
    assert r.terminal_auth.failed_step == "certificate VNISGATE00001" and "6300" in r.terminal_auth.detail
    assert "dg3" in r.denied
    # the right certificates but another key signs the challenge
    wrong_key = cvc.TerminalCredentials(credentials.chain, ec.generate_private_key(ec.BrainpoolP256R1()))
    r = read_document(InProcessReader(build_card("cccd", seed=45)), keys_of(card), ALL_FILES, terminal=wrong_key)
    assert r.terminal_auth is not None and r.terminal_auth.valid is False and r.terminal_auth.failed_step == "signature"
    # an expired terminal certificate (sent anyway): the chip's own date rejects it
    expired = sim_eac.eac_pki(0, terminal_days=(-60, -1))
    chain = [*credentials.chain[:2], cvc.parse_cvc(expired.certificates["is"])]
    stale = cvc.TerminalCredentials(tuple(chain), expired.terminal_key)
    card = build_card("cccd", seed=45)
    card.chip.current_date = dt.date.today()
    r = read_document(InProcessReader(card), keys_of(card), ALL_FILES, terminal=stale)
    assert r.terminal_auth is not None and r.terminal_auth.valid is False and "6985" in r.terminal_auth.detail


# --- the corpus: every variant detected for the right reason ----------------------------------------


@pytest.mark.parametrize("variant", [None, *VARIANTS])
def test_tampered_and_cloned_corpus(variant: str | None, credentials: cvc.TerminalCredentials, tmp_path: Path) -> None:
    card = build_card("cccd", seed=50, variant=variant)
    card.write_trust(str(tmp_path / "trust"))
    trust = TrustStore.from_directory(tmp_path / "trust")
    r = read_document(InProcessReader(card), keys_of(card), ALL_FILES, trust=trust, terminal=credentials)
    assert r.passive_auth is not None and r.active_auth is not None and r.chip_auth is not None
    failed = {name for name in ("passive_auth", "active_auth", "chip_auth") if getattr(r, name).valid is False}
    expected = set(VARIANT_EXPECT[variant].split()) if variant else set()
    assert failed == expected, (variant, r.as_dict())
    if variant == "aa-unsupported":
        assert r.active_auth.valid is False and r.active_auth.failed_step == "algorithm"
        assert [hit.rule for hit in r.rules] == ["AA_REQUIRED"]
        assert r.failures() == ["active_auth: failed", "AA_REQUIRED"]
    elif expected:
        assert r.failures()
    else:
        assert r.rules == [] and r.failures() == []
    if variant == "clone":
        assert r.chip_auth.failed_step == "keys" and r.active_auth.failed_step == "signature"
        assert r.passive_auth.valid  # the copied files are genuine: only AA and CA tell
    if variant == "wrong-dg14":
        assert r.passive_auth.failed_step == "hash:dg14" and r.chip_auth.failed_step == "dg14"
    if variant == "stale-dg14":
        assert r.passive_auth.valid and r.chip_auth.failed_step == "keys"
    if not expected:
        assert r.terminal_auth is not None and r.terminal_auth.valid and r.dg3 is not None


def test_dg3_parser_rejects_malformed_records() -> None:
    good = sim_eac.dg3("012345678901")
    assert len(parse_dg3(good).fingers) == 1
    record = sim_eac.finger_record([(2, bytes(100))])
    for bad in (record[:-1], b"FIX" + record[3:], record[:4] + b"020\x00" + record[8:],
                record[:18] + b"\x02" + record[19:]):  # fmt: skip
        with pytest.raises(ParseError):
            from agent.card.dg3 import parse_finger_record

            parse_finger_record(bad)
    with pytest.raises(ParseError, match="announces 2"):
        parse_dg3(good.replace(b"\x02\x01\x01", b"\x02\x01\x02", 1))


# --- through pcscd and the CLI ----------------------------------------------------------------------


@pytest.mark.pcscd
def test_gate_agent_read_with_terminal_credentials(pcscd: Pcscd, credentials_dir: Path, tmp_path: Path) -> None:
    card = build_card("cccd", seed=46)
    card.write_trust(str(tmp_path / "trust"))
    p = card.person
    args = [sys.executable, "-m", "agent", "read", "--reader", pcscd.reader_names[0][:8], "--id-number", p.id_number,
            "--birth", p.birth.strftime("%d%m%Y"), "--issued", p.issued.strftime("%d%m%Y"),
            "--trust", str(tmp_path / "trust"), "--files", ",".join(ALL_FILES)]  # fmt: skip
    env = {**os.environ, **pcscd.env}
    with pcscd_card(pcscd, card):
        res = subprocess.run([*args, "--terminal", str(credentials_dir), "--json"],
                             capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
        text = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for key in ("passive_auth", "active_auth", "chip_auth", "terminal_auth"):
        assert out[key]["valid"] is True, (key, out[key])
    assert out["dg3"]["fingers"][0]["format"] == "WSQ" and "dg3" not in out["denied"]
    assert 3_000 < out["files"]["dg3"] < 20_000  # a WSQ image: a fraction of the 36 KB raw 4-bit image
    assert text.returncode == 0, text.stderr
    assert "chip auth    VALID" in text.stdout and "terminal auth not run at credentials" in text.stdout
    assert "denied      dg3" in text.stdout


@pytest.mark.pcscd
def test_gate_agent_read_exits_1_for_a_clone(pcscd: Pcscd, tmp_path: Path) -> None:
    card = build_card("cccd", seed=47, variant="clone")
    k = card.keys
    with pcscd_card(pcscd, card):
        res = subprocess.run(
            [sys.executable, "-m", "agent", "read", "--reader", pcscd.reader_names[0][:8], "--can", str(k["can"]),
             "--json"], capture_output=True, text=True, timeout=60, env={**os.environ, **pcscd.env},
        )  # fmt: skip
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    assert out["chip_auth"]["valid"] is False and out["active_auth"]["valid"] is False


def test_gate_agent_read_rejects_unusable_credentials(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "agent", "read", "--can", "123456", "--terminal", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 2 and "--terminal" in res.stderr and "no terminal credentials directory" in res.stderr


def test_dataclass_results_serialise() -> None:
    card = build_card("cccd", seed=48)
    r = read_document(InProcessReader(card), keys_of(card), ["dg14", "dg15"])
    json.dumps(r.as_dict())
    assert dataclasses.asdict(r.chip_auth)["valid"] is True  # type: ignore[arg-type]


@pytest.mark.parametrize("oid", [cvc.ID_TA + ".1.2", cvc.ID_TA + ".1.4", cvc.ID_TA + ".2.5"])
def test_ta_signatures_of_each_family(oid: str, rsa_key: rsa.RSAPrivateKey) -> None:
    key = ec.generate_private_key(ec.SECP384R1()) if cvc.TA_ALGORITHMS[oid][0] == "ecdsa" else rsa_key
    data = os.urandom(48)
    sig = cvc.sign_ta(key, oid, data)
    assert cvc.verify_ta_signature(key.public_key(), oid, sig, data)
    assert not cvc.verify_ta_signature(key.public_key(), oid, sig, data[::-1])
    with pytest.raises(cvc.CvcError):
        cvc.sign_ta(key, cvc.ID_TA + ".9.9", data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_dg3_or_dg15_are_parse_errors_or_results(data: bytes) -> None:
    for candidate in (data, b"\x63" + bytes([len(data) & 0x7F]) + data):
        try:
            parse_dg3(candidate)
        except ParseError:
            pass
        result = aa.active_authentication(lambda c: ResponseApdu(b"", 0x9000), candidate, None)
        assert result.valid is None and result.failed_step in ("dg15", "algorithm")


@pytest.mark.parametrize("cipher", ["3DES", "3DES-implicit", "AES-192", "AES-256"])
def test_chip_authentication_ciphers(serve: Serve, cipher: str, credentials: cvc.TerminalCredentials) -> None:
    """3DES goes by MSE:Set KAT, AES by MSE:Set AT + GENERAL AUTHENTICATE; the session goes on under the new keys."""
    card = build_card("cccd", seed=49, ca_cipher=cipher)
    with serve(card) as transport:
        r = read_document(transport, keys_of(card), ALL_FILES, terminal=credentials)
    assert r.chip_auth is not None and r.chip_auth.valid, r.chip_auth
    assert r.chip_auth.algorithm == f"CA-ECDH-{cipher.removesuffix('-implicit')}"
    assert r.terminal_auth is not None and r.terminal_auth.valid and r.dg3 is not None  # read under the CA keys
    assert card.chip.session is not None and card.chip.session.via == "CA"


def test_a_chip_without_terminal_authentication_keeps_dg3_without_blame(credentials: cvc.TerminalCredentials) -> None:
    from agent.card import tlv as agent_tlv
    from sim.card.files import TA, oid, tlv

    card = build_card("cccd", seed=51)
    entries = agent_tlv.parse_single(card.files.files["dg14"], 0x6E).child(0x31).children()
    kept = [e.to_bytes() for e in entries if not e.value.startswith(oid(TA))]
    assert len(kept) == len(entries) - 1
    card.files.files["dg14"] = tlv(0x6E, tlv(0x31, b"".join(kept)))
    r = read_document(InProcessReader(card), keys_of(card), ALL_FILES, terminal=credentials)
    assert r.chip_auth is not None and r.chip_auth.valid
    assert r.terminal_auth is not None and r.terminal_auth.valid is None and r.terminal_auth.failed_step == "chip"
    assert "dg3" in r.denied


@pytest.mark.parametrize("cipher", ["3DES", "AES-128", "AES-256"])
def test_chip_authentication_with_finite_field_dh(
    serve: Serve, cipher: str, credentials: cvc.TerminalCredentials
) -> None:
    card = build_card("cccd", seed=52, ca_kind="DH", ca_cipher=cipher)
    with serve(card) as transport:
        r = read_document(transport, keys_of(card), ALL_FILES, terminal=credentials)
    assert r.chip_auth is not None and r.chip_auth.valid and r.chip_auth.algorithm == f"CA-DH-{cipher}", r.chip_auth
    assert r.terminal_auth is not None and r.terminal_auth.valid and r.dg3 is not None  # Comp() of a DH key: SHA-1


def test_a_dh_clone_fails_and_bad_dh_keys_are_refused() -> None:
    from agent.card.ca import parse_dh_key
    from sim.card.dh import DhKey, dh_key

    card = build_card("cccd", seed=53, ca_kind="DH", variant="clone")
    r = read_document(InProcessReader(card), keys_of(card), ["dg14", "dg15"])
    assert r.chip_auth is not None and r.chip_auth.valid is False and r.chip_auth.failed_step == "keys"
    good = dh_key()
    parsed = parse_dh_key(good.spki())
    assert (parsed.p, parsed.g, parsed.q, parsed.y) == (good.p, good.g, good.q, good.y)
    outside = DhKey(good.p, good.g, good.q, 0)  # y = 1: a degenerate public value
    with pytest.raises(ParseError, match="out of range"):
        parse_dh_key(outside.spki())

    class NotInSubgroup(DhKey):
        @property
        def y(self) -> int:
            return self.p - 2  # order 2 * something, not q

    with pytest.raises(ParseError, match="subgroup"):
        parse_dh_key(NotInSubgroup(good.p, good.g, good.q, 5).spki())
    with pytest.raises(ParseError):
        parse_dh_key(b"\x30\x03\x02\x01\x01")
    # without extended length the DH key does not fit a command: not judged, never a false clone alarm
    card = build_card("cccd", seed=53, ca_kind="DH", extended_length=False)
    r = read_document(InProcessReader(card), keys_of(card), ["dg14", "dg15"], extended_length=False)
    assert r.chip_auth is not None and r.chip_auth.valid is None and r.chip_auth.failed_step == "extended"
    assert r.active_auth is not None and r.active_auth.valid
