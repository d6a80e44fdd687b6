"""Strict CBOR decoding (RFC 8949): exactly one item, no trailing bytes, a size limit.

``cbor2.loads`` ignores bytes after the first item and decodes whatever size it is
given; everything the agent decodes from a file or the network (queue records,
events, COSE messages, hub commands) goes through :func:`decode_cbor` instead.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from agent.errors import GateAgentError

#: the default limit: one queue record (the largest item the agent writes itself)
MAX_ITEM = 1 << 20


class CborError(GateAgentError):
    """Bytes that are not exactly one well-formed CBOR item within the size limit."""


#: CBOR tags for shared values (28 shareable, 29 shared reference): an item can contain itself through them
_SHARED_TAGS = (28, 29)
_MAX_DEPTH = 64


def _skip_table() -> tuple[int, ...]:
    """Bytes after the initial byte for items that hold no other item and need no check; -1: walk it."""
    skip = [-1] * 256
    for major in (0, 1):  # integers: 0..23 in the initial byte, else a 1, 2, 4 or 8-byte argument
        for info in range(24):
            skip[major << 5 | info] = 0
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            skip[major << 5 | info] = size
    for major in (2, 3):  # byte and text strings shorter than 24 bytes
        for info in range(24):
            skip[major << 5 | info] = info
    for info in range(24):  # simple values (false, true, null, ...)
        skip[0xE0 | info] = 0
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):  # simple value in a byte, half/single/double floats
        skip[0xE0 | info] = size
    return tuple(skip)


_SKIP = _skip_table()


def _cbor_walk(data: bytes, pos: int, depth: int) -> int:
    """Skip one CBOR item at ``pos`` (RFC 8949, 3); refuse shared references and deep nesting. The end offset."""
    if depth > _MAX_DEPTH:
        raise CborError(f"CBOR nested deeper than {_MAX_DEPTH} levels")
    if pos >= len(data):
        raise CborError("malformed CBOR: truncated item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        value = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise CborError("malformed CBOR: truncated argument")
        value = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    elif info == 31 and major in (2, 3, 4, 5):
        while True:  # indefinite length: items (chunks) until the break byte
            if pos >= len(data):
                raise CborError("malformed CBOR: indefinite item without a break")
            if data[pos] == 0xFF:
                return pos + 1
            if major in (2, 3) and data[pos] >> 5 != major:
                raise CborError("malformed CBOR: a chunk of another type in an indefinite string")
            pos = _cbor_walk(data, pos, depth + 1)
            if major == 5:
                pos = _cbor_walk(data, pos, depth + 1)
    else:
        raise CborError(f"malformed CBOR: reserved additional information {info}")
    if major in (2, 3):
        if value > len(data) - pos:
            raise CborError("malformed CBOR: string longer than the data")
        return pos + value
    if major in (4, 5):
        end = len(data)
        if value > end - pos:
            raise CborError("malformed CBOR: more items than bytes")
        inline = depth < _MAX_DEPTH  # a member one level down is still within the depth limit
        for _ in range(value * (2 if major == 5 else 1)):
            if pos >= end:
                raise CborError("malformed CBOR: truncated item")
            extra = _SKIP[data[pos]]
            if extra >= 0 and inline:  # a small scalar or short string: no call (most members of an event)
                pos += 1 + extra
            else:
                pos = _cbor_walk(data, pos, depth + 1)
        if pos > end:
            raise CborError("malformed CBOR: truncated item")
        return pos
    if major == 6:
        if value in _SHARED_TAGS:
            raise CborError(f"CBOR shared values (tag {value}) are not accepted")
        return _cbor_walk(data, pos, depth + 1)
    return pos  # 0, 1: integers; 7: simple values and floats


def decode_cbor(data: bytes, limit: int = MAX_ITEM) -> Any:
    """Strict CBOR: one item, no trailing bytes, bounded size (cbor2.loads ignores trailing bytes).

    Shared values (tags 28/29, which let an item contain itself) and nesting deeper than 64 are refused
    before cbor2 sees the bytes.
    """
    if len(data) > limit:
        raise CborError(f"CBOR item of {len(data)} bytes exceeds the {limit}-byte limit")
    end = _cbor_walk(data, 0, 0)
    if end != len(data):
        raise CborError(f"{len(data) - end} trailing bytes after the CBOR item")
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, RecursionError) as exc:
        raise CborError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise CborError(f"{len(data) - stream.tell()} trailing bytes after the CBOR item")
    return value
