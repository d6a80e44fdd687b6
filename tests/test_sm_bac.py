"""ICAO 9303-11 Appendix D worked example: BAC keys, mutual authentication, protected APDUs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.card import bac, crypto
from agent.card.apdu import ApduChannel, CommandApdu, ResponseApdu
from agent.card.errors import AuthenticationFailed, CardError, SecureMessagingError, StatusError
from agent.card.keys import MrzKey
from agent.card.sm import SecureChannel

KEY = MrzKey("L898902C", "690806", "940623")
H = bytes.fromhex


class Scripted:
    """A transport that checks each command against the example and answers as the example does."""

    name = "scripted"

    def __init__(self, exchanges: list[tuple[str, str]]) -> None:
        self.exchanges = [(H(c), H(r)) for c, r in exchanges]

    def transmit(self, apdu: bytes) -> bytes:
        expected, answer = self.exchanges.pop(0)
        assert apdu.hex().upper() == expected.hex().upper()
        return answer

    def close(self) -> None:
        pass


def test_mrz_information_and_basic_keys() -> None:
    assert KEY.mrz_information == "L898902C<369080619406236"
    k_enc, k_mac = bac.bac_keys(KEY)
    assert k_enc.hex().upper() == "AB94FDECF2674FDFB9B391F85D7F76F2"
    assert k_mac.hex().upper() == "7962D9ECE03D1ACD4C76089DCE131543"


RND_IC = "4608F91988702212"
E_IFD_M_IFD = "72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A7"
R_IC = "46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449"


def authenticated() -> tuple[SecureChannel, Scripted]:
    script = Scripted(
        [
            ("0084000008", RND_IC + "9000"),
            ("0082000028" + E_IFD_M_IFD + "28", R_IC + "9000"),
        ]
    )
    fixed = iter([H("781723860C06C226"), H("0B795240CB7049B01C19B33E32804F0B")])
    sm = bac.authenticate(ApduChannel(script), KEY, random=lambda n: next(fixed))
    return sm, script


def test_mutual_authentication_gives_the_session_keys_of_the_example() -> None:
    sm, _ = authenticated()
    assert sm.ks_enc.hex().upper() == "979EC13B1CBFE9DCD01AB0FED307EAE5"
    assert sm.ks_mac.hex().upper() == "F1CB1F1FB5ADF208806B89DC579DC1F8"
    assert sm.ssc == 0x887022120C06C226


def test_protected_select_and_read_binary_of_the_example() -> None:
    sm, script = authenticated()
    script.exchanges = [
        (H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800"), H("990290008E08FA855A5D4C50A8ED9000")),
        (H("0CB000000D9701048E08ED6705417E96BA5500"), H("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000")),
    ]
    assert sm.transceive(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E"))) == ResponseApdu(b"", 0x9000)
    assert sm.ssc == 0x887022120C06C228
    assert sm.transceive(CommandApdu(0x00, 0xB0, 0, 0, le=4)) == ResponseApdu(H("60145F01"), 0x9000)


def test_tampered_response_ends_the_session() -> None:
    sm, script = authenticated()
    script.exchanges = [
        (H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800"), H("990290008E08FA855A5D4C50A8EE9000"))
    ]
    with pytest.raises(SecureMessagingError, match="MAC does not verify"):
        sm.transceive(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    with pytest.raises(SecureMessagingError, match="already ended"):
        sm.protect(CommandApdu(0x00, 0xB0, 0, 0, le=4))


def test_wrong_keys_are_an_authentication_failure() -> None:
    class Refusing(Scripted):
        def transmit(self, apdu: bytes) -> bytes:
            return H(RND_IC + "9000") if apdu[1] == 0x84 else H("6300")

    with pytest.raises(AuthenticationFailed):
        bac.authenticate(ApduChannel(Refusing([])), MrzKey("L898902C", "690806", "940624"))


def test_sm_error_status_without_objects() -> None:
    sm, script = authenticated()
    script.exchanges = [(H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800"), H("6988"))]
    with pytest.raises(StatusError):
        sm.transceive(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    assert sm.broken


@given(st.binary(max_size=80))
def test_any_protected_response_is_data_or_a_typed_error(data: bytes) -> None:
    sm = SecureChannel(ApduChannel(Scripted([])), bytes(16), bytes(16), 0, "AES-128")
    try:
        sm.unprotect(ResponseApdu(data, 0x9000))
    except CardError:
        pass


@pytest.mark.parametrize("cipher", ["3DES", "AES-128", "AES-192", "AES-256"])
def test_protect_unprotect_round_trip_against_an_independent_responder(cipher: str) -> None:
    """Card-side wrap written here from 9303-11 9.8 with the primitives only, not with SecureChannel."""
    size = {"3DES": 16, "AES-128": 16, "AES-192": 24, "AES-256": 32}[cipher]
    k_enc, k_mac = bytes(range(size)), bytes(range(1, size + 1))
    sm = SecureChannel(ApduChannel(Scripted([])), k_enc, k_mac, 41, cipher)
    protected = sm.protect(CommandApdu(0x00, 0xB0, 0x81, 0x00, le=200))
    block = 8 if cipher == "3DES" else 16
    ssc = (42).to_bytes(block, "big")
    header = crypto.pad(H("0CB08100"), block)
    do97 = H("9701C8")
    mac_in = crypto.pad(ssc + header + do97, block)
    mac = crypto.retail_mac(k_mac, mac_in) if cipher == "3DES" else crypto.aes_cmac(k_mac, mac_in)[:8]
    assert protected.data == do97 + H("8E08") + mac
    # the card answers 200 bytes, encrypted and MACed with SSC 43
    plain = bytes(range(200))
    ssc = (43).to_bytes(block, "big")
    if cipher == "3DES":
        enc = crypto.des3_cbc_encrypt(k_enc, crypto.pad(plain, 8))
    else:
        enc = crypto.aes_cbc_encrypt(k_enc, crypto.pad(plain, 16), crypto.aes_encrypt_block(k_enc, ssc))
    do87 = H("8781D1") + b"\x01" + enc if len(enc) + 1 > 127 else bytes([0x87, len(enc) + 1, 1]) + enc
    mac_in = crypto.pad(ssc + do87 + H("99029000"), block)
    mac = crypto.retail_mac(k_mac, mac_in) if cipher == "3DES" else crypto.aes_cmac(k_mac, mac_in)[:8]
    answer = ResponseApdu(do87 + H("99029000") + H("8E08") + mac, 0x9000)
    assert sm.unprotect(answer) == ResponseApdu(plain, 0x9000)
