"""BER-TLV as ISO/IEC 7816-4 and ICAO 9303 use it (tags of one to three bytes, definite lengths).

Everything the chip sends is parsed through here, so every malformation becomes
a :class:`~agent.card.errors.ParseError` naming what was being parsed; nothing
below raises ``IndexError`` or ``ValueError`` at a caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from agent.card.errors import ParseError

#: longest length field we accept (0x84 + 4 bytes); no LDS object comes near it
_MAX_LENGTH_BYTES = 4


def encode_tag(tag: int) -> bytes:
    """The tag as its big-endian bytes (``0x5F1F`` -> ``5F 1F``)."""
    if tag < 0:
        raise ValueError("tag must be non-negative")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    """Definite-form length: short form below 128, else ``0x80 | n`` and n bytes."""
    if length < 0:
        raise ValueError("length must be non-negative")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, value: bytes) -> bytes:
    """One TLV object."""
    return encode_tag(tag) + encode_length(len(value)) + value


def read_tag(data: bytes, offset: int, where: str | None = None) -> tuple[int, int]:
    """Decode the tag at ``offset``; return ``(tag, offset after it)``."""
    if offset >= len(data):
        raise ParseError(f"tag expected at offset {offset}, data ends", where)
    first = data[offset]
    tag = first
    offset += 1
    if first & 0x1F == 0x1F:
        while True:
            if offset >= len(data):
                raise ParseError("multi-byte tag runs past the end", where)
            byte = data[offset]
            tag = (tag << 8) | byte
            offset += 1
            if not byte & 0x80:
                break
            if tag > 0xFFFFFF:
                raise ParseError("tag longer than three bytes", where)
    return tag, offset


def read_length(data: bytes, offset: int, where: str | None = None) -> tuple[int, int]:
    """Decode the definite length at ``offset``; return ``(length, offset after it)``."""
    if offset >= len(data):
        raise ParseError(f"length expected at offset {offset}, data ends", where)
    first = data[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if count == 0:
        raise ParseError("indefinite length is not allowed", where)
    if count > _MAX_LENGTH_BYTES:
        raise ParseError(f"length field of {count} bytes is too long", where)
    if offset + count > len(data):
        raise ParseError("length field runs past the end", where)
    return int.from_bytes(data[offset : offset + count], "big"), offset + count


@dataclass(frozen=True)
class Tlv:
    """One decoded object; ``value`` holds the raw value bytes (children undecoded)."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        """Bit 6 of the first tag byte (ISO/IEC 7816-4, 5.2.2)."""
        return bool(encode_tag(self.tag)[0] & 0x20)

    def to_bytes(self) -> bytes:
        return encode(self.tag, self.value)

    def children(self, where: str | None = None) -> list[Tlv]:
        """The objects inside a constructed value."""
        return parse_all(self.value, where)

    def child(self, tag: int, where: str | None = None) -> Tlv:
        """The first direct child with ``tag``; :class:`ParseError` when absent."""
        for item in self.children(where):
            if item.tag == tag:
                return item
        raise ParseError(f"tag {tag:02X} missing inside {self.tag:02X}", where)

    def find(self, tag: int, where: str | None = None) -> Tlv | None:
        """The first direct child with ``tag``, or ``None``."""
        return next((item for item in self.children(where) if item.tag == tag), None)


def parse_one(data: bytes, offset: int = 0, where: str | None = None) -> tuple[Tlv, int]:
    """Decode one object at ``offset``; return it and the offset after it."""
    tag, offset = read_tag(data, offset, where)
    length, offset = read_length(data, offset, where)
    end = offset + length
    if end > len(data):
        raise ParseError(f"object {tag:02X} declares {length} bytes, only {len(data) - offset} present", where)
    return Tlv(tag, bytes(data[offset:end])), end


def iter_tlv(data: bytes, where: str | None = None) -> Iterator[Tlv]:
    """Every object in ``data``, which must hold whole objects and nothing else.

    ``00`` and ``FF`` padding between objects (ISO/IEC 7816-4, 5.2.2) is skipped.
    """
    offset = 0
    while offset < len(data):
        if data[offset] in (0x00, 0xFF):
            offset += 1
            continue
        item, offset = parse_one(data, offset, where)
        yield item


def parse_all(data: bytes, where: str | None = None) -> list[Tlv]:
    """All objects in ``data`` (see :func:`iter_tlv`)."""
    return list(iter_tlv(data, where))


def parse_single(data: bytes, tag: int | None = None, where: str | None = None) -> Tlv:
    """``data`` is exactly one object (with ``tag`` if given); no trailing bytes allowed."""
    item, end = parse_one(data, 0, where)
    if tag is not None and item.tag != tag:
        raise ParseError(f"expected tag {tag:02X}, found {item.tag:02X}", where)
    if end != len(data):
        raise ParseError(f"{len(data) - end} trailing bytes after object {item.tag:02X}", where)
    return item


def total_length(header: bytes, where: str | None = None) -> int:
    """Full size of the object whose first bytes are ``header`` (to size a file from its first read)."""
    _, offset = read_tag(header, 0, where)
    length, offset = read_length(header, offset, where)
    return offset + length
