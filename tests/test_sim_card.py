"""The simulated chip on its own: ICAO 9303-11 worked examples from the card's side, status words, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sim.card import build_card
from sim.card.chip import Chip
from sim.card.faults import FaultSpecError, parse_faults
from sim.card.files import security_infos
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
    a, b = parse_faults("random-rf=0.3,seed=4"), parse_faults("random-rf=0.3,seed=4")
    assert [a.action(i) for i in range(50)] == [b.action(i) for i in range(50)]


def test_population_cards_are_reproducible() -> None:
    assert build_card("cccd", 5).person == build_card("cccd", 5).person
    assert build_card("cccd", 5).files.files["dg13"] == build_card("cccd", 5).files.files["dg13"]


@pytest.mark.pcscd
def test_sim_card_command_plugs_into_pcscd(pcscd: Pcscd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.transport.pcsc import wait_for_card

    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "card", "--seed", "31", "--vpcd-port", str(pcscd.vpcd_ports[0]),
         "--trust-out", str(tmp_path / "trust")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and ready["keys"]["can"] == ready["person"]["id_number"][-6:]
        assert {p.name for p in (tmp_path / "trust").iterdir()} == {"csca.pem", "csca.crl", "masterlist.ml"}
        wait_for_card(pcscd.reader_names[0], 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    wait_for_card(pcscd.reader_names[0], 10, present=False)
    bad = subprocess.run([sys.executable, "-m", "sim", "card", "--faults", "nope"], capture_output=True, text=True,
                         timeout=60, env=os.environ)  # fmt: skip
    assert bad.returncode == 2 and "unknown fault" in bad.stderr


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
