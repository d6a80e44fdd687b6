"""Hostile bytes into every chip-data parser: a typed error or a result, never another exception."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.card import lds
from agent.card.apdu import CommandApdu, ResponseApdu
from agent.card.errors import CardError
from agent.card.pa import passive_authentication
from agent.card.secinfo import parse_security_infos
from agent.card.sod import parse_sod
from sim.card import build_card

CARD = build_card("cccd", seed=40)
FILES = CARD.files.files
PARSERS: dict[str, Callable[[bytes], Any]] = {
    "com": lds.parse_com,
    "dg1": lds.parse_dg1,
    "dg2": lds.parse_dg2,
    "dg13": lds.parse_dg13,
    "dg15": lds.parse_dg15,
    "dg14": parse_security_infos,
    "cardaccess": parse_security_infos,
    "sod": parse_sod,
}


def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "insert"] if data else ["insert"]))
    pos = draw(st.integers(0, max(0, len(data) - 1)))
    if kind == "flip":
        return data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1 :]
    if kind == "truncate":
        return data[:pos]
    return data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos:]


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(PARSERS)))
    data = FILES[name]
    for _ in range(draw(st.integers(1, 3))):
        data = mutate(data, draw)
    return name, data


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files_give_parse_errors(item: tuple[str, bytes]) -> None:
    name, data = item
    try:
        PARSERS[name](data)
    except CardError:
        pass


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(data=st.binary(max_size=200))
def test_random_bytes_give_parse_errors(name: str, data: bytes) -> None:
    try:
        PARSERS[name](data)
    except CardError:
        pass


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_passive_authentication_never_crashes_on_a_damaged_sod(item: tuple[str, bytes]) -> None:
    _, data = item
    result = passive_authentication(data, {"dg1": FILES["dg1"]}, None)
    assert result.valid is False and result.failed_step


@given(st.binary(max_size=300))
def test_apdu_parsers(data: bytes) -> None:
    for parse in (CommandApdu.from_bytes, ResponseApdu.from_bytes):
        try:
            parse(data)
        except CardError:
            pass


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=600),
    st.one_of(st.none(), st.integers(1, 65536)),
)
def test_command_apdu_round_trip(ins: int, p1: int, data: bytes, le: int | None) -> None:
    cmd = CommandApdu(0x00, ins, p1, 0, data, le)
    back = CommandApdu.from_bytes(cmd.to_bytes())
    assert (back.ins, back.p1, back.data, back.le) == (ins, p1, data, le)


def test_every_real_file_parses() -> None:
    for name, parse in PARSERS.items():
        parse(FILES[name])
