"""The strict CBOR walker's shortcut (small members skipped without a call) agrees with the full walk."""

from __future__ import annotations

import random

import cbor2
import pytest

from agent.codec import cbor
from agent.codec.cbor import CborError, decode_cbor


def outcome(data: bytes) -> int | str:
    try:
        return cbor._cbor_walk(data, 0, 0)
    except CborError:
        return "refused"


def samples() -> list[bytes]:
    event = {"v": 1, "id": "0b9f6c1e-8d7a-4c1e-9a57-3f0e6d2b1a44", "type": "checkin", "seq": 2**40, "neg": -300,
             "time": {"wall": 1.7e9, "synced": True, "mono": 12.5, "half": 1.5}, "b": b"\x00" * 30, "n": None,
             "body": {"findings": ["A", "B" * 30], "deep": [[[[1]]]], "score": 0.25,
                      "t": cbor2.CBORTag(1, 5)}}  # fmt: skip
    return [cbor2.dumps(event), cbor2.dumps([event, [1, 2, {"k": "v"}], "x" * 40]), cbor2.dumps(list(range(40)))]


def test_the_shortcut_agrees_with_the_full_walk_on_mutated_input(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261130)
    cases = []
    for base in samples():
        cases.append(base)
        for _ in range(1500):
            data = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cases.append(bytes(data[: rng.choice([len(data), rng.randrange(1, len(data) + 1)])]))
    fast = [outcome(c) for c in cases]
    monkeypatch.setattr(cbor, "_SKIP", (-1,) * 256)  # every item walked by the full function
    full = [outcome(c) for c in cases]
    assert fast == full
    assert fast.count("refused") > 100 and sum(isinstance(o, int) for o in fast) > 100  # both kinds exercised


@pytest.mark.parametrize("levels", [63, 64, 65, 66])
def test_nesting_deeper_than_64_is_refused_with_or_without_the_shortcut(levels: int) -> None:
    data = b"\x81" * levels + b"\x00"  # a small integer inside ``levels`` nested arrays: depth ``levels``
    if levels <= 64:
        assert decode_cbor(data) is not None
    else:
        with pytest.raises(CborError, match="deeper"):
            decode_cbor(data)
