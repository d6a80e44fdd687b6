"""The kiosk's screens as data: what each state shows, what may never be shown, countdowns and faults."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from agent.app.fingers import finger_prompt
from agent.app.flow import PROMPTS
from agent.kiosk.output import KioskOutput
from agent.kiosk.screen import (
    IDLE,
    Fault,
    KioskModel,
    faults_from_status,
    given_name,
    mask_id,
    outcome_screen,
    prompt_screen,
)
from agent.model import Shown
from tests.flow_fakes import PERSON


def test_mask_keeps_three_digits_each_end() -> None:
    assert mask_id("062090000394") == "062******394"
    assert mask_id("12345678") == "********"


def test_given_name_is_the_last_word() -> None:
    assert given_name("Nguyễn Văn An") == "An"
    assert given_name("TRAN THI<<BICH") == "Bich"
    assert given_name("") is None and given_name(None) is None


def test_finger_prompt_names_the_dg3_finger() -> None:
    assert finger_prompt(2) == ("place_finger_right_index", "Mời đặt ngón trỏ phải lên cảm biến.",
                                "Please place your right index finger on the sensor.")  # fmt: skip
    assert (finger_prompt(7) or ("", "", ""))[1] == "Mời đặt ngón trỏ trái lên cảm biến."
    assert finger_prompt(0) is None and finger_prompt(None) is None  # the generic prompt stays
    asked = finger_prompt(9)
    assert asked is not None
    screen = prompt_screen(*asked)
    assert (screen.kind, screen.hand, screen.finger, screen.picture) == ("finger", "left", "ring", "finger")


@pytest.mark.parametrize(
    ("outcome", "tone", "picture", "title"),
    [
        ("admitted", "green", "ok", "Mời vào"),
        ("admitted_provisional", "amber", "ok", "Mời vào (tạm thời)"),
        ("refer_desk", "amber", "desk", "Mời đến quầy tiếp đón"),
        ("refused", "red", "stop", "Không được vào"),
    ],
)
def test_outcome_colour_icon_and_title(outcome: str, tone: str, picture: str, title: str) -> None:
    s = outcome_screen(outcome, "Lý do", "Reason", gate_opens=True, full_name=PERSON.full_name,
                       id_number=PERSON.id_number)  # fmt: skip
    assert (s.tone, s.picture, s.title_vi) == (tone, picture, title)
    assert s.given_name == "An" and s.masked_id == "001******345"


def test_outcome_fails_closed() -> None:
    not_stored = outcome_screen("admitted", "x", "x", gate_opens=False)
    assert not_stored.tone == "amber" and not_stored.code == "refer_desk"
    unknown = outcome_screen("weird", "x", "x", gate_opens=True)
    assert unknown.tone != "green" and unknown.picture == "desk"


def test_no_personal_data_outside_the_outcome() -> None:
    model = KioskModel(hold=5)
    docs = []
    for code in ("need_keys", "reading", "place_finger", "card_removed", "take_card"):
        screen = model.prompt(code, *PROMPTS[code], now=0)
        assert screen is not None
        docs.append(json.dumps(screen.to_json(0), ensure_ascii=False))
    docs.append(json.dumps(IDLE.to_json(0), ensure_ascii=False))
    for doc in docs:
        assert PERSON.id_number not in doc and "An" not in json.loads(doc)["title_vi"].split()
        assert json.loads(doc)["given_name"] is None and json.loads(doc)["masked_id"] is None


def test_outcome_holds_with_countdown_then_returns_to_ready() -> None:
    model = KioskModel(hold=5)
    shown = model.outcome(outcome_screen("admitted", "Hợp lệ", "Valid", gate_opens=True,
                                         full_name=PERSON.full_name, id_number=PERSON.id_number), now=100)  # fmt: skip
    assert shown.to_json(101)["countdown"] == 4
    take = model.prompt("take_card", *PROMPTS["take_card"], now=101)
    assert take is not None and take.kind == "outcome" and take.note_vi == "Mời lấy lại thẻ"
    cleared = model.prompt("ready", *PROMPTS["ready"], now=102)
    assert cleared is not None and cleared.kind == "outcome" and cleared.note_vi == ""
    assert model.tick(104) is None
    after = model.tick(105)
    assert after is not None and after.kind == "idle" and after.given_name is None and after.seq > cleared.seq


def test_card_left_on_reader_after_the_countdown_asks_for_it() -> None:
    model = KioskModel(hold=2)
    model.outcome(outcome_screen("refused", "x", "x", gate_opens=True), now=0)
    model.prompt("take_card", *PROMPTS["take_card"], now=1)
    after = model.tick(2)
    assert after is not None and after.kind == "take_card"


def test_a_new_patient_replaces_the_outcome_at_once() -> None:
    model = KioskModel(hold=10)
    model.outcome(outcome_screen("admitted", "x", "x", gate_opens=True), now=0)
    screen = model.prompt("reading", *PROMPTS["reading"], now=1)
    assert screen is not None and screen.kind == "reading" and screen.until is None


def test_notices_count_down_to_ready() -> None:
    model = KioskModel(hold=3)
    notice = model.prompt("wrong_keys", *PROMPTS["wrong_keys"], now=0)
    assert notice is not None and notice.tone == "amber" and notice.to_json(0)["countdown"] == 3
    after = model.tick(3)
    assert after is not None and after.kind == "idle"


def test_faults_from_the_status_document() -> None:
    healthy = {"devices": {"card reader": "card present", "fingerprint module": "ok"},
               "uplink": {"connected": True}, "queue": {"pending": 3}}  # fmt: skip
    assert faults_from_status(healthy) == ()
    broken = {"devices": {"card reader": "error: no reader named X", "fingerprint module": "error: timeout"},
              "uplink": {"connected": False}, "queue": {"pending": 75}}  # fmt: skip
    codes = [f.code for f in faults_from_status(broken, backlog_warn=50)]
    assert codes == ["reader", "finger", "offline", "backlog"]
    assert "75" in faults_from_status(broken)[-1].vi
    assert [f.code for f in faults_from_status({})] == ["offline"]  # no uplink at all: decisions are provisional


def test_faults_ride_on_every_screen_and_change_it() -> None:
    model = KioskModel()
    fault = (Fault("offline", "vi", "en"),)
    screen = model.set_faults(fault)
    assert screen is not None and screen.faults == fault and screen.kind == "idle"
    assert model.set_faults(fault) is None
    after = model.prompt("reading", *PROMPTS["reading"], now=0)
    assert after is not None and after.faults == fault


def test_kiosk_output_serves_state_and_refuses_foreign_hosts() -> None:
    kiosk = KioskOutput("127.0.0.1", 0, hold=5, fault_poll=0.1)
    try:
        kiosk.status_source = lambda: {"devices": {"card reader": "error: gone"}, "uplink": {"connected": True}}
        kiosk.show(Shown("e1", "admitted", "OK", "Hợp lệ", "Valid", identity=PERSON))
        with urllib.request.urlopen(kiosk.url + "state", timeout=5) as resp:
            doc = json.loads(resp.read())
            assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert doc["kind"] == "outcome" and doc["masked_id"] == "001******345" and doc["given_name"] == "An"
        assert PERSON.id_number not in json.dumps(doc)
        request = urllib.request.Request(kiosk.url, headers={"Host": "attacker.example:8080"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 421
        for bad in ("../server.py", "%2e%2e/output.py", "fonts/../../etc/passwd", "nothing.css"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(kiosk.url + bad, timeout=5)
            assert err.value.code == 404
        with urllib.request.urlopen(kiosk.url + "fonts/DejaVuSans.ttf", timeout=5) as resp:
            assert resp.read(4) == b"\x00\x01\x00\x00"
    finally:
        kiosk.close()


def test_the_flow_asks_for_the_dg3_finger_once_the_chip_says_which() -> None:
    import threading

    from agent.app.ports import CardInserted, ChipRead, KeysEntered
    from agent.card.keys import AccessKeys
    from agent.model import ChipFacts, FingerFacts, FingerStatus
    from tests.flow_fakes import FakeReader
    from tests.test_flow import make_flow

    class LateFinger:
        def __init__(self) -> None:
            self.prompted = threading.Event()

        def capture(self, cancel: threading.Event, timeout: float) -> bool:
            return self.prompted.wait(timeout)  # lands once the patient was told which finger

        def forget(self) -> None:
            pass

        def match(self, reference: bytes) -> FingerFacts:
            return FingerFacts(FingerStatus.MATCH, 90)

    finger = LateFinger()
    facts = ChipFacts("PACE", True, chip_auth=True, finger_reference=b"ref", finger_position=6)
    flow, out, _ = make_flow(reader=FakeReader(ChipRead(PERSON, facts)), finger=finger)  # type: ignore[arg-type]
    real_prompt = out.prompt

    def prompt(code: str, vi: str, en: str) -> None:
        real_prompt(code, vi, en)
        if code == "place_finger_left_thumb":
            assert vi == "Mời đặt ngón cái trái lên cảm biến."
            finger.prompted.set()

    out.prompt = prompt  # type: ignore[method-assign]
    flow.submit(KeysEntered(AccessKeys(can="123456"), "qr"))
    shown = flow.handle(CardInserted())
    assert shown is not None and shown.outcome == "admitted" and shown.identity == PERSON
    assert out.prompts.index("place_finger") < out.prompts.index("place_finger_left_thumb")
