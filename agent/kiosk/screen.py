"""What the patient's screen shows, as data: one state per screen, and the rules of what may be on it.

The flow speaks in prompt codes (``ready``, ``reading``, ``place_finger_right_index``
...) and outcomes (:class:`agent.app.ports.Shown`).  :class:`KioskModel` turns them
into :class:`Screen` states the page renders one at a time.  It is pure (the clock
is an argument) so every rule is tested without a browser:

- the outcome screen stays up for ``hold`` seconds with a countdown, even though the
  flow already prompts "take your card" and "ready" behind it; a new patient (a
  scan, a card, a manual entry) replaces it at once;
- notices (card pulled, wrong keys, time-out) also count down back to ready;
- personal data: only the given name and the masked ID number, only on the
  outcome screen (``062******394``); the idle screen never carries any;
- faults (reader or fingerprint module missing, offline, backlog) ride on every screen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_HANDS = ("right", "left")
_FINGERS = ("thumb", "index", "middle", "ring", "little")


def mask_id(id_number: str) -> str:
    """``062******394``: the first and last three digits only; short numbers are masked whole."""
    n = len(id_number)
    if n < 9:
        return "*" * n
    return id_number[:3] + "*" * (n - 6) + id_number[-3:]


def given_name(full_name: str | None) -> str | None:
    """The given name: the last word of a Vietnamese full name (family, middle, given)."""
    if not full_name:
        return None
    words = full_name.replace("<", " ").split()
    if not words:
        return None
    name = words[-1]
    return name.capitalize() if name.isupper() else name


# --- faults ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    code: str
    vi: str
    en: str


def faults_from_status(status: Mapping[str, Any], backlog_warn: int = 50) -> tuple[Fault, ...]:
    """What is wrong with the gate, from the daemon's status document (the same one the hub gets).

    Keys read: ``devices`` (``card reader``, ``fingerprint module``: anything but ``ok`` or
    ``card present`` is a fault), ``uplink.connected`` (absent uplink = offline), ``queue.pending``.
    """
    faults: list[Fault] = []
    devices = status.get("devices")
    devices = devices if isinstance(devices, Mapping) else {}
    reader = devices.get("card reader")
    if reader is not None and reader not in ("ok", "card present"):
        faults.append(Fault("reader", "Đầu đọc thẻ không hoạt động", "Card reader not working"))
    finger = devices.get("fingerprint module")
    if finger is not None and finger != "ok":
        faults.append(Fault("finger", "Cảm biến vân tay không hoạt động", "Fingerprint sensor not working"))
    uplink = status.get("uplink")
    if not isinstance(uplink, Mapping) or not uplink.get("connected"):
        faults.append(Fault("offline", "Ngoại tuyến: kết quả là tạm thời", "Offline: decisions are provisional"))
    queue = status.get("queue")
    pending = queue.get("pending") if isinstance(queue, Mapping) else None
    if isinstance(pending, int) and pending >= backlog_warn:
        faults.append(Fault("backlog", f"{pending} lượt chưa gửi lên máy chủ", f"{pending} check-ins not yet sent"))
    return tuple(faults)


STATUS_UNKNOWN = Fault("status", "Không kiểm tra được trạng thái máy", "Gate status unknown")


# --- screens --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screen:
    """One screen of the kiosk page.  ``to_json`` is what the page receives."""

    kind: str  # idle | need_keys | need_card | reading | finger | notice | outcome
    code: str  # the prompt code or the outcome
    title_vi: str
    title_en: str
    tone: str = "neutral"  # neutral | green | amber | red
    picture: str = "card"  # card | qr | reading | finger | take_card | ok | desk | stop | notice
    detail_vi: str = ""
    detail_en: str = ""
    hand: str = ""  # right | left (finger screen)
    finger: str = ""  # thumb | index | middle | ring | little (finger screen)
    given_name: str | None = field(default=None, repr=False)  # outcome screen only
    masked_id: str | None = None  # outcome screen only
    note_vi: str = ""  # "take your card" under an outcome
    note_en: str = ""
    until: float | None = None  # monotonic time the countdown ends
    faults: tuple[Fault, ...] = ()
    seq: int = 0

    def to_json(self, now: float) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc.pop("until")
        doc["countdown"] = None if self.until is None else max(0, round(self.until - now, 1))
        doc["faults"] = [dataclasses.asdict(f) for f in self.faults]
        return doc


_PROMPT_KINDS: dict[str, tuple[str, str, str]] = {  # code -> (kind, picture, tone)
    "ready": ("idle", "card", "neutral"),
    "need_card": ("need_card", "card", "neutral"),
    "need_keys": ("need_keys", "qr", "neutral"),
    "reading": ("reading", "reading", "neutral"),
    "take_card": ("take_card", "take_card", "neutral"),
    "card_removed": ("notice", "card", "amber"),
    "wrong_keys": ("notice", "qr", "amber"),
    "read_failed": ("notice", "card", "amber"),
    "timeout": ("notice", "notice", "amber"),
}

#: outcome -> (title vi, title en, tone, picture); the reason goes below in plain words
OUTCOMES: dict[str, tuple[str, str, str, str]] = {
    "admitted": ("Mời vào", "Please go in", "green", "ok"),
    "admitted_provisional": ("Mời vào (tạm thời)", "Please go in (provisional)", "amber", "ok"),
    "refer_desk": ("Mời đến quầy tiếp đón", "Please go to the desk", "amber", "desk"),
    "refused": ("Không được vào", "Entry refused", "red", "stop"),
}

IDLE = Screen("idle", "ready", "Mời đặt thẻ căn cước lên đầu đọc", "Please place your ID card on the reader")


def prompt_screen(code: str, message_vi: str, message_en: str) -> Screen:
    """The screen for one prompt of the flow (texts from the flow, picture and tone from the code)."""
    if code == "ready":
        return IDLE
    if code.startswith("place_finger"):
        hand, finger = "right", "index"
        parts = code.split("_")
        if len(parts) == 4 and parts[2] in _HANDS and parts[3] in _FINGERS:
            hand, finger = parts[2], parts[3]
        return Screen("finger", code, _headline(message_vi), _headline(message_en), picture="finger",
                      hand=hand, finger=finger)  # fmt: skip
    kind, picture, tone = _PROMPT_KINDS.get(code, ("notice", "notice", "amber"))
    return Screen(kind, code, _headline(message_vi), _headline(message_en), tone=tone, picture=picture)


def outcome_screen(
    outcome: str,
    message_vi: str,
    message_en: str,
    *,
    gate_opens: bool,
    full_name: str | None = None,
    id_number: str | None = None,
) -> Screen:
    """The outcome: colour and icon by outcome, the reason in plain words, given name and masked ID.

    Fails closed: an admission the gate does not act on (nothing stored) or an outcome this
    page does not know is shown as "go to the desk", never green.
    """
    if outcome in ("admitted", "admitted_provisional") and not gate_opens:
        outcome = "refer_desk"
    title_vi, title_en, tone, picture = OUTCOMES.get(outcome, OUTCOMES["refer_desk"])
    return Screen(
        "outcome", outcome, title_vi, title_en, tone=tone, picture=picture,
        detail_vi=message_vi, detail_en=message_en, given_name=given_name(full_name),
        masked_id=mask_id(id_number) if id_number else None,
    )  # fmt: skip


def _headline(text: str) -> str:
    return text.rstrip(". ")


class KioskModel:
    """The sequence of screens: prompts, outcomes, countdowns and faults in, one current screen out."""

    def __init__(self, hold: float = 8.0) -> None:
        self.hold = hold
        self.current = IDLE
        self.seq = 0
        self.faults: tuple[Fault, ...] = ()
        self._after: str = "ready"  # where the countdown returns to: "ready" or "take_card"

    def _put(self, screen: Screen) -> Screen:
        self.seq += 1
        self.current = dataclasses.replace(screen, faults=self.faults, seq=self.seq)
        return self.current

    def _counting(self, now: float) -> bool:
        until = self.current.until
        return until is not None and now < until

    def prompt(self, code: str, message_vi: str, message_en: str, now: float) -> Screen | None:
        """A prompt from the flow; returns the new screen, or None when the screen stays as it is."""
        if self._counting(now) and self.current.kind == "outcome" and code in ("take_card", "ready"):
            self._after = code
            if code == "take_card":
                return self._put(dataclasses.replace(self.current, note_vi=_headline(message_vi),
                                                     note_en=_headline(message_en)))  # fmt: skip
            if code == "ready" and self.current.note_vi:  # the card was taken
                return self._put(dataclasses.replace(self.current, note_vi="", note_en=""))
            return None
        screen = prompt_screen(code, message_vi, message_en)
        if screen.kind == "notice":
            self._after = "ready"
            screen = dataclasses.replace(screen, until=now + self.hold)
        return self._put(screen)

    def outcome(self, screen: Screen, now: float) -> Screen:
        self._after = "ready"
        return self._put(dataclasses.replace(screen, until=now + self.hold))

    def tick(self, now: float) -> Screen | None:
        """Ends a countdown that ran out; returns the screen that follows, or None."""
        if self.current.until is None or now < self.current.until:
            return None
        if self._after == "take_card":
            return self._put(prompt_screen("take_card", "Mời lấy lại thẻ", "Please take your card"))
        return self._put(IDLE)

    def set_faults(self, faults: tuple[Fault, ...]) -> Screen | None:
        if faults == self.faults:
            return None
        self.faults = faults
        return self._put(self.current)
