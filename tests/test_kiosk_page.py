"""The patient's kiosk page in a real browser (Debian chromium, headless) over a simulated gate.

The check-in flow runs in its own thread with in-process devices the test holds and
releases, so every state stays on the screen long enough to be asserted and
photographed.  The page is asserted through its DOM: which screen, which picture and
finger, the Vietnamese and English texts, tone, given name and masked ID, countdown,
fault strip.  The browser's own network log proves the page loaded nothing from
outside loopback.  Screenshots go to ``$KIOSK_SCREENSHOTS`` (the README's
``docs/screens/``) when it is set, else to the test's temporary directory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.app.eligibility import EligibilityChain
from agent.app.flow import CheckinFlow, FlowTimeouts
from agent.app.outputs import MemoryOutput, MultiOutput
from agent.app.policy import Policy
from agent.app.ports import CardInserted, CardRemoved, ChipRead, ManualEntry
from agent.card.errors import AccessDenied
from agent.card.keys import AccessKeys
from agent.errors import CardRemovedError
from agent.kiosk.output import KioskOutput
from agent.kiosk.server import static_file
from agent.model import ChipFacts, FingerFacts, FingerStatus
from tests.browser import Browser, browser, off_loopback  # noqa: F401 - the fixture
from tests.flow_fakes import PERSON, MemorySink
from tests.test_flow import KEYS, RECORD, cache

pytestmark = pytest.mark.slow

GENUINE = ChipFacts("PACE", True, chip_auth=True, finger_reference=b"ref", finger_position=7)
HEALTHY = {"devices": {"card reader": "ok", "fingerprint module": "ok"}, "uplink": {"connected": True},
           "queue": {"pending": 0}}  # fmt: skip


class HeldReader:
    """A chip that answers when the test says so."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()
        self.facts = GENUINE
        self.error: Exception | None = None

    def read(self, keys: AccessKeys) -> ChipRead:
        self.release.wait(10)
        if self.error is not None:
            raise self.error
        return ChipRead(PERSON, self.facts)


class HeldFinger:
    """A finger that lands on the sensor when the test says so."""

    def __init__(self) -> None:
        self.placed = threading.Event()
        self.placed.set()
        self.score = 95

    def capture(self, cancel: threading.Event, timeout: float) -> bool:
        while not cancel.is_set():
            if self.placed.wait(0.05):
                return True
        return False

    def forget(self) -> None:
        pass

    def match(self, reference: bytes) -> FingerFacts:
        return FingerFacts(FingerStatus.MATCH if self.score >= 50 else FingerStatus.NO_MATCH, self.score)


@dataclasses.dataclass
class Gate:
    flow: CheckinFlow
    kiosk: KioskOutput
    reader: HeldReader
    finger: HeldFinger
    sink: MemorySink
    memory: MemoryOutput
    status: dict[str, Any]
    shots: Path

    def submit(self, *triggers: Any) -> None:
        for trigger in triggers:
            self.flow.submit(trigger)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    reader, finger, sink, memory = HeldReader(), HeldFinger(), MemorySink(), MemoryOutput()
    kiosk = KioskOutput("127.0.0.1", 0, hold=1.5, fault_poll=0.1)
    status: dict[str, Any] = dict(HEALTHY)
    kiosk.status_source = lambda: status
    flow = CheckinFlow(
        reader=reader, eligibility=EligibilityChain(cache(RECORD)), sink=sink, output=MultiOutput([memory, kiosk]),
        policy=Policy.default(), facility_code="01001", finger=finger,
        timeouts=FlowTimeouts(keys=1.0, card=2.0, read=5, finger=5, outcome=0.1, card_removal=1.0),
        today=lambda: dt.date(2026, 11, 24),
    )  # fmt: skip
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            flow.step(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    shots = Path(os.environ.get("KIOSK_SCREENSHOTS") or tmp_path / "screens")
    try:
        yield Gate(flow, kiosk, reader, finger, sink, memory, status, shots)
    finally:
        stop.set()
        flow.stopping.set()
        reader.release.set()
        finger.placed.set()
        thread.join(10)
        kiosk.close()


def body_text(b: Browser) -> str:
    return str(b.js("return document.body.innerText"))


def expect_outcome(b: Browser, gate: Gate, outcome: str, tone: str, title_vi: str, name: str = "An") -> None:
    b.wait(lambda: b.data("kind") == "outcome" and b.data("code") == outcome, what=f"outcome {outcome}")
    assert b.js("return document.body.className") == f"tone-{tone}"
    assert b.text("title-vi") == title_vi
    shown = gate.memory.shown[-1]
    assert b.text("detail-vi") == shown.message_vi and b.text("detail-en") == shown.message_en
    assert b.text("given-name") == name and b.text("masked-id") == "001******345"
    assert PERSON.id_number not in body_text(b)
    assert b.text("countdown").startswith("Quay lại sau")


def back_to_ready(b: Browser, gate: Gate) -> None:
    gate.submit(CardRemoved())
    b.wait_code("ready", timeout=6)
    text = body_text(b)
    assert "An" not in text.split() and "*" not in text and PERSON.id_number not in text


def test_a_gate_through_every_state_and_outcome(browser: Browser, gate: Gate) -> None:  # noqa: F811
    b = browser
    b.resize(800, 480)
    b.open(gate.kiosk.url)
    b.wait_code("ready")
    assert b.text("title-vi") == "Mời đặt thẻ căn cước lên đầu đọc" and b.data("picture") == "card"
    assert b.text("title-en") == "Please place your ID card on the reader"
    assert b.js("return document.fonts.check('700 40px \"Gate Sans\"', 'Đặt ngón trỏ')") is True
    b.screenshot(gate.shots / "01-ready.png")

    # a card without keys: scan the QR
    gate.submit(CardInserted())
    b.wait_code("need_keys")
    assert b.data("picture") == "qr" and b.text("title-vi").startswith("Mời quét mã QR")
    b.screenshot(gate.shots / "02-scan-qr.png")

    # the chip is read (held), no finger module for this one
    gate.flow.finger = None
    gate.reader.release.clear()
    gate.submit(KEYS)
    b.wait_code("reading")
    assert b.data("picture") == "reading" and b.js("return getComputedStyle(progress).display") == "block"
    b.screenshot(gate.shots / "03-reading.png")
    gate.reader.release.set()
    b.wait(lambda: b.data("kind") == "outcome", what="the first outcome")
    back_to_ready(b, gate)
    gate.flow.finger = gate.finger  # type: ignore[assignment]

    # the chip's DG3 is of the left index finger: the page asks for that one
    gate.finger.placed.clear()
    gate.submit(CardInserted(), KEYS)
    b.wait_code("place_finger_left_index")
    assert b.text("title-vi") == "Mời đặt ngón trỏ trái lên cảm biến"
    assert b.text("title-en") == "Please place your left index finger on the sensor"
    assert b.data("hand") == "left" and b.js("return document.querySelector('.f.on').id") == "f-index"
    b.screenshot(gate.shots / "04-finger.png")
    gate.finger.placed.set()
    expect_outcome(b, gate, "admitted", "green", "Mời vào")
    assert b.data("picture") == "ok" and gate.memory.shown[-1].event_id == gate.sink.records[-1][0]
    b.screenshot(gate.shots / "05-admitted.png")
    b.wait(lambda: b.text("note-vi") == "Mời lấy lại thẻ", what="take the card")
    b.resize(1920, 1080)
    b.screenshot(gate.shots / "05-admitted-1080p.png")
    b.resize(800, 480)
    back_to_ready(b, gate)

    # the finger does not match: to the desk
    gate.finger.score = 10
    gate.submit(CardInserted(), KEYS)
    expect_outcome(b, gate, "refer_desk", "amber", "Mời đến quầy tiếp đón")
    assert b.text("detail-vi") == "Vân tay không khớp. Mời đến quầy tiếp đón." and b.data("picture") == "desk"
    b.screenshot(gate.shots / "06-refer-desk.png")
    back_to_ready(b, gate)
    gate.finger.score = 95

    # tampered card data: refused
    gate.reader.facts = dataclasses.replace(GENUINE, passive_auth=False, passive_auth_failed_step="hash:dg13")
    gate.submit(CardInserted(), KEYS)
    expect_outcome(b, gate, "refused", "red", "Không được vào")
    assert b.data("picture") == "stop"
    b.screenshot(gate.shots / "07-refused.png")
    back_to_ready(b, gate)
    gate.reader.facts = GENUINE

    # a child without a card, entered at the desk: provisional
    gate.submit(ManualEntry(PERSON.id_number))
    expect_outcome(b, gate, "admitted_provisional", "amber", "Mời vào (tạm thời)", name="")  # typed: no name
    b.screenshot(gate.shots / "08-provisional.png")
    b.wait_code("ready", timeout=6)

    # the event cannot be stored: never green, the gate stays closed
    gate.sink.fail = True
    gate.submit(CardInserted(), KEYS)
    expect_outcome(b, gate, "refer_desk", "amber", "Mời đến quầy tiếp đón")
    assert gate.memory.shown[-1].event_id is None
    back_to_ready(b, gate)
    gate.sink.fail = False

    # notices: wrong keys, the card pulled, nothing scanned in time
    gate.reader.error = AccessDenied("no key opened the chip")
    gate.submit(CardInserted(), KEYS)
    b.wait_code("wrong_keys")
    assert b.js("return document.body.className") == "tone-amber" and b.text("countdown").startswith("Quay lại")
    b.screenshot(gate.shots / "09-wrong-keys.png")
    gate.submit(CardRemoved())
    b.wait_code("ready", timeout=6)
    gate.reader.error = CardRemovedError("the card left the field")
    gate.submit(CardInserted(), KEYS)
    b.wait_code("card_removed")
    assert b.text("title-vi") == "Thẻ đã bị rút ra. Mời đặt lại thẻ"
    b.wait_code("ready", timeout=6)
    gate.reader.error = None
    gate.submit(CardInserted())
    b.wait_code("need_keys")
    b.wait_code("timeout", timeout=4)
    assert b.text("title-en") == "Timed out. Please start again"
    gate.submit(CardRemoved())
    b.wait_code("ready", timeout=6)

    # faults, honestly: reader gone, offline, a backlog
    gate.status.update(devices={"card reader": "error: reader vanished", "fingerprint module": "ok"},
                       uplink={"connected": False}, queue={"pending": 120})  # fmt: skip
    b.wait(lambda: b.js("return faults.children.length") == 3, what="three faults")
    codes = b.js("return [...faults.children].map(li => li.dataset.code)")
    assert codes == ["reader", "offline", "backlog"]
    assert "120 lượt chưa gửi lên máy chủ" in b.text("faults")
    b.screenshot(gate.shots / "10-faults.png")

    # nothing from outside the terminal, no script errors
    assert off_loopback(b.network()) == []
    assert b.console_errors() == []

    # the daemon goes away: the page says so instead of a stale screen
    gate.kiosk.close()
    b.wait(lambda: b.data("kind") == "lost", timeout=8, what="the lost-connection screen")
    assert b.text("title-vi") == "Cổng tạm ngưng, xin chờ"
    b.screenshot(gate.shots / "11-gate-not-ready.png")


def test_page_loads_only_from_loopback(browser: Browser, gate: Gate) -> None:  # noqa: F811
    """What the browser fetched, from its own log; and the policy every answer carries, so nothing else could be."""
    b = browser
    b.open(gate.kiosk.url)
    b.wait_code("ready")
    gate.kiosk.prompt("reading", "Đang đọc thẻ.", "Reading.")
    b.wait_code("reading")
    urls = b.network()
    for part in ("/kiosk.css", "/kiosk.js", "/fonts/DejaVuSans.ttf", "/fonts/DejaVuSans-Bold.ttf", "/events"):
        assert any(u.endswith(part) for u in urls), part
    assert off_loopback(urls) == []
    for path in ("", "kiosk.css", "kiosk.js", "favicon.svg", "state"):
        with urllib.request.urlopen(gate.kiosk.url + path, timeout=5) as resp:
            csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "http" not in csp
    for name in ("index.html", "kiosk.css", "kiosk.js"):
        text = static_file("agent.kiosk", name)
        assert text is not None and b"http" not in text.replace(b"http://www.w3.org/2000/svg", b"")
