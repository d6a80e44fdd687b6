"""DG3: fingerprint references (ICAO 9303-10, 4.7.3), CBEFF-wrapped ISO/IEC 19794-4 finger image records.

``63 { 7F61 { 02 count, 7F60 { A1 header, 5F2E record }* } }``; each record is
``FIR\\0`` ``010\\0``, a 32-byte general header (record length, device, acquisition
level, number of fingers, scale units, scan and image resolutions, pixel depth,
compression), then per finger view a 14-byte header (data length, finger
position, view count and number, quality, impression type, width, height) and the
image data.  The image bytes go to the fingerprint module as the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.card import tlv
from agent.card.errors import ParseError

COMPRESSION = {0: "uncompressed", 1: "bit-packed", 2: "WSQ", 3: "JPEG", 4: "JPEG2000", 5: "PNG"}
POSITIONS = {
    0: "unknown", 1: "right thumb", 2: "right index", 3: "right middle", 4: "right ring", 5: "right little",
    6: "left thumb", 7: "left index", 8: "left middle", 9: "left ring", 10: "left little",
}  # fmt: skip
GENERAL_HEADER = 32
VIEW_HEADER = 14


@dataclass(frozen=True)
class FingerView:
    position: int
    view: int
    quality: int
    impression: int
    width: int
    height: int
    compression: int
    resolution: tuple[int, int]
    pixel_depth: int
    image: bytes = field(repr=False)
    scale_units: int = 1  # 1: resolution in pixels per inch, 2: pixels per centimetre

    @property
    def resolution_ppi(self) -> tuple[int, int]:
        if self.scale_units == 2:
            return round(self.resolution[0] * 2.54), round(self.resolution[1] * 2.54)
        return self.resolution

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": POSITIONS.get(self.position, str(self.position)),
            "format": COMPRESSION.get(self.compression, str(self.compression)),
            "width": self.width,
            "height": self.height,
            "resolution_ppi": list(self.resolution_ppi),
            "quality": self.quality,
            "image_bytes": len(self.image),
        }


@dataclass(frozen=True)
class Dg3:
    fingers: tuple[FingerView, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"fingers": [f.as_dict() for f in self.fingers]}


def parse_finger_record(data: bytes, where: str = "DG3 finger record") -> list[FingerView]:
    if len(data) < GENERAL_HEADER or data[:4] != b"FIR\x00":
        raise ParseError("not an ISO/IEC 19794-4 finger image record (no FIR header)", where)
    if data[4:8] != b"010\x00":
        raise ParseError(f"unsupported 19794-4 version {data[4:8]!r}", where)
    length = int.from_bytes(data[8:14], "big")
    if length != len(data):
        raise ParseError(f"record length {length} but {len(data)} bytes present", where)
    count, units = data[18], data[19]
    if units not in (1, 2):
        raise ParseError(f"unknown scale units {units} (1 ppi, 2 ppcm)", where)
    resolution = (int.from_bytes(data[24:26], "big"), int.from_bytes(data[26:28], "big"))
    depth, compression = data[28], data[29]
    views: list[FingerView] = []
    offset = GENERAL_HEADER
    for n in range(count):
        if offset + VIEW_HEADER > len(data):
            raise ParseError(f"finger view {n + 1} of {count} is truncated", where)
        h = data[offset : offset + VIEW_HEADER]
        size = int.from_bytes(h[0:4], "big")
        if size < VIEW_HEADER or offset + size > len(data):
            raise ParseError(f"finger view {n + 1} claims {size} bytes beyond the record", where)
        views.append(FingerView(
            position=h[4], view=h[6], quality=h[7], impression=h[8],
            width=int.from_bytes(h[9:11], "big"), height=int.from_bytes(h[11:13], "big"),
            compression=compression, resolution=resolution, pixel_depth=depth,
            image=data[offset + VIEW_HEADER : offset + size], scale_units=units,
        ))  # fmt: skip
        offset += size
    if offset != len(data):
        raise ParseError(f"{len(data) - offset} bytes after the last finger view", where)
    return views


def parse_dg3(data: bytes) -> Dg3:
    where = "DG3"
    group = tlv.parse_single(data, 0x63, where).child(0x7F61, where)
    items = group.children(where)
    if not items or items[0].tag != 0x02:
        raise ParseError("the biometric information group has no instance count", where)
    count = int.from_bytes(items[0].value, "big")
    templates = [item for item in items[1:] if item.tag == 0x7F60]
    if len(templates) != count:
        raise ParseError(f"announces {count} biometric templates, holds {len(templates)}", where)
    fingers: list[FingerView] = []
    for template in templates:
        block = template.find(0x5F2E, where) or template.find(0x7F2E, where)
        if block is None:
            raise ParseError("a biometric template has no data block (5F2E)", where)
        fingers += parse_finger_record(block.value)
    return Dg3(tuple(fingers))
