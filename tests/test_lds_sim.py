"""Cross-check with the simulated card (built separately): every file it serves parses, and Passive
Authentication with the trust anchors it writes passes for a genuine card and names the failing step for
each wrong variant.  The standard decides when the two sides disagree."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from agent.card import lds
from agent.card.pa import passive_authentication
from agent.card.read import read_document
from agent.card.secinfo import parse_security_infos
from agent.card.sod import parse_sod
from agent.card.trust import TrustStore
from sim.card import InProcessReader, build_card
from tests.card_fixtures import keys_of

ALL = ("com", "dg1", "dg2", "dg13", "dg14", "dg15", "sod")


@pytest.mark.parametrize("seed", [1, 7, 23, 61])
def test_every_cccd_file_parses_and_matches_the_person(seed: int) -> None:
    card = build_card("cccd", seed=seed, dg2_size=3000)
    files, person = card.files.files, card.person
    com = lds.parse_com(files["com"])
    assert com.files == ("dg1", "dg2", "dg3", "dg13", "dg14", "dg15")
    mrz = lds.parse_dg1(files["dg1"]).mrz
    assert mrz.format == "TD1" and mrz.document_number == person.id_number[-9:]
    assert mrz.optional_data[:12] == person.id_number
    (face,) = lds.parse_dg2(files["dg2"]).faces
    assert face.format == "jpeg" and face.data.startswith(b"\xff\xd8") and (face.width, face.height) == (480, 640)
    dg13 = lds.parse_dg13(files["dg13"])
    assert (dg13.id_number, dg13.full_name, dg13.birth, dg13.sex) == (
        person.id_number, person.full_name, person.birth, person.sex
    )  # fmt: skip
    assert (dg13.ethnicity, dg13.religion, dg13.hometown, dg13.residence, dg13.marks) == (
        person.ethnicity, person.religion, person.hometown, person.residence, person.marks
    )  # fmt: skip
    assert (dg13.issued, dg13.father, dg13.mother) == (person.issued, person.father, person.mother)
    assert dg13.expiry == person.expiry and dg13.no_expiry == (person.expiry is None)
    assert dg13.spouse == person.spouse and dg13.old_id == (person.old_id or None)
    access = parse_security_infos(files["cardaccess"], "EF.CardAccess")
    assert access.preferred_pace() is not None and access.preferred_pace().parameter_id == 13
    assert access.chip_auth and access.terminal_auth == (1,)
    dg14 = parse_security_infos(files["dg14"], "DG14")
    assert dg14.chip_auth_keys and dg14.active_auth
    assert isinstance(lds.dg15_public_key(files["dg15"]), ec.EllipticCurvePublicKey)
    sod = parse_sod(files["sod"])
    assert set(sod.dg_hashes) == {1, 2, 3, 13, 14, 15}


def test_every_passport_file_parses() -> None:
    card = build_card("passport", seed=5, dg2_size=3000)
    files = card.files.files
    assert lds.parse_com(files["com"]).files == ("dg1", "dg2", "dg3", "dg14", "dg15")
    mrz = lds.parse_dg1(files["dg1"]).mrz
    assert mrz.format == "TD3" and mrz.document_number == str(card.keys["document_number"])
    assert lds.parse_dg2(files["dg2"]).faces
    parse_security_infos(files["cardaccess"], "EF.CardAccess")
    parse_security_infos(files["dg14"], "DG14")
    lds.dg15_public_key(files["dg15"])
    assert set(parse_sod(files["sod"]).dg_hashes) == {1, 2, 3, 14, 15}


@pytest.fixture(scope="module")
def sim_trust(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simtrust")
    build_card("cccd", seed=1).pki.write_trust(out)
    return out


def _dgs(files: dict[str, bytes]) -> dict[str, bytes]:
    return {n: d for n, d in files.items() if n.startswith("dg") and n != "dg3"}  # DG3 cannot be read without TA


@pytest.mark.parametrize("profile", ["cccd", "passport"])
@pytest.mark.parametrize("ds_algorithm", ["ecdsa", "rsa-pss"])
def test_genuine_simulated_card_passes(sim_trust: Path, profile: str, ds_algorithm: str) -> None:
    card = build_card(profile, seed=3, dg2_size=2000, ds_algorithm=ds_algorithm)
    out = sim_trust.parent / f"trust-{ds_algorithm}"
    card.pki.write_trust(out)
    store = TrustStore.from_directory(out)
    result = passive_authentication(card.files.files["sod"], _dgs(card.files.files), store)
    assert result.valid, result
    assert result.steps[5].name == "revocation" and result.steps[5].detail == "not revoked"


@pytest.mark.parametrize("only", ["csca.pem", "masterlist.ml"])
def test_each_anchor_file_alone_is_enough(sim_trust: Path, tmp_path: Path, only: str) -> None:
    (tmp_path / only).write_bytes((sim_trust / only).read_bytes())
    card = build_card("cccd", seed=4, dg2_size=2000)
    assert passive_authentication(
        card.files.files["sod"], _dgs(card.files.files), TrustStore.from_directory(tmp_path)
    ).valid


@pytest.mark.parametrize(
    ("profile", "variant", "step"),
    [
        ("cccd", "altered-dg", "hash:dg13"),
        ("passport", "altered-dg", "hash:dg1"),
        ("cccd", "bad-signature", "signature"),
        ("cccd", "unknown-csca", "chain"),
        ("cccd", "expired-signer", "validity"),
        ("cccd", "revoked-signer", "revocation"),
        ("passport", "revoked-signer", "revocation"),
    ],
)
def test_wrong_variants_fail_at_the_right_step(sim_trust: Path, profile: str, variant: str, step: str) -> None:
    card = build_card(profile, seed=9, variant=variant, dg2_size=2000)
    result = passive_authentication(
        card.files.files["sod"], _dgs(card.files.files), TrustStore.from_directory(sim_trust)
    )
    assert (result.valid, result.failed_step) == (False, step), result


def test_read_flow_in_process_matches_the_card_files(sim_trust: Path) -> None:
    card = build_card("cccd", seed=11, dg2_size=4000)
    result = read_document(InProcessReader(card), keys_of(card), list(ALL), trust=TrustStore.from_directory(sim_trust))
    for name in ALL:
        assert result.files[name] == card.files.files[name], name
    assert result.passive_auth is not None and result.passive_auth.valid, result.passive_auth
    assert result.dg13 is not None and result.dg13.id_number == card.person.id_number
