"""The check-in state machine over in-process ports."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from agent.app.eligibility import EligibilityCache, EligibilityChain, EligibilityDataError, record_to_dict
from agent.app.flow import CheckinFlow, FlowTimeouts, State
from agent.app.outputs import MemoryOutput, RecorderOutput
from agent.app.policy import Policy
from agent.app.ports import CardInserted, CardRemoved, ChipRead, KeysEntered, ManualEntry
from agent.card.errors import CardError
from agent.card.keys import AccessKeys
from agent.errors import CardRemovedError
from agent.model import ChipFacts, Eligibility, EligibilitySource, FingerStatus, Identity, InsuranceRecord
from tests.flow_fakes import PERSON, FakeFinger, FakeReader, MemorySink

NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
RECORD = InsuranceRecord(
    PERSON.id_number,
    "DN4010112345678",
    dt.date(2026, 1, 1),
    dt.date(2026, 12, 31),
    "01001",
    4,
    "pupils",
    PERSON.full_name,
    PERSON.birth,
    PERSON.sex,
)
KEYS = KeysEntered(AccessKeys(can="123456"), "qr")
FAST = FlowTimeouts(keys=0.3, card=0.3, read=2, finger=2, outcome=0.1, card_removal=0.3)


def cache(*records: InsuranceRecord, age: dt.timedelta = dt.timedelta(hours=1)) -> EligibilityCache:
    c = EligibilityCache(dt.timedelta(hours=24), now=lambda: NOW)
    c.apply_snapshot([record_to_dict(r) for r in records], NOW - age)
    return c


def make_flow(
    reader: FakeReader | None = None,
    finger: FakeFinger | None = None,
    sink: MemorySink | None = None,
    elig: EligibilityCache | None = None,
) -> tuple[CheckinFlow, MemoryOutput, MemorySink]:
    out, sink = MemoryOutput(), sink or MemorySink()
    flow = CheckinFlow(
        reader=reader or FakeReader(),
        eligibility=EligibilityChain(elig or cache(RECORD)),
        sink=sink,
        output=out,
        policy=Policy.default(),
        facility_code="01001",
        finger=finger,
        timeouts=FAST,
        today=lambda: dt.date(2026, 11, 24),
    )
    return flow, out, sink


def test_card_then_keys_admits_and_stores_before_showing() -> None:
    flow, out, sink = make_flow()
    flow.submit(KEYS)
    flow.submit(CardRemoved())
    shown = flow.handle(CardInserted())
    assert shown is not None and shown.outcome == "admitted" and shown.reason == "OK"
    assert [eid for eid, _ in sink.records] == [shown.event_id]
    assert out.shown == [shown]
    assert out.prompts[:2] == ["need_keys", "reading"]
    assert flow.state is State.IDLE and flow.stats.checkins == 1


def test_keys_then_card() -> None:
    flow, out, _sink = make_flow()
    flow.submit(CardInserted())
    shown = flow.handle(KEYS)
    assert shown is not None and shown.outcome == "admitted"
    assert out.prompts[0] == "need_card"


def test_timeouts_return_to_idle_without_an_event() -> None:
    flow, out, sink = make_flow()
    assert flow.handle(CardInserted()) is None
    assert out.prompts[-1] == "timeout" and sink.records == []
    # the card still lies on the reader: keys scanned late still check the patient in
    late = flow.handle(KEYS)
    assert late is not None and late.outcome == "admitted"
    flow.card_present = False
    assert flow.handle(KEYS) is None and out.prompts[-1] == "timeout"
    assert flow.state is State.IDLE and flow.stats.aborted == 2 and len(sink.records) == 1


def test_card_pulled_while_waiting_for_keys() -> None:
    flow, out, _sink = make_flow()
    flow.submit(CardRemoved())
    assert flow.handle(CardInserted()) is None
    assert out.prompts[-1] == "card_removed" and not flow.card_present


@pytest.mark.parametrize(
    ("error", "prompt"),
    [(CardRemovedError("pulled"), "card_removed"), (CardError("wrong"), "read_failed")],
)
def test_read_failures_abort_cleanly(error: Exception, prompt: str) -> None:
    flow, out, sink = make_flow(reader=FakeReader(error=error))
    flow.card_present = True
    assert flow.handle(KEYS) is None
    assert out.prompts[-1] == prompt and sink.records == [] and flow.state is State.IDLE


def test_wrong_keys_are_told_as_such() -> None:
    err = CardError("access denied")
    err.wrong_keys = True  # type: ignore[attr-defined]
    flow, out, _ = make_flow(reader=FakeReader(error=err))
    flow.card_present = True
    flow.handle(KEYS)
    assert out.prompts[-1] == "wrong_keys"


def test_finger_capture_runs_while_the_chip_is_read() -> None:
    finger = FakeFinger(score=120)
    reader = FakeReader(ChipRead(PERSON, ChipFacts("PACE", True, finger_reference=b"dg3")))
    reader.before_return = finger.started  # the read only returns once the capture has started
    flow, _, sink = make_flow(reader=reader, finger=finger)
    flow.card_present = True
    shown = flow.handle(KEYS)
    assert shown is not None and shown.outcome == "admitted"
    assert sink.records[0][1].finger.status is FingerStatus.MATCH


def test_finger_mismatch_refers_to_the_desk() -> None:
    reader = FakeReader(ChipRead(PERSON, ChipFacts("PACE", True, finger_reference=b"dg3")))
    flow, _, _sink = make_flow(reader=reader, finger=FakeFinger(score=10))
    flow.card_present = True
    shown = flow.handle(KEYS)
    assert shown is not None and (shown.outcome, shown.reason) == ("refer_desk", "FINGER_NO_MATCH")


def test_no_finger_placed_is_an_error_not_a_hang() -> None:
    reader = FakeReader(ChipRead(PERSON, ChipFacts("PACE", True, finger_reference=b"dg3")))
    finger = FakeFinger(place=False)
    flow, _, sink = make_flow(reader=reader, finger=finger)
    flow.card_present = True
    flow.handle(KEYS)
    assert sink.records[0][1].finger.status is FingerStatus.ERROR
    assert finger.cancelled


def test_no_reference_on_chip_cancels_the_capture() -> None:
    finger = FakeFinger(place=False)
    flow, _, sink = make_flow(finger=finger)
    flow.card_present = True
    flow.handle(KEYS)
    assert sink.records[0][1].finger.status is FingerStatus.NOT_CHECKED
    assert finger.cancelled


def test_manual_entry_is_lower_assurance() -> None:
    flow, _, sink = make_flow()
    shown = flow.handle(ManualEntry(PERSON.id_number))
    assert shown is not None and (shown.outcome, shown.reason) == ("admitted_provisional", "MANUAL_ENTRY")
    assert sink.records[0][1].assurance == "manual" and sink.records[0][1].discrepancies == ()


def test_mismatching_record_is_admitted_with_discrepancies() -> None:
    wrong = InsuranceRecord(
        PERSON.id_number, "X", RECORD.valid_from, RECORD.valid_to, "01001", 4, full_name="Nguyen Van An"
    )
    flow, _, sink = make_flow(elig=cache(wrong))
    flow.card_present = True
    shown = flow.handle(KEYS)
    assert shown is not None and shown.reason == "RECORD_MISMATCH"
    assert {d.field for d in sink.records[0][1].discrepancies} == {"full_name", "birth", "sex"}


def test_stale_cache_makes_the_decision_provisional() -> None:
    flow, _, _ = make_flow(elig=cache(RECORD, age=dt.timedelta(days=3)))
    flow.card_present = True
    shown = flow.handle(KEYS)
    assert shown is not None and shown.provisional and shown.reason == "CACHE_STALE"


def test_store_failure_keeps_the_gate_closed() -> None:
    flow, _out, _ = make_flow(sink=MemorySink(fail=True))
    flow.card_present = True
    shown = flow.handle(KEYS)
    assert shown is not None and shown.event_id is None and shown.outcome == "refer_desk"
    assert shown.reason == "STORE_FAILED"


def test_recorder_writes_one_line_per_outcome_without_personal_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "outcomes.jsonl"
    flow, _, _ = make_flow()
    flow.output = RecorderOutput(path, "gate-1")
    flow.card_present = True
    flow.handle(KEYS)
    flow.handle(ManualEntry(PERSON.id_number))
    text = path.read_text()
    assert len(text.splitlines()) == 2 and PERSON.id_number not in text and "Nguy" not in text


class FakeHub:
    def __init__(self, answer: dict[str, object] | None, connected: bool = True) -> None:
        self.answer = answer
        self.connected = connected

    def query_eligibility(self, id_number: str, timeout: float) -> dict[str, object] | None:
        return self.answer


def test_online_answer_wins_over_the_cache_and_falls_back() -> None:
    c = cache()  # empty but fresh
    assert EligibilityChain(c, FakeHub({"record": record_to_dict(RECORD)})).lookup(PERSON.id_number).record == RECORD
    online_none = EligibilityChain(c, FakeHub({"record": None})).lookup(PERSON.id_number)
    assert online_none.source is EligibilitySource.ONLINE and online_none.record is None
    silent = EligibilityChain(c, FakeHub(None)).lookup(PERSON.id_number)
    assert silent.source is EligibilitySource.CACHE
    offline = EligibilityChain(c, FakeHub({"record": None}, connected=False)).lookup(PERSON.id_number)
    assert offline.source is EligibilitySource.CACHE


def test_an_online_record_about_another_id_number_is_no_answer() -> None:
    other = dict(record_to_dict(RECORD), id_number="001090099999")
    c = cache(RECORD)
    answer = EligibilityChain(c, FakeHub({"record": other})).lookup(PERSON.id_number)
    assert answer.source is EligibilitySource.CACHE and answer.record == RECORD  # the cache decides, not the stranger
    nothing = EligibilityChain(cache(), FakeHub({"record": other})).lookup(PERSON.id_number)
    assert nothing.record is None and nothing.source is not EligibilitySource.ONLINE


def test_cache_snapshot_delta_and_bad_data_is_atomic() -> None:
    c = cache(RECORD)
    bad = dict(record_to_dict(RECORD), id_number="001090099999", valid_to="31/12/2026")
    with pytest.raises(EligibilityDataError, match="valid_to"):
        c.apply_delta([record_to_dict(RECORD), bad], [], NOW)
    assert len(c) == 1
    with pytest.raises(EligibilityDataError, match="older"):
        c.apply_delta([], [PERSON.id_number], NOW - dt.timedelta(days=2))
    assert c.apply_delta([], [PERSON.id_number], NOW) == (0, 1)
    assert c.lookup(PERSON.id_number).record is None
    assert cache(RECORD).lookup(PERSON.id_number).record == RECORD
    assert EligibilityCache().lookup("x").source is EligibilitySource.NONE


def test_an_expired_or_future_dated_cache_is_not_used() -> None:
    assert cache(RECORD, age=dt.timedelta(hours=30)).lookup(PERSON.id_number).record == RECORD  # stale: used, not fresh
    assert cache(RECORD, age=dt.timedelta(hours=30)).lookup(PERSON.id_number).fresh is False
    expired = cache(RECORD, age=dt.timedelta(hours=24 * 7 + 1)).lookup(PERSON.id_number)
    assert expired.record is None and expired.source is EligibilitySource.NONE
    future = cache(RECORD, age=-dt.timedelta(hours=2)).lookup(PERSON.id_number)
    assert future.record is None and future.source is EligibilitySource.NONE


class _SpyChain(EligibilityChain):
    """Records which ID numbers were looked up, and signals the first lookup."""

    def __init__(self, inner: EligibilityCache) -> None:
        super().__init__(inner)
        self.asked: list[str] = []
        self.first = threading.Event()

    def lookup(self, id_number: str, identity: Identity | None = None):  # type: ignore[no-untyped-def]
        self.asked.append(id_number)
        self.first.set()
        return super().lookup(id_number, identity)


def test_eligibility_lookup_starts_from_the_scan_while_the_chip_is_read() -> None:
    reader = FakeReader()
    flow, _, sink = make_flow(reader=reader)
    spy = _SpyChain(cache(RECORD))
    flow.eligibility = spy
    reader.before_return = spy.first  # the read only returns once the lookup of the scanned number has started
    flow.card_present = True
    shown = flow.handle(KeysEntered(AccessKeys(can="123456"), "qr", PERSON.id_number))
    assert shown is not None and shown.outcome == "admitted"
    assert spy.asked == [PERSON.id_number]  # once: the early answer is used
    assert sink.records[0][1].eligibility.record == RECORD


def test_a_chip_of_someone_else_is_looked_up_again() -> None:
    flow, _, sink = make_flow()
    spy = _SpyChain(cache(RECORD))
    flow.eligibility = spy
    flow.card_present = True
    shown = flow.handle(KeysEntered(AccessKeys(can="123456"), "qr", "079000000001"))
    assert shown is not None
    assert spy.asked == ["079000000001", PERSON.id_number]  # the chip's holder decides, not the scan
    assert sink.records[0][1].eligibility.record == RECORD


class _GatewaySpy:
    """An eligibility service whose answers come from the insurance gateway (which compares name and birth)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Identity | None]] = []

    def lookup(self, id_number: str, identity: Identity | None = None) -> Eligibility:
        self.asked.append((id_number, identity))
        code = "000" if identity is not None and identity.full_name == PERSON.full_name else "060"
        return Eligibility(RECORD, EligibilitySource.ONLINE, True, gateway_code=code)


def test_a_gateway_answer_to_the_scanned_number_alone_is_asked_again_with_the_chips_name() -> None:
    flow, _, sink = make_flow()
    spy = _GatewaySpy()
    flow.eligibility = spy
    flow.card_present = True
    shown = flow.handle(KeysEntered(AccessKeys(can="123456"), "qr", PERSON.id_number))
    assert shown is not None and shown.outcome == "admitted"
    assert spy.asked == [(PERSON.id_number, None), (PERSON.id_number, PERSON)]
    assert sink.records[0][1].eligibility.gateway_code == "000"  # the answer to the chip's identity decides


def test_the_live_finger_is_forgotten_after_the_match_and_after_an_abort() -> None:
    finger = FakeFinger(score=120)
    reader = FakeReader(ChipRead(PERSON, ChipFacts("PACE", True, finger_reference=b"dg3")))
    flow, _, _ = make_flow(reader=reader, finger=finger)
    flow.card_present = True
    assert flow.handle(KEYS) is not None
    assert finger.forgotten >= 1
    finger2 = FakeFinger(score=120)
    flow2, _, _ = make_flow(reader=FakeReader(error=CardError("the chip went silent")), finger=finger2)
    flow2.card_present = True
    assert flow2.handle(KEYS) is None
    assert finger2.forgotten == 1
