"""SecurityInfos of EF.CardAccess and DG14 (ICAO 9303-11 9.2), built by tests/ldsgen.py."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from agent.card import tlv
from agent.card.errors import ParseError
from agent.card.secinfo import parse_security_infos
from agent.card.trust import load_public_key
from tests import ldsgen as g

PACE_GM_AES128 = "0.4.0.127.0.7.2.2.4.2.2"


def test_cccd_card_access_offers_pace_gm_aes128_on_brainpool_p256() -> None:
    infos = parse_security_infos(g.card_access(), "EF.CardAccess")
    assert len(infos.pace) == 1
    pace = infos.pace[0]
    assert (pace.oid, pace.parameter_id, pace.cipher, pace.supported) == (PACE_GM_AES128, 13, "AES-128", True)
    assert infos.preferred_pace() == pace
    assert "brainpoolP256r1" in pace.describe()


def test_several_pace_entries_and_unknown_infos_are_kept() -> None:
    unknown = g.t(0x30, g.oid("1.2.3.4.5"), g.der_int(7))
    data = g.card_access(
        [("0.4.0.127.0.7.2.2.4.4.2", 2, 13), (PACE_GM_AES128, 2, 12), ("0.4.0.127.0.7.2.2.4.2.4", 1, 13)], [unknown]
    )
    infos = parse_security_infos(data)
    assert [(p.oid, p.parameter_id) for p in infos.pace] == [("0.4.0.127.0.7.2.2.4.4.2", 13), (PACE_GM_AES128, 12)]
    assert infos.preferred_pace() is not None and infos.preferred_pace().oid == PACE_GM_AES128  # IM not run
    assert infos.other == ("1.2.3.4.5",)


def test_dg14_chip_auth_terminal_auth_active_auth() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    infos = parse_security_infos(g.dg14(key, key_id=3), "DG14")
    assert [(c.oid, c.version, c.key_id) for c in infos.chip_auth] == [("0.4.0.127.0.7.2.2.3.2.2", 1, 3)]
    (pk,) = infos.chip_auth_keys
    assert pk.oid == "0.4.0.127.0.7.2.2.1.2" and pk.key_id == 3
    loaded = load_public_key(pk.subject_public_key_info)
    assert (
        isinstance(loaded, ec.EllipticCurvePublicKey) and loaded.public_numbers() == key.public_key().public_numbers()
    )
    assert infos.terminal_auth == (1,)
    assert [(a.version, a.signature_algorithm) for a in infos.active_auth] == [(1, "0.4.0.127.0.7.1.1.4.1.3")]


def test_dg14_without_key_ids() -> None:
    infos = parse_security_infos(g.dg14(ec.generate_private_key(ec.SECP256R1())))
    assert infos.chip_auth[0].key_id is None and infos.chip_auth_keys[0].key_id is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        g.t(0x30),  # not a SET
        g.t(0x31, g.t(0x02, b"\x01")),  # an info that is not a SEQUENCE
        g.t(0x31, g.t(0x30, g.der_int(1))),  # no OID first
        g.t(0x31, g.t(0x30, g.oid(PACE_GM_AES128))),  # PACEInfo without version
        g.t(0x31, g.t(0x30, g.oid("0.4.0.127.0.7.2.2.3.2.2"))),  # CA info without version
        g.t(0x31, g.t(0x30, g.oid("0.4.0.127.0.7.2.2.1.2"), g.der_int(1))),  # CA key without SPKI
        g.t(0x31, g.t(0x30, g.t(0x06, b"\x2a\x86"))),  # OID ending inside a sub-identifier
        g.card_access() + b"\x01",  # trailing bytes
    ],
)
def test_malformed_security_infos_are_parse_errors(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_security_infos(data, "EF.CardAccess")


KNOWN_OIDS = [PACE_GM_AES128, "0.4.0.127.0.7.2.2.3.2.2", "0.4.0.127.0.7.2.2.1.2", "0.4.0.127.0.7.2.2.2",
              "2.23.136.1.1.5", "1.2.3"]  # fmt: skip
element = st.one_of(
    st.integers(-300, 300).map(g.der_int),
    st.sampled_from(KNOWN_OIDS).map(g.oid),
    st.binary(max_size=6).map(lambda b: g.t(0x30, b)),
    st.binary(max_size=4).map(lambda b: g.t(0x02, b)),
    st.binary(max_size=4).map(lambda b: g.t(0x06, b)),
)
info = st.tuples(st.sampled_from(KNOWN_OIDS), st.lists(element, max_size=3)).map(
    lambda x: g.t(0x30, g.oid(x[0]), *x[1])
)


@given(st.lists(info, max_size=4))
def test_structured_fuzz_never_crashes(infos: list[bytes]) -> None:
    data = g.t(0x31, *infos)
    try:
        parse_security_infos(data)
    except ParseError:
        pass


def test_dg14_wrapper_is_unwrapped_and_checked() -> None:
    with pytest.raises(ParseError):
        parse_security_infos(tlv.encode(0x6E, g.t(0x30)))
