"""COSE_Sign1 against RFC 9052 (RFC 8152) Appendix C.2.1, round trips, and forgeries."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from agent.uplink import cose

# Appendix C.2.1 "Single ECDSA Signature", key "11" of the COSE examples (P-256)
X = bytes.fromhex("BAC5B11CAD8F99F9C72B05CF4B9E26D244DC189F745228255A219A86D6A09EFF")
Y = bytes.fromhex("20138BF82DC1B6D562BE0FA54AB7804A3A64B6D72CCFED6B6FB6ED28BBFC117E")
C21 = bytes.fromhex(
    "D28443A10126A10442313154546869732069732074686520636F6E74656E742E58408EB33E4CA31D1C465AB05AAC34CC6B23D58FEF5C"
    "083106C4D25A91AEF0B0117E2AF9A291AA32E14AB834DC56ED2A223444547E01F11D3B0916E5A4C345CACB36"
)


def test_rfc_example_verifies() -> None:
    key = ec.EllipticCurvePublicNumbers(int.from_bytes(X, "big"), int.from_bytes(Y, "big"), ec.SECP256R1()).public_key()
    msg = cose.decode_sign1(C21)
    assert msg.kid == b"11" and msg.alg == cose.ES256
    assert cose.verify1(msg, key) == b"This is the content."
    tampered = C21.replace(b"content", b"CONTENT")
    with pytest.raises(cose.CoseError, match="does not verify"):
        cose.verify1(cose.decode_sign1(tampered), key)


@pytest.mark.parametrize("make", [ed25519.Ed25519PrivateKey.generate, lambda: ec.generate_private_key(ec.SECP256R1())])
def test_round_trip_and_wrong_key(make) -> None:  # type: ignore[no-untyped-def]
    key = make()
    data = cose.sign1(b"payload", key, b"gate-1")
    assert cose.verify1(cose.decode_sign1(data), key.public_key()) == b"payload"
    with pytest.raises(cose.CoseError):
        cose.verify1(cose.decode_sign1(data), make().public_key())


@given(st.binary(max_size=200))
def test_garbage_is_a_cose_error(data: bytes) -> None:
    try:
        cose.decode_sign1(data)
    except cose.CoseError:
        pass
