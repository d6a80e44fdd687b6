"""DG3 finger images: every 19794-4 encoding decodes to the same 8-bit image, resolution honoured, bad input typed."""

from __future__ import annotations

import hashlib
import math
import random

import pytest

from agent.bio import image as bi
from agent.bio.image import GrayImage, ImageError


def gradient(width: int = 64, height: int = 80) -> GrayImage:
    """Ridges: a 9-pixel period, bending slowly (what WSQ and JPEG 2000 are made for)."""
    return GrayImage(width, height, bytes(round(128 + 100 * math.sin(2 * math.pi * (x + 0.3 * y + 0.004 * y * y) / 9))
                                          for y in range(height) for x in range(width)))


def test_bit_packing_vectors() -> None:
    # 4 bits: high nibble first; values scaled 0..15 -> 0..255
    assert bi.pack_bits(bytes([0, 255, 17, 34]), 4) == bytes([0x0F, 0x12])
    assert bi.unpack_bits(bytes([0x0F, 0x12]), 4, 1, 4) == bytes([0, 255, 17, 34])
    # 1 bit, 9 pixels: rows are not padded, the last byte is
    assert bi.pack_bits(bytes([0, 255, 255, 0, 255, 0, 0, 0, 255]), 1) == bytes([0x68, 0x80])
    assert bi.unpack_bits(bytes([0x68, 0x80]), 3, 3, 1) == bytes([0, 255, 255, 0, 255, 0, 0, 0, 255])
    # 2 bits
    assert bi.unpack_bits(bytes([0b00011011]), 4, 1, 2) == bytes([0, 85, 170, 255])


def test_bit_packed_round_trip_keeps_four_bits() -> None:
    pixels = random.Random(1).randbytes(256 * 288)
    packed = bi.pack_bits(pixels, 4)
    assert len(packed) == 256 * 288 // 2
    back = bi.unpack_bits(packed, 256, 288, 4)
    assert max(abs(a - b) for a, b in zip(pixels, back, strict=True)) <= 8
    assert bi.unpack_bits(bi.pack_bits(back, 4), 256, 288, 4) == back


@pytest.mark.parametrize("compression", [bi.UNCOMPRESSED, bi.BIT_PACKED, bi.WSQ, bi.JPEG2000, bi.PNG, bi.JPEG])
def test_every_encoding_decodes_to_the_image(compression: int) -> None:
    img = gradient()
    data = bi.encode(img, compression)
    depth = 4 if compression == bi.BIT_PACKED else 8
    out = bi.decode(data, img.width, img.height, compression, depth)
    assert (out.width, out.height, out.ppi) == (img.width, img.height, 500)
    error = sum(abs(a - b) for a, b in zip(img.pixels, out.pixels, strict=True)) / len(img.pixels)
    assert error < {bi.UNCOMPRESSED: 0.01, bi.PNG: 0.01, bi.BIT_PACKED: 8}.get(compression, 12)
    if compression in (bi.WSQ, bi.JPEG2000):
        assert len(data) < len(img.pixels) / 3  # really compressed


def test_declared_resolution_is_honoured() -> None:
    img = gradient(100, 120)
    out = bi.decode(img.pixels, 100, 120, bi.UNCOMPRESSED, 8, resolution=(1000, 1000))
    assert (out.width, out.height, out.ppi) == (50, 60, 500)
    out = bi.decode(img.pixels, 100, 120, bi.UNCOMPRESSED, 8, resolution=(250, 500))
    assert (out.width, out.height) == (200, 120)
    same = bi.decode(img.pixels, 100, 120, bi.UNCOMPRESSED, 8, resolution=(508, 492))
    assert same.pixels == img.pixels


@pytest.mark.parametrize(
    ("data", "compression", "depth", "message"),
    [
        (b"\x00" * 10, bi.UNCOMPRESSED, 8, "uncompressed"),
        (b"\x00" * 10, bi.BIT_PACKED, 4, "bytes for"),
        (b"\x00" * 10, bi.BIT_PACKED, 3, "bits a pixel"),
        (b"\xff\xa0garbage-not-wsq", bi.WSQ, 8, "WSQ"),
        (b"\x00\x00\x00\x0cjP  garbage", bi.JPEG2000, 8, "JPEG2000"),
        (b"\x00" * 10, 9, 8, "compression 9"),
    ],
)
def test_bad_images_are_typed_errors(data: bytes, compression: int, depth: int, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        bi.decode(data, 64, 80, compression, depth)


def test_header_and_image_disagree() -> None:
    data = bi.encode(gradient(64, 80), bi.PNG)
    with pytest.raises(ImageError, match="declares 64x90"):
        bi.decode(data, 64, 90, bi.PNG)


def test_sizes_are_bounded() -> None:
    with pytest.raises(ImageError):
        bi.decode(b"\x00", 5000, 5000, bi.UNCOMPRESSED)
    with pytest.raises(ImageError):
        bi.decode(b"\x00" * (2 << 20), 64, 80, bi.WSQ)
    with pytest.raises(ImageError):
        GrayImage(10, 10, b"\x00" * 99)


def test_module_image_format() -> None:
    img = gradient(300, 250)
    data = bi.to_module_image(img)
    assert len(data) == 256 * 288 // 2
    back = bi.from_module_image(data)
    assert (back.width, back.height) == (256, 288)
    # centred: cropped horizontally (300 -> 256), padded vertically (250 -> 288) with white
    assert back.pixels[:256] == b"\xff" * 256
    row = 19 + 100
    src = img.pixels[100 * 300 + 22 : 100 * 300 + 22 + 256]
    assert max(abs(a - b) for a, b in zip(back.pixels[row * 256 : row * 256 + 256], src, strict=True)) <= 8


def test_repr_shows_no_pixels() -> None:
    img = gradient()
    assert hashlib.sha256(img.pixels).hexdigest()[:8] not in repr(img)
    assert "pixels" not in repr(img)


def test_truncated_wsq_is_a_typed_error() -> None:
    data = bi.encode(gradient(), bi.WSQ)
    for cut in (10, 40, 200, len(data) // 2):
        with pytest.raises(ImageError, match="WSQ"):
            bi.decode(data[:cut], 64, 80, bi.WSQ)
