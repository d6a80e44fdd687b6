"""Fingerprint images: one 8-bit grey format for the matcher, decoders for DG3, the module's own format.

The matcher works on 8-bit grey images at 500 ppi (ridges dark).  DG3 holds
ISO/IEC 19794-4 finger images: uncompressed (one byte a pixel), bit-packed
(``pixel_depth`` bits a pixel, most significant first), WSQ (the ``wsq`` Pillow
plugin), JPEG, JPEG 2000 or PNG (Pillow); the record declares the image
resolution, which is honoured by resampling to 500 ppi.  The ZhianTec module
takes 256×288 images at 4 bits a pixel, two pixels a byte (high nibble first):
:func:`to_module_image` makes one.

Images are biometric data: they live in memory only, and ``repr`` shows only the
geometry.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from agent.bio.protocol import BioError

TARGET_PPI = 500
MODULE_WIDTH, MODULE_HEIGHT = 256, 288
MAX_PIXELS = 2000 * 2000
MAX_ENCODED = 1 << 20  # a DG3 finger image above 1 MiB is not a fingerprint reference
# ISO/IEC 19794-4:2005 table 2, image compression algorithm
UNCOMPRESSED, BIT_PACKED, WSQ, JPEG, JPEG2000, PNG = 0, 1, 2, 3, 4, 5
_PILLOW_FORMATS = {WSQ: "WSQ", JPEG: "JPEG", JPEG2000: "JPEG2000", PNG: "PNG"}


class ImageError(BioError):
    """A fingerprint image that cannot be decoded or used (fail closed: no match is decided)."""


@dataclass(frozen=True)
class GrayImage:
    """8-bit grey, row-major, ``width * height`` bytes, at ``ppi`` pixels per inch."""

    width: int
    height: int
    pixels: bytes = field(repr=False)
    ppi: int = TARGET_PPI

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width * self.height > MAX_PIXELS:
            raise ImageError(f"image size {self.width}x{self.height} out of range")
        if len(self.pixels) != self.width * self.height:
            raise ImageError(f"{len(self.pixels)} pixel bytes for a {self.width}x{self.height} image")
        if not 100 <= self.ppi <= 2000:
            raise ImageError(f"image resolution {self.ppi} ppi out of range")


def unpack_bits(data: bytes, width: int, height: int, depth: int) -> bytes:
    """Bit-packed pixels (``depth`` bits each, most significant first, rows not padded) scaled to 0..255."""
    if depth not in (1, 2, 4, 8):
        raise ImageError(f"bit-packed images of {depth} bits a pixel are not supported")
    count = width * height
    need = (count * depth + 7) // 8
    if len(data) != need:
        raise ImageError(f"{len(data)} bytes for {count} pixels of {depth} bits (need {need})")
    if depth == 8:
        return bytes(data)
    per_byte, top = 8 // depth, (1 << depth) - 1
    out = bytearray(len(data) * per_byte)
    for k in range(per_byte):  # byte-table translation: fast without numpy
        shift = 8 - depth * (k + 1)
        table = bytes((b >> shift & top) * 255 // top for b in range(256))
        out[k::per_byte] = data.translate(table)
    return bytes(out[:count])


def pack_bits(pixels: bytes, depth: int) -> bytes:
    """The inverse of :func:`unpack_bits` (quantising 0..255 down to ``depth`` bits)."""
    if depth not in (1, 2, 4, 8):
        raise ImageError(f"cannot pack {depth} bits a pixel")
    if depth == 8:
        return bytes(pixels)
    per_byte, top = 8 // depth, (1 << depth) - 1
    padded = bytes(pixels) + bytes(-len(pixels) % per_byte)
    out = bytearray(len(padded) // per_byte)
    for k in range(per_byte):
        shift = 8 - depth * (k + 1)
        table = bytes(((v * top + 127) // 255) << shift for v in range(256))
        part = padded[k::per_byte].translate(table)
        out = bytearray(x | y for x, y in zip(out, part, strict=True)) if k else bytearray(part)
    return bytes(out)


def _pillow(data: bytes, compression: int) -> tuple[int, int, bytes]:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - a dependency of the agent
        raise ImageError("Pillow is not installed: compressed DG3 images cannot be decoded") from exc
    fmt = _PILLOW_FORMATS[compression]
    if fmt == "WSQ":
        try:
            import wsq  # noqa: F401  (registers the WSQ plugin with Pillow)
        except ImportError as exc:  # pragma: no cover
            raise ImageError("the wsq package is not installed: WSQ images cannot be decoded") from exc
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(f"{fmt} image of {img.width}x{img.height} pixels is too large")
            grey = img.convert("L")
            return grey.width, grey.height, grey.tobytes()
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{fmt} image does not decode: {exc}") from exc
    except Exception as exc:  # a decoder plugin on hostile bytes (the wsq plugin raises UnboundLocalError)
        raise ImageError(f"{fmt} image does not decode ({type(exc).__name__})") from exc


def decode(data: bytes, width: int, height: int, compression: int, depth: int = 8,
           resolution: tuple[int, int] = (TARGET_PPI, TARGET_PPI)) -> GrayImage:  # fmt: skip
    """One ISO/IEC 19794-4 finger image, resampled to 500 ppi; ``resolution`` in ppi (horizontal, vertical)."""
    if len(data) > MAX_ENCODED:
        raise ImageError(f"finger image of {len(data)} bytes is too large")
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise ImageError(f"declared image size {width}x{height} out of range")
    if compression == UNCOMPRESSED:
        if depth != 8 or len(data) != width * height:
            raise ImageError(f"uncompressed image: {len(data)} bytes for {width}x{height} at {depth} bits")
        pixels = bytes(data)
    elif compression == BIT_PACKED:
        pixels = unpack_bits(data, width, height, depth)
    elif compression in _PILLOW_FORMATS:
        w, h, pixels = _pillow(data, compression)
        if (w, h) != (width, height):
            raise ImageError(f"the image is {w}x{h} but its header declares {width}x{height}")
    else:
        raise ImageError(f"unsupported image compression {compression}")
    return resample(GrayImage(width, height, pixels, TARGET_PPI), resolution)


def resample(image: GrayImage, resolution: tuple[int, int]) -> GrayImage:
    """``image`` taken at ``resolution`` ppi (h, v), scaled to 500 ppi; unchanged within 2 %."""
    h_ppi, v_ppi = resolution
    if not (100 <= h_ppi <= 2000 and 100 <= v_ppi <= 2000):
        raise ImageError(f"declared resolution {h_ppi}x{v_ppi} ppi out of range")
    if abs(h_ppi - TARGET_PPI) <= 10 and abs(v_ppi - TARGET_PPI) <= 10:
        return GrayImage(image.width, image.height, image.pixels, TARGET_PPI)
    from PIL import Image

    width = max(1, round(image.width * TARGET_PPI / h_ppi))
    height = max(1, round(image.height * TARGET_PPI / v_ppi))
    if width * height > MAX_PIXELS:
        raise ImageError(f"resampled image of {width}x{height} pixels is too large")
    src = Image.frombytes("L", (image.width, image.height), image.pixels)
    out = src.resize((width, height), Image.Resampling.LANCZOS)
    return GrayImage(width, height, out.tobytes(), TARGET_PPI)


def fit(image: GrayImage, width: int, height: int, background: int = 255) -> GrayImage:
    """Centre ``image`` on a ``width`` × ``height`` canvas: cropped where larger, padded where smaller."""
    out = bytearray([background]) * (width * height)
    src_x0, dst_x0 = max(0, (image.width - width) // 2), max(0, (width - image.width) // 2)
    src_y0, dst_y0 = max(0, (image.height - height) // 2), max(0, (height - image.height) // 2)
    cols = min(width, image.width)
    for row in range(min(height, image.height)):
        s = (src_y0 + row) * image.width + src_x0
        d = (dst_y0 + row) * width + dst_x0
        out[d : d + cols] = image.pixels[s : s + cols]
    return GrayImage(width, height, bytes(out), image.ppi)


def to_module_image(image: GrayImage) -> bytes:
    """The module's DownImage format: 256×288 at 500 ppi, 4 bits a pixel, two pixels a byte."""
    if abs(image.ppi - TARGET_PPI) > 10:
        image = resample(image, (image.ppi, image.ppi))
    return pack_bits(fit(image, MODULE_WIDTH, MODULE_HEIGHT).pixels, 4)


def from_module_image(data: bytes) -> GrayImage:
    """An image uploaded by the module (UpImage) as an 8-bit image."""
    return GrayImage(MODULE_WIDTH, MODULE_HEIGHT, unpack_bits(data, MODULE_WIDTH, MODULE_HEIGHT, 4))


def encode(image: GrayImage, compression: int) -> bytes:
    """Encode for a 19794-4 record (the simulator's DG3 and tests); WSQ at 0.75 bits a pixel."""
    if compression == UNCOMPRESSED:
        return image.pixels
    if compression == BIT_PACKED:
        return pack_bits(image.pixels, 4)
    from PIL import Image

    fmt = _PILLOW_FORMATS.get(compression)
    if fmt is None:
        raise ImageError(f"unsupported image compression {compression}")
    if fmt == "WSQ":
        import wsq  # noqa: F401
    src = Image.frombytes("L", (image.width, image.height), image.pixels)
    buf = io.BytesIO()
    if fmt == "WSQ":
        src.save(buf, "WSQ", bitrate=0.75)
    elif fmt == "JPEG2000":
        src.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[8])
    else:
        src.save(buf, fmt)
    return buf.getvalue()


__all__ = ["GrayImage", "ImageError", "decode", "decode_view", "encode", "fit", "from_module_image", "pack_bits",
           "resample", "to_module_image", "unpack_bits"]  # fmt: skip


def decode_view(view: Any) -> GrayImage:
    """A DG3 finger view (:class:`agent.card.dg3.FingerView`, or anything with its fields) decoded, at 500 ppi."""
    return decode(view.image, view.width, view.height, view.compression, view.pixel_depth, view.resolution_ppi)
