"""Which finger the patient is asked for: the one the chip's fingerprint reference (DG3) is of."""

from __future__ import annotations

#: ISO/IEC 19794-4 finger position codes (the chip's DG3) -> (hand, finger)
FINGER_POSITIONS: dict[int, tuple[str, str]] = {
    1: ("right", "thumb"), 2: ("right", "index"), 3: ("right", "middle"), 4: ("right", "ring"),
    5: ("right", "little"), 6: ("left", "thumb"), 7: ("left", "index"), 8: ("left", "middle"),
    9: ("left", "ring"), 10: ("left", "little"),
}  # fmt: skip
_FINGER_VI = {"thumb": "ngón cái", "index": "ngón trỏ", "middle": "ngón giữa", "ring": "ngón áp út",
              "little": "ngón út"}  # fmt: skip
_HAND_VI = {"right": "phải", "left": "trái"}


def finger_prompt(position: int | None) -> tuple[str, str, str] | None:
    """The prompt (code, Vietnamese, English) naming the finger at ``position``; None when the chip does not say."""
    if position not in FINGER_POSITIONS:
        return None
    hand, finger = FINGER_POSITIONS[position]
    return (
        f"place_finger_{hand}_{finger}",
        f"Mời đặt {_FINGER_VI[finger]} {_HAND_VI[hand]} lên cảm biến.",
        f"Please place your {hand} {finger} finger on the sensor.",
    )
