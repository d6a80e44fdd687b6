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


def decode_cbor(data: bytes, limit: int = MAX_ITEM) -> Any:
    """Strict CBOR: one item, no trailing bytes, bounded size (cbor2.loads ignores trailing bytes)."""
    if len(data) > limit:
        raise CborError(f"CBOR item of {len(data)} bytes exceeds the {limit}-byte limit")
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, RecursionError) as exc:
        raise CborError(f"malformed CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise CborError(f"{len(data) - stream.tell()} trailing bytes after the CBOR item")
    return value
