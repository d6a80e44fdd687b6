"""EF.SOD (ICAO 9303-10 4.6.2) built by tests/ldsgen.py: fields, malformations, fuzzing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.card import tlv
from agent.card.errors import ParseError
from agent.card.sod import parse_sod
from tests import ldsgen as g

CSCA = g.csca()
DS = g.signer(CSCA)
FILES = {1: g.dg1(g.td1()), 13: g.dg13(g.DG13_SAMPLE), 15: g.dg15(g.new_key("ecdsa"))}
SOD = g.sod(FILES, DS)


def test_fields() -> None:
    sod = parse_sod(SOD)
    assert sod.digest_algorithm == "sha256" and sod.lds_version == "0107"
    assert sod.dg_hashes == {n: hashlib.sha256(data).digest() for n, data in FILES.items()}
    assert sod.signer_certificates == [DS.der]
    assert sod.signature_algorithm == "sha256_ecdsa" and len(sod.signature) > 60
    attrs = sod.signed_attributes
    assert attrs["content_type"] == "2.23.136.1.1.1"
    assert attrs["message_digest"] == hashlib.sha256(sod.econtent).digest()


def test_lds_v0_without_version_info_and_sha1() -> None:
    sod = parse_sod(g.sod(FILES, DS, lso_digest="sha1", lds_version=None))
    assert sod.lds_version is None and sod.digest_algorithm == "sha1"
    assert sod.dg_hashes[1] == hashlib.sha1(FILES[1]).digest()


def test_wrong_outer_tag_and_trailing_bytes() -> None:
    with pytest.raises(ParseError, match=r"EF\.SOD"):
        parse_sod(b"\x30" + SOD[1:])
    with pytest.raises(ParseError, match="trailing"):
        parse_sod(SOD + b"\x00\x01")


def test_wrong_encapsulated_content_type() -> None:
    data = g.t(0x77, g.signed_data("1.2.840.113549.1.7.1", g.lso(FILES), DS))
    with pytest.raises(ParseError, match="not an LDS security object"):
        parse_sod(data)


def test_master_list_is_not_a_sod() -> None:
    with pytest.raises(ParseError):
        parse_sod(g.t(0x77, g.master_list([CSCA], CSCA)))


def test_not_cms() -> None:
    with pytest.raises(ParseError, match=r"EF\.SOD"):
        parse_sod(tlv.encode(0x77, tlv.encode(0x30, tlv.encode(0x02, b"\x01"))))


@settings(max_examples=200)
@given(st.data())
def test_damaged_sod_is_a_parse_error_or_parses(data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(SOD) - 1))
    kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    if kind == "flip":
        damaged = SOD[:pos] + bytes([SOD[pos] ^ data.draw(st.integers(1, 255))]) + SOD[pos + 1 :]
    elif kind == "cut":
        damaged = SOD[:pos]
    else:
        damaged = SOD[:pos] + data.draw(st.binary(min_size=1, max_size=5)) + SOD[pos:]
    try:
        sod = parse_sod(damaged)
        _ = (sod.signed_attributes, sod.signature, sod.signature_algorithm, sod.signer_certificates)
    except ParseError:
        pass
