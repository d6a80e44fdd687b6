"""The gate's workflow: one patient from card (or keys) to the outcome shown.

States, in order::

    IDLE ─► WAIT_KEYS / WAIT_CARD ─► READING (chip ∥ finger) ─► DECIDING ─► STORING ─► SHOWING ─► WAIT_REMOVAL ─► IDLE

Every wait has a timeout from ``[timeouts]``; a card pulled at any point before the
decision returns to IDLE with a prompt and leaves no event.  The chip read and the
finger capture run at the same time, so the patient waits for the longer of the
two.  The outcome is shown only after the event is durable: if it cannot be
stored, the gate stays closed and the patient is sent to the desk.

The daemon never dies of a check-in: any unexpected exception in any stage (keys,
read, finger, eligibility, decide, store, show) is logged (its type, not its
message, which may carry personal data), stored as an ``error`` event, shown as a
closed gate (``INTERNAL_ERROR``, refer to the desk), and the flow returns to IDLE
for the next patient.

Three routes end in the same decision: the chip card (assurance ``chip``), the VNeID
app's token verified through the hub (``vneid``, :mod:`agent.app.vneid`), and the ID
number typed at the desk (``manual``).

Why one piece: every route shares the waits, the catch-all, the decision and the
"durable before shown" rule; split, each would need its own copy of them.

The flow owns no device: it gets triggers from one inbox and calls the ports of
:mod:`agent.app.ports`.  ``step()`` handles one trigger and returns, so the daemon
can ping the watchdog between check-ins and tests can drive it synchronously.

Why one piece: the states above share one inbox, one card-presence flag, one "current
stage" and one catch-all; a check-in's abort, crash and success paths must see the same
state to leave the gate closed and return to IDLE consistently, and splitting the waits
from the check-in would spread the rule "nothing is shown before it is stored, nothing
escapes a stage" over modules that must then agree on it.  The prompts' texts and the
DG3 finger prompt live beside it (:mod:`agent.app.fingers`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from agent.app.eligibility import gateway_request
from agent.app.fingers import finger_prompt
from agent.app.gateway import mismatch_discrepancies
from agent.app.policy import Decision, Outcome, Policy
from agent.app.ports import (
    CardInserted,
    CardRemoved,
    ChipRead,
    ChipReader,
    EligibilityService,
    EventSink,
    FingerPath,
    KeysEntered,
    ManualEntry,
    Output,
    Trigger,
    VneidScanned,
    VneidService,
)
from agent.app.reconcile import reconcile
from agent.app.vneid import VneidResult
from agent.card.errors import CardError
from agent.card.keys import AccessKeys
from agent.errors import CardRemovedError, GateAgentError
from agent.model import (
    Assurance,
    CheckinFacts,
    CheckinRecord,
    Discrepancy,
    Eligibility,
    EligibilitySource,
    FingerFacts,
    FingerStatus,
    Identity,
    Shown,
    VneidFacts,
    VneidStatus,
)

log = logging.getLogger(__name__)


class State(enum.StrEnum):
    IDLE = "idle"
    WAIT_KEYS = "wait_keys"
    WAIT_CARD = "wait_card"
    READING = "reading"
    DECIDING = "deciding"
    STORING = "storing"
    SHOWING = "showing"
    WAIT_REMOVAL = "wait_removal"


#: prompts shown to the patient: code -> (Vietnamese, English)
PROMPTS: dict[str, tuple[str, str]] = {
    "ready": ("Mời đặt thẻ căn cước lên đầu đọc.", "Please place your ID card on the reader."),
    "need_keys": (
        "Mời quét mã QR mặt trước thẻ (hoặc nhờ nhân viên nhập số định danh).",
        "Please scan the QR code on the front of the card (or ask the attendant).",
    ),
    "need_card": ("Mời đặt thẻ căn cước lên đầu đọc.", "Please place your ID card on the reader."),
    "reading": ("Đang đọc thẻ, xin giữ nguyên thẻ.", "Reading the card, please keep it still."),
    "place_finger": ("Mời đặt ngón tay lên cảm biến.", "Please place your finger on the sensor."),
    "card_removed": ("Thẻ đã bị rút ra. Mời đặt lại thẻ.", "The card was removed. Please place it again."),
    "wrong_keys": (
        "Không mở được thẻ bằng thông tin đã quét. Mời quét lại.",
        "The scanned details do not open this card. Please scan again.",
    ),
    "read_failed": ("Không đọc được thẻ. Mời thử lại.", "The card could not be read. Please try again."),
    "timeout": ("Hết thời gian chờ. Mời bắt đầu lại.", "Timed out. Please start again."),
    "take_card": ("Mời lấy lại thẻ.", "Please take your card."),
}

INTERNAL_ERROR = Shown(
    None,
    Outcome.REFER_DESK.value,
    "INTERNAL_ERROR",
    "Lỗi hệ thống. Mời đến quầy tiếp đón.",
    "A system error occurred. Please go to the desk.",
)

STORE_FAILED = Shown(
    None,
    Outcome.REFER_DESK.value,
    "STORE_FAILED",
    "Lỗi lưu dữ liệu. Mời đến quầy tiếp đón.",
    "The check-in could not be recorded. Please go to the desk.",
)


@dataclass(frozen=True)
class FlowTimeouts:
    keys: float = 30.0
    card: float = 30.0
    read: float = 20.0
    finger: float = 15.0
    outcome: float = 5.0
    card_removal: float = 20.0


@dataclass
class FlowStats:
    checkins: int = 0
    aborted: int = 0
    last_checkin: float | None = None  # wall time
    last_outcome: str | None = None
    by_outcome: dict[str, int] = field(default_factory=dict)


class _LookupTask:
    """The eligibility lookup of the ID number scanned before the read, running while the chip is read."""

    def __init__(self, lookup: Callable[[str], Eligibility], id_number: str) -> None:
        self.id_number = id_number
        self._result: Eligibility | None = None
        self._thread = threading.Thread(target=self._run, args=(lookup,), name="eligibility", daemon=True)
        self._thread.start()

    def _run(self, lookup: Callable[[str], Eligibility]) -> None:
        try:
            self._result = lookup(self.id_number)
        except Exception as exc:  # a thread must not die with a traceback: no record, which fails closed
            log.error("eligibility lookup failed unexpectedly: %s", type(exc).__name__)
            self._result = Eligibility(None, EligibilitySource.NONE, fresh=False)

    def result(self) -> Eligibility:
        self._thread.join()
        assert self._result is not None
        return self._result


class _FingerTask:
    """The live finger capture, running while the chip is read."""

    def __init__(self, finger: FingerPath, timeout: float) -> None:
        self.finger = finger
        self.cancel = threading.Event()
        self.captured: bool | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(finger, timeout), name="finger-capture", daemon=True)
        self._thread.start()

    def _run(self, finger: FingerPath, timeout: float) -> None:
        try:
            self.captured = finger.capture(self.cancel, timeout)
        except GateAgentError as exc:
            self.error = str(exc)
            self.captured = False
        except Exception as exc:  # a thread must not die with a traceback: the check-in sees "not captured"
            log.error("finger capture failed unexpectedly: %s", type(exc).__name__)
            log.debug("finger capture failure", exc_info=True)
            self.error = f"unexpected {type(exc).__name__}"
            self.captured = False

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return bool(self.captured)

    def stop(self) -> None:
        self.cancel.set()
        self._thread.join(5.0)
        self.finger.forget()  # the live finger is not needed any more: out of memory now


class CheckinFlow:
    """One gate: consumes triggers, drives the ports, produces decisions."""

    def __init__(
        self,
        *,
        reader: ChipReader,
        eligibility: EligibilityService,
        sink: EventSink,
        output: Output,
        policy: Policy,
        facility_code: str,
        finger: FingerPath | None = None,
        vneid: VneidService | None = None,
        timeouts: FlowTimeouts | None = None,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.inbox: queue.Queue[Trigger] = queue.Queue()
        self.reader = reader
        self.eligibility = eligibility
        self.sink = sink
        self.output = output
        self.policy = policy
        self.facility_code = facility_code
        self.finger = finger
        self.vneid = vneid  # None: no hub to verify VNeID tokens (every token is unverified)
        self.timeouts = timeouts or FlowTimeouts()
        self.today = today
        self.state = State.IDLE
        self.stats = FlowStats()
        self.card_present = False
        self.stopping = threading.Event()
        self.stage = "idle"  # the check-in stage now running: named in an error event
        self._finger_task: _FingerTask | None = None
        #: called at least every half second while the flow waits (the daemon pings its watchdog here)
        self.on_tick: Callable[[], None] | None = None

    # --- the loop -----------------------------------------------------------------------------------

    def submit(self, trigger: Trigger) -> None:
        """Called by device threads; thread-safe."""
        self.inbox.put(trigger)

    def step(self, timeout: float = 1.0) -> Shown | None:
        """Wait up to ``timeout`` for a trigger and handle it (a whole check-in when it starts one)."""
        try:
            trigger = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        return self.handle(trigger)

    def handle(self, trigger: Trigger) -> Shown | None:
        """Handle one trigger; an unexpected exception anywhere ends this check-in closed, not the daemon."""
        self.stage = "keys"
        try:
            return self._handle(trigger)
        except Exception as exc:
            return self._crashed(exc)
        finally:
            self.stage = "idle"
            self._finger_task = None

    def _crashed(self, exc: Exception) -> Shown:
        stage = self.stage
        log.error("check-in failed in stage %s: unexpected %s; gate closed", stage, type(exc).__name__)
        log.debug("unexpected check-in failure", exc_info=True)
        if self._finger_task is not None:
            try:
                self._finger_task.stop()
            except Exception:
                log.exception("finger capture could not be stopped")
        event_id: str | None = None
        try:
            event_id = self.sink.store_error(stage, type(exc).__name__)
        except Exception as store_exc:
            log.error("the error event could not be stored: %s", type(store_exc).__name__)
        shown = Shown(event_id, *(getattr(INTERNAL_ERROR, f) for f in ("outcome", "reason", "message_vi",
                                                                        "message_en")))  # fmt: skip
        try:
            self.output.show(shown)
        except Exception as show_exc:
            log.error("the closed gate could not be shown: %s", type(show_exc).__name__)
        self.stats.aborted += 1
        self.stats.by_outcome["error"] = self.stats.by_outcome.get("error", 0) + 1
        self.state = State.IDLE
        try:
            self.output.prompt("ready", *PROMPTS["ready"])
        except Exception as prompt_exc:
            log.error("the ready prompt could not be shown: %s", type(prompt_exc).__name__)
        return shown

    def _handle(self, trigger: Trigger) -> Shown | None:
        if isinstance(trigger, CardRemoved):
            self.card_present = False
            return None
        if isinstance(trigger, ManualEntry):
            return self._manual(trigger.id_number)
        if isinstance(trigger, VneidScanned):
            return self._vneid_checkin(trigger.token)
        if isinstance(trigger, CardInserted):
            self.card_present = True
            entered = self._wait_keys()
            return None if entered is None else self._checkin(entered.keys, entered.id_number)
        if not self.card_present:
            self._set(State.WAIT_CARD, "need_card")
            if not self._wait_card():
                return None
        return self._checkin(trigger.keys, trigger.id_number)

    # --- waits --------------------------------------------------------------------------------------

    def _next(self, deadline: float) -> Trigger | None:
        while True:
            if self.on_tick is not None:
                self.on_tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stopping.is_set():
                return None
            try:
                return self.inbox.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue

    def _wait_keys(self) -> KeysEntered | None:
        self._set(State.WAIT_KEYS, "need_keys")
        deadline = time.monotonic() + self.timeouts.keys
        while (trigger := self._next(deadline)) is not None:
            if isinstance(trigger, KeysEntered):
                return trigger
            if isinstance(trigger, CardRemoved):
                self.card_present = False
                self._abort("card_removed")
                return None
            if isinstance(trigger, ManualEntry):
                self._manual(trigger.id_number)
                return None
            if isinstance(trigger, VneidScanned):  # the app instead of the card's keys: the VNeID route
                self._vneid_checkin(trigger.token)
                return None
        self._abort("timeout")
        return None

    def _wait_card(self) -> bool:
        deadline = time.monotonic() + self.timeouts.card
        while (trigger := self._next(deadline)) is not None:
            if isinstance(trigger, CardInserted):
                self.card_present = True
                return True
            if isinstance(trigger, ManualEntry):
                self._manual(trigger.id_number)
                return False
            if isinstance(trigger, VneidScanned):
                self._vneid_checkin(trigger.token)
                return False
        self._abort("timeout")
        return False

    def _wait_removal(self) -> None:
        if not self.card_present:
            return
        self._set(State.WAIT_REMOVAL, "take_card")
        deadline = time.monotonic() + self.timeouts.card_removal
        while (trigger := self._next(deadline)) is not None:
            if isinstance(trigger, CardRemoved):
                self.card_present = False
                return
            # a new QR scan while the old card still lies there is a new patient: keep it for later
            if isinstance(trigger, KeysEntered | ManualEntry | VneidScanned):
                self.inbox.put(trigger)
                return
        log.info("card left on the reader after the check-in")

    # --- one check-in -------------------------------------------------------------------------------

    def _checkin(self, keys: AccessKeys, id_hint: str | None = None) -> Shown | None:
        self.stage = "read"
        self._set(State.READING, "reading")
        started = time.monotonic()
        # the ID number from the QR/MRZ: its eligibility lookup runs while the chip is read
        early = _LookupTask(self._lookup_any, id_hint) if id_hint else None
        finger_task = _FingerTask(self.finger, self.timeouts.finger) if self.finger is not None else None
        self._finger_task = finger_task
        if finger_task is not None:
            self.output.prompt("place_finger", *PROMPTS["place_finger"])
        try:
            chip = self.reader.read(keys)
        except CardRemovedError:
            self.card_present = False
            self._abort("card_removed", finger_task)
            return None
        except CardError as exc:
            code = "wrong_keys" if getattr(exc, "wrong_keys", False) else "read_failed"
            log.warning("chip read failed: %s", exc)
            self._abort(code, finger_task)
            return None
        except GateAgentError as exc:
            log.warning("chip read failed: %s", exc)
            self._abort("read_failed", finger_task)
            return None
        self.stage = "finger"
        finger = self._finger_result(finger_task, chip, started)
        if self.finger is not None:
            self.finger.forget()  # matched (or not needed): nothing biometric outlives the decision
        if self.finger is not None and chip.facts.finger_expected:
            finger = replace(finger, required=True)
        eligibility: Eligibility | None = None
        if early is not None and early.id_number == chip.identity.id_number:
            answer = early.result()
            # the gateway compares the chip's name and birth date: its answer to the bare number is asked again
            if answer.gateway_code is None or gateway_request(chip.identity) is None:
                eligibility = answer
        if eligibility is None:  # no ID number before the read, the chip is someone else's, or the gateway answered
            eligibility = self._lookup(chip.identity.id_number, chip.identity)
        shown = self._decide_and_store(chip.identity, Assurance.CHIP, chip, finger, eligibility)
        self.stage = "removal"
        self._wait_removal()
        self._set(State.IDLE, "ready")
        return shown

    def _finger_result(self, task: _FingerTask | None, chip: ChipRead, started: float) -> FingerFacts:
        if task is None or self.finger is None:
            return FingerFacts(FingerStatus.NOT_CHECKED, detail="no fingerprint module")
        reference = chip.facts.finger_reference
        if reference is None:
            task.stop()
            return FingerFacts(FingerStatus.NOT_CHECKED, detail="no fingerprint reference from the chip")
        asked = finger_prompt(chip.facts.finger_position)
        if task.captured is None and asked is not None:
            self.output.prompt(*asked)  # now the chip says which finger
        remaining = max(0.0, self.timeouts.finger - (time.monotonic() - started))
        if not task.wait(remaining):
            task.stop()
            return FingerFacts(FingerStatus.ERROR, detail=task.error or "no finger placed in time")
        try:
            return self.finger.match(reference)
        except GateAgentError as exc:
            return FingerFacts(FingerStatus.ERROR, detail=str(exc))

    def _manual(self, id_number: str) -> Shown | None:
        self._set(State.DECIDING, None)
        eligibility = self._lookup(id_number)
        shown = self._decide_and_store(
            Identity(id_number), Assurance.MANUAL, None, FingerFacts(FingerStatus.NOT_CHECKED), eligibility
        )
        self._set(State.IDLE, "ready")
        return shown

    def _vneid_checkin(self, token: str) -> Shown | None:
        """The VNeID route: the hub verifies the token, then eligibility; assurance ``vneid``, no chip, no finger."""
        self.stage = "vneid"
        self._set(State.DECIDING, None)
        result = self._verify(token)
        finger = FingerFacts(FingerStatus.NOT_CHECKED, detail="VNeID route: no chip reference")
        if result.identity is None:
            eligibility = Eligibility(None, EligibilitySource.NONE, fresh=False)
            shown = self._decide_and_store(Identity(""), Assurance.VNEID, None, finger, eligibility, result.facts)
        else:
            eligibility = self._lookup(result.identity.id_number, result.identity)
            shown = self._decide_and_store(result.identity, Assurance.VNEID, None, finger, eligibility, result.facts)
        self._set(State.IDLE, "ready")
        return shown

    def _verify(self, token: str) -> VneidResult:
        if self.vneid is None:
            return VneidResult(VneidFacts(VneidStatus.UNVERIFIED), None)
        try:
            return self.vneid.verify(token)
        except GateAgentError as exc:
            log.warning("VNeID verification failed: %s", type(exc).__name__)
            return VneidResult(VneidFacts(VneidStatus.UNVERIFIED), None)

    def _lookup(self, id_number: str, identity: Identity | None = None) -> Eligibility:
        self.stage = "eligibility"
        return self._lookup_any(id_number, identity)

    def _lookup_any(self, id_number: str, identity: Identity | None = None) -> Eligibility:
        """The lookup from any thread (no flow state touched); a failure is "no record"."""
        try:
            return self.eligibility.lookup(id_number, identity)
        except GateAgentError as exc:
            log.warning("eligibility lookup failed: %s", exc)
            return Eligibility(None, EligibilitySource.NONE, fresh=False)

    def _decide_and_store(
        self,
        identity: Identity,
        assurance: Assurance,
        chip: ChipRead | None,
        finger: FingerFacts,
        eligibility: Eligibility,
        vneid: VneidFacts | None = None,
    ) -> Shown:
        self.stage = "decide"
        self._set(State.DECIDING, None)
        discrepancies: tuple[Discrepancy, ...] = ()
        # only a verified identity (the chip, or VNeID verified by the national service) is a reference
        verified = chip is not None or (vneid is not None and vneid.status is VneidStatus.VALID)
        if verified and eligibility.record is not None:
            discrepancies = tuple(reconcile(identity, eligibility.record))
        if verified and eligibility.source is EligibilitySource.ONLINE:
            seen = {d.field for d in discrepancies}
            extra = mismatch_discrepancies(eligibility.gateway_code, identity)
            discrepancies += tuple(d for d in extra if d.field not in seen)
        facts = CheckinFacts(
            identity,
            assurance,
            chip.facts if chip else None,
            finger,
            eligibility,
            self.today(),
            self.facility_code,
            vneid,
        )
        decision: Decision = self.policy.decide(facts, mismatched=bool(discrepancies))
        self.stage = "store"
        self._set(State.STORING, None)
        record = CheckinRecord(identity, assurance.value, facts.chip, finger, eligibility, decision, discrepancies,
                               vneid)  # fmt: skip
        try:
            event_id = self.sink.store(record)
        except GateAgentError as exc:
            log.error("check-in could not be stored, gate stays closed: %s", exc)
            shown = dataclasses.replace(STORE_FAILED, identity=identity)
        else:
            shown = Shown(
                event_id,
                decision.outcome.value,
                decision.reason,
                decision.message_vi,
                decision.message_en,
                decision.provisional,
                identity,
            )
        self.stage = "show"
        self._set(State.SHOWING, None)
        self.output.show(shown)
        self.stats.checkins += 1
        self.stats.last_checkin = time.time()
        self.stats.last_outcome = shown.outcome
        self.stats.by_outcome[shown.outcome] = self.stats.by_outcome.get(shown.outcome, 0) + 1
        log.info("check-in %s: %s (%s)", shown.event_id, shown.outcome, shown.reason)
        return shown

    # --- helpers ------------------------------------------------------------------------------------

    def _abort(self, code: str, finger_task: _FingerTask | None = None) -> None:
        if finger_task is not None:
            finger_task.stop()
        self.stats.aborted += 1
        log.info("check-in abandoned: %s", code)
        self.output.prompt(code, *PROMPTS[code])
        self._set(State.IDLE, None)

    def _set(self, state: State, prompt: str | None) -> None:
        self.state = state
        if prompt is not None:
            self.output.prompt(prompt, *PROMPTS[prompt])
