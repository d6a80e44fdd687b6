"""Inputs an outside fuzzing run found crashing a parser: each must now end in the parser's typed error."""

from __future__ import annotations

import cbor2
import pytest

from agent.card.errors import ParseError
from agent.card.pa import passive_authentication
from agent.card.sod import parse_sod
from agent.store.errors import StoreError
from agent.store.queue import decode_cbor
from agent.uplink.events import EventError, decode_event

SOD_CRASHES = [
    # an IndexError from asn1crypto (a SignerIdentifier that is an empty SEQUENCE)
    "777c307a06092a864886f70d010702a06d306b020103310f300d06096086480165030402010500302a0606678108010101a020041e30"
    "1c020100300d06096086480165030402010500300830060201010401003129302702010130053000020101300d060960864801652404"
    "02010300300a06082a8648ce3d0403020400",
    # an AttributeError from asn1crypto (an issuer name whose attribute value cannot be decoded)
    "77818a30818706092a864886f70d010702a07a3078020103310f300d06096086480165030402010500302a0606678108010101a02004"
    "1e301c020100300d0609608648016503040201050030083006020101040100313630340201013012300d310b30090603550486480256"
    "4e020101300d06096086480165030402010500300a06082a8648ce3d0403020400",
]


@pytest.mark.parametrize("hex_input", SOD_CRASHES)
def test_parse_sod_crashes_are_parse_errors(hex_input: str) -> None:
    with pytest.raises(ParseError, match=r"EF\.SOD"):
        parse_sod(bytes.fromhex(hex_input))
    result = passive_authentication(bytes.fromhex(hex_input), {}, None)
    assert result.valid is False and result.failed_step == "sod"


SELF_CONTAINING_EVENT = "d81ca661760162696460647479706560687465726d696e616c60637365710064626f6479d81d00"


def test_an_event_containing_itself_is_refused() -> None:
    with pytest.raises(EventError, match="shared values"):
        decode_event(bytes.fromhex(SELF_CONTAINING_EVENT))


@pytest.mark.parametrize(
    "value",
    [
        cbor2.CBORTag(29, 0),  # a shared reference alone
        [1, {"a": cbor2.CBORTag(28, [1])}],  # a shareable value deep inside
    ],
)
def test_decode_cbor_refuses_shared_values(value: object) -> None:
    with pytest.raises(StoreError, match="shared values"):
        decode_cbor(cbor2.dumps(value))


def test_decode_cbor_refuses_deep_nesting_and_accepts_ordinary_items() -> None:
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(StoreError, match="nested deeper"):
        decode_cbor(cbor2.dumps(deep))
    ordinary = {"v": 1, "s": "x" * 300, "b": b"\x00" * 70_000, "f": 1.5, "n": None, "t": True, "l": [-1, 2**40]}
    assert decode_cbor(cbor2.dumps(ordinary)) == ordinary
    indefinite = bytes.fromhex("9f0102bf616101616202ff9f03ff7f6161ff5f4101ffff")  # arrays, maps, strings
    assert decode_cbor(indefinite) == [1, 2, {"a": 1, "b": 2}, [3], "a", b"\x01"]
    for bad in ("9f01", "7f6161", "5f6161ff", "1c", "a1", "62", "8301"):
        with pytest.raises(StoreError):
            decode_cbor(bytes.fromhex(bad))
