"""PACE ECDH generic mapping, brainpoolP256r1, against ICAO 9303-11 Appendix G.1 (worked example)."""

from __future__ import annotations

import pytest

from agent.card import pace, tlv
from agent.card.apdu import ApduChannel
from agent.card.errors import AuthenticationFailed, CardError
from agent.card.keys import MrzKey

H = bytes.fromhex
# G.1: MRZ document number T22000129, birth 640812, expiry 101031
KEY = MrzKey("T22000129", "640812", "101031")
PARAMS = pace.PaceParameters("0.4.0.127.0.7.2.2.4.2.2", 13)
NONCE_ENC = H("95A3A016522EE98D01E76CB6B98B42C3")
SK_MAP_IFD = 0x7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99
PK_MAP_IC = H(
    "04824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F57"
    "30D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C54"
)
SK_EPH_IFD = 0xA73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595
PK_EPH_IC = H(
    "049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB"
    "7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F094"
)
PK_MAP_IFD = H(
    "047ACF3EFC982EC45565A4B155129EFBC74650DCBFA6362D896FC70262E0C2CC5E"
    "544552DCB6725218799115B55C9BAA6D9F6BC3A9618E70C25AF71777A9C4922D"
)
PK_EPH_IFD = H(
    "042DB7A64C0355044EC9DF190514C625CBA2CEA48754887122F3A5EF0D5EDD301C"
    "3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB36462"
)
T_IFD, T_IC = H("C2B0BD78D94BA866"), H("3ABB9674BCE93C08")


class Chip:
    """Answers as the chip of G.1 does and records what the terminal sent."""

    name = "g1"

    def __init__(self, t_ic: bytes = T_IC) -> None:
        self.sent: list[bytes] = []
        self.t_ic = t_ic
        self.refuse = False

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        if apdu[1] == 0x22:
            return H("9000")
        step = len(self.sent) - 1
        answers = {1: (0x80, NONCE_ENC), 2: (0x82, PK_MAP_IC), 3: (0x84, PK_EPH_IC), 4: (0x86, self.t_ic)}
        tag, value = answers[step]
        if step == 4 and (self.refuse or tlv.parse_single(apdu[5:-1]).child(0x85).value != T_IFD):
            return H("6300")
        return tlv.encode(0x7C, tlv.encode(tag, value)) + H("9000")

    def close(self) -> None:
        pass


def run(chip: Chip) -> object:
    scalars = iter([SK_MAP_IFD, SK_EPH_IFD])
    return pace.authenticate(ApduChannel(chip), PARAMS, KEY, random_scalar=lambda order: next(scalars))


def test_password_key_of_the_example() -> None:
    k_pi, ref = pace.password_key(KEY, "AES-128")
    assert k_pi.hex().upper() == "89DED1B26624EC1E634C1989302849DD" and ref == 1


def test_full_exchange_gives_the_example_session_keys_and_tokens() -> None:
    chip = Chip()
    sm = run(chip)
    assert sm.ks_enc.hex().upper() == "F5F0E35C0D7161EE6724EE513A0D9A7F"  # type: ignore[attr-defined]
    assert sm.ks_mac.hex().upper() == "FE251C7858B356B24514B3BD5F4297D1"  # type: ignore[attr-defined]
    assert sm.ssc == 0 and sm.cipher == "AES-128"  # type: ignore[attr-defined]
    mse, ga1, ga2, ga3, ga4 = chip.sent
    assert mse.hex().upper() == "0022C1A412800A04007F0007020204020283010184010D"
    assert ga1.hex().upper() == "10860000027C0000"
    assert tlv.parse_single(ga2[5:-1]).child(0x81).value == PK_MAP_IFD
    assert tlv.parse_single(ga3[5:-1]).child(0x83).value == PK_EPH_IFD
    assert ga4[0] == 0x00 and ga1[0] == ga2[0] == ga3[0] == 0x10  # command chaining until the last step


def test_wrong_password_is_an_authentication_failure() -> None:
    # A real chip computes K from its own G' (which a wrong password changes) and answers
    # 6300 to our token; the replayed chip here cannot, so it refuses every token.
    chip = Chip()
    chip.refuse = True
    scalars = iter([SK_MAP_IFD, SK_EPH_IFD])
    with pytest.raises(AuthenticationFailed):
        pace.authenticate(ApduChannel(chip), PARAMS, "123456", random_scalar=lambda order: next(scalars))


def test_forged_chip_token_is_rejected() -> None:
    with pytest.raises(CardError, match="token does not verify"):
        run(Chip(t_ic=bytes(8)))


def test_unsupported_parameters_are_named() -> None:
    with pytest.raises(pace.PaceError, match="PACE-DH-IM-AES-128"):
        pace.authenticate(ApduChannel(Chip()), pace.PaceParameters("0.4.0.127.0.7.2.2.4.3.2", 0), KEY)


def test_oid_encoding() -> None:
    assert pace.encode_oid("0.4.0.127.0.7.2.2.4.2.2").hex().upper() == "04007F0007020204020 2".replace(" ", "")
