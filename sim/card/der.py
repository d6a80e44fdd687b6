"""The simulator's one set of BER-TLV / DER helpers (ISO/IEC 7816-4 5.2, X.690).

Written for the simulated card alone, apart from the agent's TLV parser, so that a
misreading of the encoding rules on one side shows up as a failure against the
other.  Writers produce definite-length DER; :func:`read_tlvs` walks the few
BER-TLV objects a card receives and raises :class:`ValueError` on junk.
"""

from __future__ import annotations

__all__ = ["der_len", "integer", "oid", "read_tlvs", "tlv", "tlv_dict", "utf8"]


def der_len(n: int) -> bytes:
    """A definite length: short form below 128, long form above."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """Tag (one or more bytes, as the integer's big-endian bytes), DER length, value."""
    return tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big") + der_len(len(value)) + value


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER TLV from its dotted form."""
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            enc.append(0x80 | (p & 0x7F))
        out += bytes(reversed(enc))
    return tlv(0x06, bytes(out))


def integer(n: int) -> bytes:
    """A non-negative INTEGER TLV (a leading zero byte when the top bit is set)."""
    return tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big"))


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode("utf-8"))


def read_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """The top-level (tag, value) pairs of ``data``; ValueError on a truncated or malformed object."""
    out, i = [], 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            while True:
                if i >= len(data):
                    raise ValueError("truncated tag")
                tag = (tag << 8) | data[i]
                i += 1
                if not data[i - 1] & 0x80:
                    break
        if i >= len(data):
            raise ValueError("truncated length")
        length = data[i]
        i += 1
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 3 or i + n > len(data):
                raise ValueError("bad length")
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        if i + length > len(data):
            raise ValueError("value runs past the end")
        out.append((tag, data[i : i + length]))
        i += length
    return out


def tlv_dict(data: bytes) -> dict[int, bytes]:
    """:func:`read_tlvs` as a mapping (the last object of a tag wins)."""
    return dict(read_tlvs(data))
