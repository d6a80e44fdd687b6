"""BER-TLV: byte-exact vectors, round trips, and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.card import tlv
from agent.card.errors import ParseError


@pytest.mark.parametrize(
    ("length", "encoded"),
    [(0, "00"), (0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"), (0x100, "820100"), (0x12345, "83012345")],
)
def test_length_encoding_is_byte_exact(length: int, encoded: str) -> None:
    assert tlv.encode_length(length).hex().upper() == encoded
    assert tlv.read_length(bytes.fromhex(encoded), 0) == (length, len(encoded) // 2)


def test_multibyte_tags_and_nesting() -> None:
    # DG1 as ICAO 9303-10 frames it: 61 { 5F1F <MRZ> }
    mrz = b"I<VNM" + b"<" * 85
    dg1 = bytes.fromhex("615D5F1F5A") + mrz
    outer = tlv.parse_single(dg1, 0x61)
    assert outer.constructed
    inner = outer.child(0x5F1F)
    assert inner.value == mrz
    assert not inner.constructed
    assert outer.to_bytes() == dg1
    assert tlv.total_length(dg1[:4]) == len(dg1)


def test_padding_between_objects_is_skipped() -> None:
    assert tlv.parse_all(bytes.fromhex("00 8001AA FF 8101BB".replace(" ", ""))) == [
        tlv.Tlv(0x80, b"\xaa"),
        tlv.Tlv(0x81, b"\xbb"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("80", "data ends"),
        ("5F", "past the end"),
        ("8005AA", "declares 5 bytes"),
        ("8085FFFFFFFFFF", "too long"),
        ("8080", "indefinite"),
        ("8182", "past the end"),
    ],
)
def test_malformed_input_is_a_parse_error(data: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        tlv.parse_all(bytes.fromhex(data), "test")


def test_trailing_bytes_and_wrong_tag_are_rejected() -> None:
    with pytest.raises(ParseError, match="trailing"):
        tlv.parse_single(bytes.fromhex("8001AA00"))
    with pytest.raises(ParseError, match="expected tag 61"):
        tlv.parse_single(bytes.fromhex("8001AA"), 0x61)


tags = st.sampled_from([0x01, 0x30, 0x5F1F, 0x7F21, 0x5F0E, 0x87, 0x99, 0x8E])


@given(st.lists(st.tuples(tags, st.binary(max_size=300)), max_size=5))
def test_round_trip(objects: list[tuple[int, bytes]]) -> None:
    data = b"".join(tlv.encode(t, v) for t, v in objects)
    assert [(o.tag, o.value) for o in tlv.parse_all(data)] == objects


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        for item in tlv.iter_tlv(data):
            if item.constructed:
                item.children()
    except ParseError:
        pass
