"""The simulated chip on its own: ICAO 9303-11 worked examples from the card's side, status words, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sim.card import InProcessReader, build_card, seeded
from sim.card.chip import Chip
from sim.card.eac import eac_pki, load_eac_keys
from sim.card.faults import FaultSpecError, parse_faults
from sim.card.files import security_infos
from sim.card.pki import PkiDirectoryError, issuer_pki
from sim.card.pkidir import open_pki_directory
from sim.infra.pcscd import Pcscd

H = bytes.fromhex


def fixed(*values: bytes):  # type: ignore[no-untyped-def]
    it = iter(values)
    return lambda n: next(it)


def test_bac_appendix_d_from_the_card_side() -> None:
    """The chip of 9303-11 Appendix D: same RND.IC and K.IC give the example's answer and session."""
    chip = Chip({"cardaccess": b""}, "L898902C<369080619406236", None,
                random=fixed(H("4608F91988702212"), H("0B4F80323EB3191CB04970CB4052790B")))  # fmt: skip
    chip.app_selected = True
    assert chip.process(H("0084000008")) == H("4608F91988702212") + H("9000")
    answer = chip.process(
        H("0082000028")
        + H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A7")
        + H("28")
    )
    assert answer.hex().upper() == (
        "46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449" + "9000"
    )
    assert chip.session is not None
    assert chip.session.k_enc.hex().upper() == "979EC13B1CBFE9DCD01AB0FED307EAE5"
    assert chip.session.ssc == 0x887022120C06C226
    chip.files["com"] = H("60145F0104303130365F36063034303030305C026175")
    # the protected SELECT of the example, answered as the example answers it
    assert chip.process(H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800")) == H(
        "990290008E08FA855A5D4C50A8ED9000"
    )
    assert chip.process(H("0CB000000D9701048E08ED6705417E96BA5500")) == H(
        "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000"
    )


def test_pace_g1_from_the_card_side() -> None:
    """9303-11 G.1: the chip's nonce and ephemeral keys give the example's messages and token."""
    s = H("3F00C4D39D153F2B2A214A078D899B22")
    sk_map = 0x498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560
    sk_eph = 0x107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A
    # the card maps raw random bytes r to a scalar as r mod (n - 1) + 1
    chip = Chip({"cardaccess": security_infos("AES-128", "brainpoolP256r1", None)}, "T22000129364081251010318", None,
                random=fixed(s, (sk_map - 1).to_bytes(32, "big"), (sk_eph - 1).to_bytes(32, "big")))  # fmt: skip
    assert chip.process(H("0022C1A40F800A04007F00070202040202830101")) == H("9000")
    assert chip.process(H("10860000027C0000")) == H("7C12801095A3A016522EE98D01E76CB6B98B42C39000")
    pk_map_ifd = H(
        "047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E"
        "544552DCB6725218799115B55C9BAA6D9F6BC3A9618E70C25AF71777A9C4922D"
    )
    answer = chip.process(H("10860000457C438141") + pk_map_ifd + H("00"))
    assert answer[4:].hex().upper().startswith("04824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F57")
    pk_eph_ifd = H(
        "042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C"
        "3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB36462"
    )
    answer = chip.process(H("10860000457C438341") + pk_eph_ifd + H("00"))
    assert answer[4:-2].hex().upper().startswith("049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB")
    assert chip.process(H("008600000C7C0A8508C2B0BD78D94BA86600")) == H("7C0A86083ABB9674BCE93C089000")
    assert chip.session is not None and chip.session.k_mac.hex().upper() == "FE251C7858B356B24514B3BD5F4297D1"


def test_status_words_of_a_real_chip() -> None:
    card = build_card("cccd", seed=30)
    card.power_on()
    assert card.process(H("00A4040C07A0000002471001")) == H("9000")
    assert card.process(H("00B0810004")) == H("6982")  # DG1 without secure messaging
    assert card.process(H("00A4020C020111")) == H("6A82")  # DG17 does not exist
    assert card.process(H("00FF000000")) == H("6D00")
    assert card.process(H("80A4040C07A0000002471001")) == H("6E00")
    assert card.process(H("00A4")) == H("6700")
    assert card.process(H("0082000028") + bytes(40) + H("28")) == H("6985")  # no challenge asked


def test_fault_specs() -> None:
    f = parse_faults("remove@3,rf-error@5,pace-refused")
    assert f.action(3) == "remove" and f.action(5) == "rf-error" and f.pace_refused == "mse"
    with pytest.raises(FaultSpecError, match="unknown fault"):
        parse_faults("explode@3")
    with pytest.raises(FaultSpecError, match="between 0 and 1"):
        parse_faults("random-rf=2")
    with pytest.raises(FaultSpecError, match="'once' must follow"):
        parse_faults("once,remove@3")
    with pytest.raises(FaultSpecError, match="count from 1"):
        parse_faults("remove@0")
    a, b = parse_faults("random-rf=0.3,seed=4"), parse_faults("random-rf=0.3,seed=4")
    assert [a.action(i) for i in range(50)] == [b.action(i) for i in range(50)]


def _session_until_pulled(card, apdus: int) -> int | None:  # type: ignore[no-untyped-def]
    """Power the card on, send ``apdus`` SELECTs; the APDU number at which it was pulled, or None."""
    card.reinsert()
    for n in range(1, apdus + 1):
        if card.process(H("00A4040C07A0000002471001")) is None:
            return n
    return None


def test_remove_fault_is_per_insertion_by_default() -> None:
    """remove@3 pulls the card at the 3rd APDU of every session: a retry after reinsertion is pulled again."""
    card = build_card("cccd", seed=32, faults="remove@3")
    assert [_session_until_pulled(card, 5) for _ in range(3)] == [3, 3, 3]


def test_remove_fault_once_pulls_only_the_first_session() -> None:
    card = build_card("cccd", seed=32, faults="remove@3,once,rf-error@2")
    assert [_session_until_pulled(card, 5) for _ in range(3)] == [3, None, None]
    card.reinsert()
    assert card.process(H("00A4040C07A0000002471001")) == H("9000")
    assert card.process(H("00A4040C07A0000002471001")) == H("6F")  # rf-error@2 (no "once") every session


def test_a_read_retried_after_a_once_pull_completes() -> None:
    from agent.card.read import read_document
    from agent.errors import CardRemovedError
    from tests.card_fixtures import keys_of

    card = build_card("cccd", seed=33, faults="remove@6,once", dg2_size=1000)
    with pytest.raises(CardRemovedError):
        read_document(InProcessReader(card), keys_of(card), ["dg1"])
    card.reinsert()
    assert read_document(InProcessReader(card), keys_of(card), ["dg1"]).files["dg1"] == card.files.files["dg1"]


# --- reproducible issuer PKI ---------------------------------------------------------------------------


def test_hmac_drbg_nist_vector() -> None:
    """SP 800-90A HMAC_DRBG SHA-256, CAVP case 0 (no reseed, no personalization): the second 1024-bit output."""
    d = seeded.HmacDrbg(H("ca851911349384bffe89de1cbdc46e6831e44d34a4fb935ee285dd14b71a7488"),
                        H("659ba96c601dc69fc902940805ec0ca8"))  # fmt: skip
    d.generate(128)
    assert d.generate(128) == H(
        "e528e9abf2dece54d47c7e75e5fe302149f817ea9fb4bee6f4199697d04d5b89d54fbb978a15b5c443c9ec21036d2460"
        "b6f73ebad0dc2aba6e624abf07745bc107694bb7547bb0995f70de25d6b29e2d3011bb19d27676c07162c8b5ccde06"
        "68961df86803482cb37ed6d5c0bb8d50cf1f50d476aa0458bdaba806f48be9dcb8"
    )


def test_same_seed_same_issuer_pki_byte_for_byte(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    der = serialization.Encoding.DER
    a, b, other = issuer_pki(5), issuer_pki(5), issuer_pki(6)
    assert a.csca.public_bytes(der) == b.csca.public_bytes(der)
    assert a.signer.cert.public_bytes(der) == b.signer.cert.public_bytes(der)
    assert a.crl.public_bytes(der) == b.crl.public_bytes(der)
    assert a.master_list() == b.master_list()
    assert a.csca.public_bytes(der) != other.csca.public_bytes(der)
    a.write_trust(tmp_path / "a")
    b.write_trust(tmp_path / "b")
    for name in ("csca.pem", "csca.crl", "masterlist.ml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # validity from the fixed epoch, not the clock: valid now and for years to come
    assert a.csca.not_valid_before_utc.year == 2021 and a.csca.not_valid_after_utc.year >= 2036
    assert a.expired_signer.cert.not_valid_after_utc.year == 2022
    # the EAC PKI too: the CVCA certificate and the keys
    assert eac_pki(5).certificates["cvca"] == eac_pki(5).certificates["cvca"] != eac_pki(6).certificates["cvca"]


def test_rsa_keys_from_a_seed_are_reproducible_and_sound() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    k1, k2 = seeded.rsa_key(3, "ds:test", bits=1024), seeded.rsa_key(3, "ds:test", bits=1024)
    assert k1.private_numbers() == k2.private_numbers() and k1.key_size == 1024
    assert k1.private_numbers() != seeded.rsa_key(4, "ds:test", bits=1024).private_numbers()
    signature = k1.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    k2.public_key().verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_a_card_from_a_pki_directory_verifies_against_trust_written_earlier(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.card.pa import passive_authentication
    from agent.card.trust import TrustStore

    first = open_pki_directory(tmp_path / "pki", seed=8)
    assert first.created and (first.trust / "csca.pem").exists()
    anchors = {p.name: p.read_bytes() for p in first.trust.iterdir()}
    gate_trust = TrustStore.from_directory(first.trust)  # what a gate installed "yesterday"
    # "today": the directory is reused (another seed asked for changes nothing), the anchors are untouched
    again = open_pki_directory(tmp_path / "pki", seed=99)
    assert not again.created and again.issuer.seed == 8
    assert {p.name: p.read_bytes() for p in again.trust.iterdir()} == anchors
    card = build_card("cccd", seed=34, pki=again.issuer, dg2_size=1000)
    dgs = {n: d for n, d in card.files.files.items() if n.startswith("dg") and n != "dg3"}
    assert passive_authentication(card.files.files["sod"], dgs, gate_trust).valid
    # a card of another PKI does not
    stranger = build_card("cccd", seed=34, pki_seed=9, dg2_size=1000)
    other = {n: d for n, d in stranger.files.files.items() if n.startswith("dg") and n != "dg3"}
    assert passive_authentication(stranger.files.files["sod"], other, gate_trust).failed_step == "chain"
    # the EAC keys kept there are those of the seed: the chip of such a card trusts that CVCA
    assert again.eac().trust_point[1].public_numbers() == eac_pki(8).trust_point[1].public_numbers()
    assert load_eac_keys(tmp_path / "pki")["is"].private_numbers() == eac_pki(8).terminal_key.private_numbers()


def test_a_broken_pki_directory_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "partial" / "issuer").mkdir(parents=True)
    with pytest.raises(PkiDirectoryError, match="partial PKI directory"):
        open_pki_directory(tmp_path / "partial")
    made = open_pki_directory(tmp_path / "pki", seed=1)
    (made.path / "issuer" / "csca.key").write_bytes(b"not a key")
    with pytest.raises(PkiDirectoryError, match="not a simulated issuer PKI"):
        open_pki_directory(tmp_path / "pki")


def test_population_cards_are_reproducible() -> None:
    assert build_card("cccd", 5).person == build_card("cccd", 5).person
    assert build_card("cccd", 5).files.files["dg13"] == build_card("cccd", 5).files.files["dg13"]


def _sim_card(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sim", "card", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(10)


@pytest.mark.pcscd
def test_sim_card_command_plugs_into_pcscd(pcscd: Pcscd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.card.read import read_document
    from agent.card.trust import TrustStore
    from agent.transport.pcsc import PcscTransport, wait_for_card
    from tests.card_fixtures import keys_of

    port = str(pcscd.vpcd_ports[0])
    proc = _sim_card("--seed", "31", "--vpcd-port", port, "--trust-out", str(tmp_path / "trust"),
                     "--pki", str(tmp_path / "pki"), "--pki-seed", "4")  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and ready["keys"]["can"] == ready["person"]["id_number"][-6:]
        assert ready["pki"]["created"] is True and ready["pki"]["seed"] == 4
        assert {p.name for p in (tmp_path / "trust").iterdir()} == {"csca.pem", "csca.crl", "masterlist.ml"}
        assert (tmp_path / "trust" / "csca.pem").read_bytes() == (tmp_path / "pki" / "trust" / "csca.pem").read_bytes()
        wait_for_card(pcscd.reader_names[0], 10)
        # a second card on the same vpcd port: refused, not "ready"
        second = subprocess.run([sys.executable, "-m", "sim", "card", "--seed", "32", "--vpcd-port", port],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert second.returncode == 2, second
        assert "already has a card" in second.stderr and '"ready"' not in second.stdout
    finally:
        assert _stop(proc) == 0
    wait_for_card(pcscd.reader_names[0], 10, present=False)
    # the next day: the same PKI directory, reused; the gate's trust from the first run verifies the new card
    anchors = (tmp_path / "pki" / "trust" / "csca.pem").read_bytes()
    proc = _sim_card("--seed", "35", "--vpcd-port", port, "--pki", str(tmp_path / "pki"), "--dg2-size", "1000")
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["pki"]["created"] is False and (tmp_path / "pki" / "trust" / "csca.pem").read_bytes() == anchors
        wait_for_card(pcscd.reader_names[0], 10)
        card = build_card("cccd", seed=35)  # the same person: the access keys only
        transport = PcscTransport(pcscd.reader_names[0])
        try:
            result = read_document(transport, keys_of(card), ["dg1", "dg13"],
                                   trust=TrustStore.from_directory(tmp_path / "trust"))  # fmt: skip
        finally:
            transport.close()
        assert result.passive_auth is not None and result.passive_auth.valid, result.passive_auth
    finally:
        assert _stop(proc) == 0
    wait_for_card(pcscd.reader_names[0], 10, present=False)


def test_sim_card_command_refuses_bad_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = subprocess.run([sys.executable, "-m", "sim", "card", "--faults", "nope"], capture_output=True, text=True,
                         timeout=60, env=os.environ)  # fmt: skip
    assert bad.returncode == 2 and "unknown fault" in bad.stderr
    (tmp_path / "pki" / "eac").mkdir(parents=True)
    partial = subprocess.run([sys.executable, "-m", "sim", "card", "--pki", str(tmp_path / "pki")],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert partial.returncode == 2 and "partial PKI directory" in partial.stderr
    helped = subprocess.run([sys.executable, "-m", "sim", "card", "--help"], capture_output=True, text=True, timeout=60)
    assert "K-th APDU of every session" in " ".join(helped.stdout.split())


def test_modelled_contactless_link_takes_its_time() -> None:
    """At 424 kbit/s every APDU costs its bytes' air time (with 20 % framing); the read takes at least that."""
    import time as _time

    from agent.card.read import read_document
    from sim.card import InProcessReader
    from tests.card_fixtures import keys_of

    card = build_card("cccd", seed=5, link_kbps=424)
    sizes: list[int] = []
    original = card.chip.process

    def counting(apdu: bytes) -> bytes:
        answer = original(apdu)
        sizes.append(len(apdu) + len(answer))
        return answer

    card.chip.process = counting  # type: ignore[method-assign]
    start = _time.perf_counter()
    read_document(InProcessReader(card), keys_of(card), ["dg1", "dg2"])
    wall = _time.perf_counter() - start
    modelled = sum(sizes) * 8 * 1.2 / 424_000
    assert card.link_seconds == pytest.approx(modelled)
    assert modelled > 0.3  # a 20 KB face image is most of a second of air time
    assert wall >= modelled


# --- card variants: one registry, and what each adversarial chip does -------------------------------------


def test_every_variant_is_registered_once_and_builds() -> None:
    import argparse

    from sim.card import REGISTRY, VARIANT_EXPECT, VARIANTS
    from sim.card.variants import CONCLUSIONS
    from sim.commands import card as card_command

    parser = argparse.ArgumentParser()
    card_command.configure(parser)
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.description and spec.conclusion in CONCLUSIONS, name
        assert parser.parse_args(["--variant", name]).variant == name  # the CLI takes every variant, clones too
        for profile in ("cccd", "passport"):
            assert build_card(profile, seed=40, variant=name, dg2_size=500).variant == name
    assert set(VARIANTS) == set(VARIANT_EXPECT) <= set(REGISTRY)
    assert {"clone", "clone-hiding-dg14-dg15", "no-sfi", "hostile-chaining", "hostile-oversize",
            "aa-unknown-trailer", "cardaccess-missing"} <= set(REGISTRY)  # fmt: skip
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        build_card("cccd", variant="nope")


def test_variant_help_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from sim.__main__ import main
    from sim.card import REGISTRY

    assert main(["card", "--variant", "help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(REGISTRY)
    assert [line.split()[1] for line in lines] == [v.conclusion for v in REGISTRY.values()]


def _opened(variant: str, seed: int = 41):  # type: ignore[no-untyped-def]
    """A card of ``variant`` and a reader session opened on it (the agent's session code as the reader)."""
    from agent.card.session import ChipSession
    from tests.card_fixtures import keys_of

    card = build_card("cccd", seed=seed, variant=variant, dg2_size=1000)
    reader = InProcessReader(card)
    session = ChipSession(reader)
    access = session.open(keys_of(card))
    return card, reader, session, access


def _send(session, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None):  # type: ignore[no-untyped-def]
    from agent.card.apdu import CommandApdu

    return session.send(CommandApdu(0x00, ins, p1, p2, data, le))


def test_clone_hiding_dg14_dg15_answers_file_not_found_and_has_no_keys() -> None:
    from agent.card.lds import parse_com
    from agent.card.sod import parse_sod

    card, _, session, _ = _opened("clone-hiding-dg14-dg15")
    files = card.files.files
    assert {14, 15} <= set(parse_sod(files["sod"]).dg_hashes)  # the signed files promise DG14 and DG15
    assert {"dg14", "dg15"} <= set(parse_com(files["com"]).files)
    assert _send(session, 0xA4, 0x02, 0x0C, b"\x01\x0e").sw == 0x6A82  # DG14
    assert _send(session, 0xA4, 0x02, 0x0C, b"\x01\x0f").sw == 0x6A82  # DG15
    assert _send(session, 0xB0, 0x80 | 14, 0, le=4).sw == 0x6A82
    assert _send(session, 0xB0, 0x80 | 15, 0, le=4).sw == 0x6A82
    assert _send(session, 0x88, 0x00, 0x00, bytes(8), le=256).sw == 0x6D00  # no AA key
    read = _send(session, 0xB0, 0x81, 0, le=8)  # the rest reads as on the genuine card
    assert read.sw == 0x9000 and read.data == files["dg1"][:8]


def test_no_sfi_refuses_short_file_identifiers_and_reads_by_select() -> None:
    card, _, session, _ = _opened("no-sfi")
    assert _send(session, 0xB0, 0x81, 0x00, le=8).sw == 0x6A86  # READ BINARY, SFI 1
    assert _send(session, 0xB1, 0x00, 0x01, bytes.fromhex("5401 00"), le=12).sw == 0x6A86  # odd INS, SFI in P2
    assert _send(session, 0xA4, 0x02, 0x0C, b"\x01\x01").sw == 0x9000  # SELECT DG1 by identifier
    head = _send(session, 0xB0, 0x00, 0x00, le=8)
    rest = _send(session, 0xB0, 0x00, 0x08, le=len(card.files.files["dg1"]) - 8)
    assert head.sw == rest.sw == 0x9000 and head.data + rest.data == card.files.files["dg1"]


def test_hostile_chaining_answers_61xx_forever() -> None:
    from agent.card.apdu import CommandApdu

    _, reader, session, _ = _opened("hostile-chaining")
    assert session.sm is not None
    raw = reader.transmit(session.sm.protect(CommandApdu(0x00, 0xB0, 0x81, 0x00, le=16)).to_bytes())
    assert raw[-2] == 0x61
    for _ in range(200):  # a reader that follows 61xx never gets to the end
        raw = reader.transmit(bytes.fromhex("00C0000000"))
        assert len(raw) == 258 and raw[-2:] == b"\x61\x00"
    assert reader.transmit(bytes.fromhex("0CC0000000"))[-2] == 0x61  # whatever class byte the reader uses


def test_hostile_oversize_announces_huge_groups_and_reads_past_the_end() -> None:
    from sim.card.variants import OVERSIZE

    card, _, session, _ = _opened("hostile-oversize")
    dg1 = _send(session, 0xB0, 0x81, 0x00, le=8)
    assert dg1.sw == 0x9000 and dg1.data[:5] == bytes.fromhex("6183010000")  # DG1: 65536 bytes announced
    dg2 = _send(session, 0xB0, 0x82, 0x00, le=8)
    assert dg2.sw == 0x9000 and dg2.data[:6] == bytes.fromhex("758401000000")  # DG2: 16 MB announced
    assert OVERSIZE == {"dg1": 65536, "dg2": 16 * 1024 * 1024}
    assert len(card.files.files["dg1"]) < 200
    past = _send(session, 0xB0, 0x70, 0x00, le=64)  # offset 0x7000 of DG2, far past its real end
    assert past.sw == 0x9000 and past.data == b"\xff" * 64


def test_aa_unknown_trailer_signs_with_hash_id_99_on_a_card_whose_sod_covers_dg15() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from agent.card.lds import dg15_public_key
    from agent.card.sod import parse_sod

    card, _, session, _ = _opened("aa-unknown-trailer")
    assert 15 in parse_sod(card.files.files["sod"]).dg_hashes
    key = dg15_public_key(card.files.files["dg15"])
    assert isinstance(key, rsa.RSAPublicKey)
    answer = _send(session, 0x88, 0x00, 0x00, bytes(range(8)), le=256)
    assert answer.sw == 0x9000
    n, e = key.public_numbers().n, key.public_numbers().e
    block = pow(int.from_bytes(answer.data, "big"), e, n)
    block = block if block & 0xF == 0xC else n - block  # ISO/IEC 9796-2: J or n - J, the one ending in C
    raw = block.to_bytes(256, "big")
    assert raw[0] == 0x6A and raw[-2:] == b"\x99\xcc"


def test_cardaccess_missing_while_dg14_announces_pace() -> None:
    from agent.card.secinfo import parse_security_infos

    card, reader, session, access = _opened("cardaccess-missing")
    assert access == "BAC"  # no EF.CardAccess: the reader falls back to BAC
    assert parse_security_infos(card.files.files["dg14"], "DG14").pace  # the signed DG14 promises PACE
    read = _send(session, 0xB0, 0x8E, 0x00, le=4)  # DG14 is there, under BAC
    assert read.sw == 0x9000
    card.power_on()
    assert reader.transmit(bytes.fromhex("00A4020C02011C")) == bytes.fromhex("6A82")  # EF.CardAccess
    assert reader.transmit(bytes.fromhex("00B09C0004")) == bytes.fromhex("6A82")  # by SFI 1C
    set_at = bytes.fromhex("0022C1A40F800A04007F00070202040202830101")
    assert reader.transmit(set_at) == bytes.fromhex("6A80")  # PACE refused


def test_the_variant_document_lists_the_registry() -> None:
    from pathlib import Path

    from sim.card import REGISTRY

    text = (Path(__file__).resolve().parent.parent / "docs" / "card-variants.md").read_text()
    for name, spec in REGISTRY.items():
        assert f"| `{name}` | {spec.description} | `{spec.conclusion}` |" in text, name


def test_response_chain_splits_and_counts_what_is_left() -> None:
    from sim.card.apdu import ResponseChain

    chain = ResponseChain()
    data = bytes(range(256)) * 2 + bytes(88)
    first = chain.start(data, 0x9000)
    assert first[:-2] == data[:256] and first[-2:] == H("6100")  # 344 left: 00 means 256 or more
    second = chain.next(None)
    assert second[:-2] == data[256:512] and second[-2:] == H("6158")  # 88 left
    assert chain.next(0x58) == data[512:] + H("9000") and not chain.pending
    assert chain.next(None) == H("6985")  # nothing waits
    assert ResponseChain().start(b"\x01\x02", 0x6282) == H("01026282")  # a short answer keeps its status
