"""A gate that cannot be talked into "admitted": downgrade rules, hostile chips, the finger rule, the catch-all.

The chips are the simulator's registered card variants (``sim.card.variants``: files hidden, an
unknown signature trailer, no EF.CardAccess, no SFI, endless chaining), in-process and below through
pcscd + vpcd.  What no variant models (a slow chip, an oversize file on a plain reader) sits in a thin
transport wrapper around the simulated card, which also counts what the reader sends.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.app.chip import PcscChipReader, chip_read_from
from agent.app.eligibility import EligibilityCache, EligibilityChain, record_to_dict
from agent.app.finger import ModuleFinger
from agent.app.flow import CheckinFlow, FlowTimeouts
from agent.app.outputs import MemoryOutput
from agent.app.policy import Finding, Policy, findings, relaxations
from agent.app.ports import CardInserted, ChipRead, KeysEntered
from agent.bio.module import FingerprintModule
from agent.card import tlv
from agent.card.errors import CardError, ChainingError, FileTooLarge, ReadDeadlineError
from agent.card.read import RULES, read_document
from agent.card.session import ChipSession
from agent.model import (
    CLONE_RULES,
    Assurance,
    CheckinFacts,
    ChipFacts,
    Eligibility,
    EligibilitySource,
    FingerFacts,
    FingerStatus,
    InsuranceRecord,
)
from sim.card import InProcessReader, SimulatedCard, build_card
from sim.card import eac as sim_eac
from sim.finger.module import SimModule
from sim.infra.pcscd import Pcscd
from tests.card_fixtures import keys_of, pcscd_card, read_cli, trust_of
from tests.flow_fakes import PERSON, FakeFinger, FakeReader, MemorySink
from tests.test_eac_checkin import check_in, eac_flow

NOW = dt.datetime.now(dt.UTC)
FAST = FlowTimeouts(keys=0.3, card=0.3, read=5, finger=1.0, outcome=0.1, card_removal=0.3)
ALL = ["com", "dg1", "dg13", "dg14", "dg15", "dg3"]


class Wrapped:
    """A CardTransport around a simulated card whose answers a test can replace (a hostile reader-side view)."""

    def __init__(self, card: SimulatedCard, answer: Callable[[bytes, Callable[[bytes], bytes]], bytes]) -> None:
        self.inner = InProcessReader(card)
        self.answer = answer
        self.sent: list[bytes] = []

    @property
    def name(self) -> str:
        return "wrapped"

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.answer(apdu, self.inner.transmit)

    def close(self) -> None:
        self.inner.close()


# --- downgrade rules -----------------------------------------------------------------------------------------


def test_a_clone_hiding_dg14_and_dg15_is_a_suspected_clone(tmp_path: Path) -> None:
    card = build_card("cccd", seed=201, variant="clone-hiding-dg14-dg15")
    r = read_document(InProcessReader(card), keys_of(card), ["dg1", "dg13"], trust=trust_of(card, tmp_path))
    # the copied signed files are genuine: Passive Authentication passes, and the SOD still lists DG14/DG15
    assert r.passive_auth is not None and r.passive_auth.valid
    assert {"dg14", "dg15"} <= set(r.listed) and {"dg14", "dg15"} <= set(r.missing)
    assert [hit.rule for hit in r.rules] == ["DG14_WITHHELD", "DG15_WITHHELD"]
    assert all(hit.clone for hit in r.rules) and CLONE_RULES == {rule for rule, clone in RULES.items() if clone}
    assert r.failures() == ["DG14_WITHHELD", "DG15_WITHHELD"]
    facts = ChipFacts("PACE", True, rules=tuple(hit.rule for hit in r.rules))
    assert facts.clone_suspected


def test_listed_dg14_and_dg15_are_read_even_when_not_asked_for(tmp_path: Path) -> None:
    card = build_card("cccd", seed=202)
    r = read_document(InProcessReader(card), keys_of(card), ["dg1"], trust=trust_of(card, tmp_path))
    assert {"dg14", "dg15", "sod"} <= set(r.files)
    assert r.chip_auth is not None and r.chip_auth.valid and r.active_auth is not None and r.active_auth.valid
    assert r.rules == [] and r.failures() == []


def test_an_unknown_aa_trailer_fails_when_the_sod_covers_dg15(tmp_path: Path) -> None:
    card = build_card("cccd", seed=203, variant="aa-unknown-trailer")  # a hash identifier no reader knows
    r = read_document(InProcessReader(card), keys_of(card), ["dg1", "dg15"], trust=trust_of(card, tmp_path))
    assert r.active_auth is not None and r.active_auth.valid is False, r.active_auth
    assert "9796-2 trailer" in r.active_auth.detail and "required by EF.SOD" in r.active_auth.detail
    assert "AA_REQUIRED" in [hit.rule for hit in r.rules]
    assert r.as_dict()["active_auth"]["valid"] is False


def test_pace_in_dg14_without_ef_cardaccess_is_flagged(tmp_path: Path) -> None:
    card = build_card("cccd", seed=204, variant="cardaccess-missing")
    r = read_document(InProcessReader(card), keys_of(card), ["dg1"], trust=trust_of(card, tmp_path))
    assert r.access == "BAC"  # PACE avoided
    assert [hit.rule for hit in r.rules] == ["CARD_ACCESS_MISSING"]
    facts = ChipFacts("BAC", True, chip_auth=True, active_auth=True, rules=("CARD_ACCESS_MISSING",))
    decision = Policy.default().decide(_facts(facts))
    assert (decision.outcome.value, decision.reason) == ("refused", "PACE_DOWNGRADE")


def test_a_chip_refusing_extended_length_cannot_excuse_itself_from_dh_chip_authentication(tmp_path: Path) -> None:
    """Only this terminal's own limit excuses CA; a copy that answers 6700 to one long read must not get a desk
    referral instead of a clone refusal."""
    card = build_card("cccd", seed=205, ca_kind="DH", extended_length=False)
    r = read_document(InProcessReader(card), keys_of(card), ["dg1"], trust=trust_of(card, tmp_path))
    assert r.chip_auth is not None and r.chip_auth.valid is False and r.chip_auth.failed_step != "extended"
    assert "CA_NOT_RUN" not in [hit.rule for hit in r.rules]
    decision = Policy.default().decide(_facts(chip_read_from(r).facts))  # the facts the check-in flow gets
    assert (decision.outcome.value, decision.reason) == ("refused", "CLONE_SUSPECTED")


def test_dh_chip_authentication_without_extended_length_is_not_run_and_refers(tmp_path: Path) -> None:
    card = build_card("cccd", seed=205, ca_kind="DH")
    r = read_document(InProcessReader(card), keys_of(card), ["dg1"], trust=trust_of(card, tmp_path),
                      extended_length=False)  # fmt: skip
    assert r.chip_auth is not None and r.chip_auth.valid is None and r.chip_auth.failed_step == "extended"
    assert [hit.rule for hit in r.rules] == ["CA_NOT_RUN"] and not r.rules[0].clone
    decision = Policy.default().decide(_facts(ChipFacts("PACE", True, None, True, True, rules=("CA_NOT_RUN",))))
    assert (decision.outcome.value, decision.reason) == ("refer_desk", "CHIP_AUTH_NOT_RUN")


def test_every_rule_has_a_finding_or_counts_as_a_clone() -> None:
    for rule, clone in RULES.items():
        found = findings(_facts(ChipFacts("PACE", True, rules=(rule,))))
        assert found, rule
        assert (Finding.CLONE_SUSPECTED in found) == clone, rule
        outcome = Policy.default().decide(_facts(ChipFacts("PACE", True, rules=(rule,)))).outcome.value
        assert outcome in ("refused", "refer_desk"), rule


# --- hostile chips -------------------------------------------------------------------------------------------


def test_a_chip_without_sfi_support_is_read_by_select(tmp_path: Path) -> None:
    card = build_card("cccd", seed=206, variant="no-sfi")  # READ BINARY by SFI answers 6A86
    r = read_document(InProcessReader(card), keys_of(card), ["dg1", "dg11", "dg13"], trust=trust_of(card, tmp_path))
    assert r.passive_auth is not None and r.passive_auth.valid, r.passive_auth
    assert r.missing == ["dg11"]  # a missing file told apart from the refused SFI read
    assert r.dg13 is not None and r.chip_auth is not None and r.chip_auth.valid
    assert r.active_auth is not None and r.active_auth.valid and r.rules == []


def test_endless_response_chaining_is_bounded() -> None:
    card = build_card("cccd", seed=207, variant="hostile-chaining")
    transport = Wrapped(card, lambda apdu, real: real(apdu))  # counts what the reader sends
    start = time.monotonic()
    with pytest.raises(ChainingError):
        read_document(transport, keys_of(card), ["dg1"])
    assert len(transport.sent) <= 300 and time.monotonic() - start < 5


def test_a_file_larger_than_its_data_group_allows_is_refused_before_reading() -> None:
    card = build_card("cccd", seed=208)
    card.chip.files["dg13"] = tlv.encode(0x6D, b"\x00" * 70_000)  # 64 KiB is the most a DG13 may be
    transport = Wrapped(card, lambda apdu, real: real(apdu))
    with pytest.raises(FileTooLarge, match="dg13 announces 70"):
        read_document(transport, keys_of(card), ["dg1", "dg13"])
    assert len(transport.sent) < 40  # refused on the first chunk, not read to the end

    class Plain:  # no secure messaging: one answer announcing a 16 MiB DG2
        name = "plain"

        def transmit(self, apdu: bytes) -> bytes:
            return bytes.fromhex("758400ffffff") + b"\x00" * 200 + b"\x90\x00"

        def close(self) -> None:
            pass

    with pytest.raises(FileTooLarge):
        ChipSession(Plain()).read_file("dg2")


def test_a_slow_chip_costs_at_most_the_read_deadline() -> None:
    card = build_card("cccd", seed=209)

    def slow(apdu: bytes, real: Callable[[bytes], bytes]) -> bytes:
        time.sleep(0.2)  # the whole read would take over 6 s
        return real(apdu)

    start = time.monotonic()
    with pytest.raises(ReadDeadlineError):
        read_document(Wrapped(card, slow), keys_of(card), ["dg1", "dg13", "dg14", "dg15"],
                      deadline=time.monotonic() + 0.5)  # fmt: skip
    assert time.monotonic() - start < 2.0


def test_the_reader_applies_the_read_timeout() -> None:
    card = build_card("cccd", seed=210)

    def slow(apdu: bytes, real: Callable[[bytes], bytes]) -> bytes:
        time.sleep(0.2)
        return real(apdu)

    reader = PcscChipReader(lambda: Wrapped(card, slow), ["dg1", "dg13"], None, read_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(ReadDeadlineError):
        reader.read(keys_of(card))
    assert time.monotonic() - start < 2.0
    assert issubclass(ReadDeadlineError, CardError)  # the flow shows "read failed", never a decision


# --- the finger rule -----------------------------------------------------------------------------------------


def _facts(chip: ChipFacts, finger_status: FingerStatus = FingerStatus.MATCH, required: bool = False) -> CheckinFacts:
    record = InsuranceRecord(PERSON.id_number, "DN4010112345678", dt.date(2020, 1, 1), dt.date(2099, 1, 1),
                             "01001", 4)  # fmt: skip
    finger = FingerFacts(finger_status, required=required)
    eligibility = Eligibility(record, EligibilitySource.ONLINE, True)
    return CheckinFacts(PERSON, Assurance.CHIP, chip, finger, eligibility, dt.date(2026, 11, 30), "01001")


@pytest.mark.parametrize("status", [FingerStatus.NOT_CHECKED, FingerStatus.ERROR])
def test_a_required_finger_not_checked_refers_to_the_desk(status: FingerStatus) -> None:
    chip = ChipFacts("PACE", True, chip_auth=True, active_auth=True, finger_expected=True)
    decision = Policy.default().decide(_facts(chip, status, required=True))
    assert (decision.outcome.value, decision.reason) == ("refer_desk", "FINGER_REQUIRED_NOT_CHECKED")
    assert "fingerprint was not checked" in decision.message_en
    relaxed = Policy.from_config({"finger_required_not_checked": "admit"})
    assert relaxed.decide(_facts(chip, status, required=True)).outcome.value == "admitted"
    # not required (no module, or no credentials): the old finding, admitted by default
    assert Policy.default().decide(_facts(chip, status)).reason == "OK"


def test_relaxations_name_every_fail_closed_key_relaxed() -> None:
    assert relaxations({}) == []
    assert relaxations({"finger_not_checked": "admit", "finger_required_not_checked": "refer_desk"}) == []
    warnings = relaxations({"finger_required_not_checked": "admit", "clone_suspected": "admit_provisional"})
    assert len(warnings) == 2
    assert any(w.startswith("policy.finger_required_not_checked = 'admit'") for w in warnings)
    assert any(w.startswith("policy.clone_suspected = 'admit_provisional'") for w in warnings)


def _eac_flow(card: SimulatedCard, finger: ModuleFinger, tmp_path: Path, credentials: Path | None,
              files: list[str] | None = None) -> tuple[CheckinFlow, MemoryOutput, MemorySink]:  # fmt: skip
    return eac_flow(card, finger, tmp_path, credentials, files, FAST)


@pytest.mark.pty
def test_a_finger_left_off_the_sensor_refers_to_the_desk(
    module: tuple[SimModule, FingerprintModule], tmp_path: Path
) -> None:
    _, driver = module
    creds = sim_eac.eac_pki(0).write_credentials(tmp_path / "terminal")
    card = build_card("cccd", seed=211)
    flow, out, sink = _eac_flow(card, ModuleFinger(driver, 50), tmp_path, creds)
    check_in(flow, card)  # nobody touches the sensor
    record = sink.records[-1][1]
    assert record.finger.status is FingerStatus.ERROR and record.finger.required
    assert record.chip is not None and record.chip.finger_expected and record.chip.finger_reference is not None
    assert (out.shown[-1].outcome, out.shown[-1].reason) == ("refer_desk", "FINGER_REQUIRED_NOT_CHECKED")
    assert Finding.FINGER_REQUIRED_NOT_CHECKED in record.decision.findings


@pytest.mark.pty
def test_terminal_authentication_refused_refers_to_the_desk(
    module: tuple[SimModule, FingerprintModule], tmp_path: Path
) -> None:
    sim, driver = module
    creds = sim_eac.eac_pki(7).write_credentials(tmp_path / "terminal")  # a CVCA this chip does not trust
    card = build_card("cccd", seed=212)
    flow, out, sink = _eac_flow(card, ModuleFinger(driver, 50), tmp_path, creds, files=["dg1", "dg13"])
    sim.place(sim_eac.finger_identity(card.person.id_number))
    check_in(flow, card)
    record = sink.records[-1][1]
    assert record.chip is not None and record.chip.finger_reference is None and record.chip.finger_expected
    assert (out.shown[-1].outcome, out.shown[-1].reason) == ("refer_desk", "FINGER_REQUIRED_NOT_CHECKED")


@pytest.mark.pty
def test_without_terminal_credentials_the_finger_is_not_required(
    module: tuple[SimModule, FingerprintModule], tmp_path: Path
) -> None:
    _, driver = module
    card = build_card("cccd", seed=213)
    flow, out, sink = _eac_flow(card, ModuleFinger(driver, 50), tmp_path, None)
    check_in(flow, card)
    assert not sink.records[-1][1].finger.required
    assert out.shown[-1].outcome == "admitted"


@pytest.mark.pty
def test_a_clone_hiding_dg14_dg15_is_refused_at_the_gate(
    module: tuple[SimModule, FingerprintModule], tmp_path: Path
) -> None:
    sim, driver = module
    card = build_card("cccd", seed=214, variant="clone-hiding-dg14-dg15")
    flow, out, sink = _eac_flow(card, ModuleFinger(driver, 50), tmp_path, None, files=["dg1", "dg13"])
    sim.place(sim_eac.finger_identity(card.person.id_number))
    check_in(flow, card)
    chip = sink.records[-1][1].chip
    assert chip is not None and chip.passive_auth is True and chip.rules == ("DG14_WITHHELD", "DG15_WITHHELD")
    assert (out.shown[-1].outcome, out.shown[-1].reason) == ("refused", "CLONE_SUSPECTED")


# --- the catch-all -------------------------------------------------------------------------------------------


class Boom(RuntimeError):
    pass


def _boom(*_: object, **__: object) -> object:
    raise Boom("injected")


STAGES = ["keys", "read", "finger", "eligibility", "decide", "store", "show"]


@pytest.mark.parametrize("stage", STAGES)
def test_an_unexpected_exception_in_any_stage_closes_the_gate_and_serves_the_next_patient(
    stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = FakeReader(ChipRead(PERSON, ChipFacts("PACE", True, chip_auth=True, finger_reference=b"ref")))
    finger = FakeFinger()
    out, sink = MemoryOutput(), MemorySink()
    record = InsuranceRecord(PERSON.id_number, "DN4010112345678", dt.date(2020, 1, 1), dt.date(2099, 1, 1),
                             "01001", 4)  # fmt: skip
    cache = EligibilityCache(dt.timedelta(hours=24), now=lambda: NOW)
    cache.apply_snapshot([record_to_dict(record)], NOW - dt.timedelta(hours=1))
    flow = CheckinFlow(reader=reader, eligibility=EligibilityChain(cache), sink=sink, output=out,
                       policy=Policy.default(), facility_code="01001", finger=finger, timeouts=FAST)  # fmt: skip
    with monkeypatch.context() as patch:
        target = {"keys": (flow, "_wait_keys"), "read": (reader, "read"), "finger": (finger, "match"),
                  "eligibility": (flow.eligibility, "lookup"), "decide": (flow.policy, "decide"),
                  "store": (sink, "store"), "show": (out, "show")}[stage]  # fmt: skip
        if stage == "decide":
            patch.setattr(flow, "policy", type("Broken", (), {"decide": _boom})())
        else:
            patch.setattr(*target, _boom)
        flow.card_present = True
        flow.submit(KeysEntered(keys_of_fake(), "qr"))
        shown = flow.handle(CardInserted())
    assert shown is not None and (shown.outcome, shown.reason) == ("refer_desk", "INTERNAL_ERROR")
    assert sink.errors and sink.errors[-1][1:] == (stage, "Boom")
    assert flow.state.value == "idle" and out.prompts[-1] == "ready"
    if stage != "show":
        assert out.shown[-1].reason == "INTERNAL_ERROR" and out.shown[-1].event_id == sink.errors[-1][0]
    # the next patient is served as usual
    flow.submit(KeysEntered(keys_of_fake(), "qr"))
    flow.card_present = True
    nxt = flow.handle(CardInserted())
    assert nxt is not None and nxt.outcome == "admitted", nxt


def test_the_finger_thread_does_not_die_of_an_unexpected_exception() -> None:
    finger = FakeFinger()
    finger.capture = _boom  # type: ignore[method-assign]
    reader = FakeReader(ChipRead(PERSON, ChipFacts("PACE", True, chip_auth=True, finger_reference=b"ref",
                                                   finger_expected=True)))  # fmt: skip
    out, sink = MemoryOutput(), MemorySink()
    flow = CheckinFlow(reader=reader, eligibility=EligibilityChain(EligibilityCache(dt.timedelta(hours=1))),
                       sink=sink, output=out, policy=Policy.default(), facility_code="01001", finger=finger,
                       timeouts=FAST)  # fmt: skip
    hooked: list[object] = []
    old = threading.excepthook
    threading.excepthook = hooked.append
    try:
        flow.card_present = True
        flow.submit(KeysEntered(keys_of_fake(), "qr"))
        shown = flow.handle(CardInserted())
    finally:
        threading.excepthook = old
    assert hooked == []
    assert shown is not None and shown.reason == "FINGER_REQUIRED_NOT_CHECKED"
    assert "unexpected Boom" in sink.records[-1][1].finger.detail


def keys_of_fake() -> object:
    from agent.card.keys import AccessKeys

    return AccessKeys(can="123456")


# --- gate-agent read: exit codes and --json through pcscd + vpcd ---------------------------------------------


@pytest.mark.pcscd
def test_read_of_a_genuine_card_without_trust_exits_0(pcscd: Pcscd) -> None:
    card = build_card("cccd", seed=222)
    with pcscd_card(pcscd, card):
        code, out, err = read_cli(pcscd, "--can", str(card.keys["can"]))
    assert code == 0, err
    assert out["passive_auth"]["valid"] is None and out["rules"] == [] and out["failures"] == []


@pytest.mark.pcscd
def test_read_wrong_keys_exit_2_with_a_json_error(pcscd: Pcscd) -> None:
    card = build_card("cccd", seed=223)
    with pcscd_card(pcscd, card):
        code, out, _ = read_cli(pcscd, "--can", "000000", "--doc-number", "X00000000", "--birth", "900101",
                                 "--expiry", "300101")  # fmt: skip
    assert code == 2
    assert out["error"]["type"] == "AccessDenied" and out["error"]["exit"] == 2


@pytest.mark.pcscd
def test_read_card_error_exits_3_with_a_json_error(pcscd: Pcscd) -> None:
    card = build_card("cccd", seed=224)
    card.chip.files["dg13"] = tlv.encode(0x6D, b"\x00" * 70_000)
    with pcscd_card(pcscd, card):
        code, out, _ = read_cli(pcscd, "--can", str(card.keys["can"]), "--files", "dg1,dg13")
    assert code == 3
    assert out["error"]["type"] == "FileTooLarge" and out["error"]["exit"] == 3


@pytest.mark.pcscd
def test_read_without_a_reader_prints_a_json_error(pcscd: Pcscd) -> None:
    res = subprocess.run([sys.executable, "-m", "agent", "read", "--reader", "no such reader", "--can", "123456",
                          "--json"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **pcscd.env})  # fmt: skip
    assert res.returncode == 3 and json.loads(res.stdout)["error"]["exit"] == 3


def test_read_bad_input_prints_a_json_error_without_the_value() -> None:
    res = subprocess.run([sys.executable, "-m", "agent", "read", "--id-number", "98765", "--birth", "01011990",
                          "--json"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 2
    error = json.loads(res.stdout)["error"]
    assert error["exit"] == 2 and error["type"] == "KeyDerivationError"
    assert "98765" not in res.stdout + res.stderr


# --- personal data never in an error message ----------------------------------------------------------------


def test_input_errors_name_the_field_not_the_value() -> None:
    from agent.card.cccd import PersonalId, parse_card_qr, parse_ddmmyyyy
    from agent.card.errors import InputError
    from agent.card.mrz import parse_mrz
    from tests.ldsgen import td1, td3

    good = td3(doc="C01234567", birth="850203")
    bad_digit = good.replace("C01234567", "C01234568", 1)
    cases: list[tuple[Callable[[], object], tuple[str, ...]]] = [
        (lambda: parse_ddmmyyyy("31021990", "birth"), ("31021990",)),
        (lambda: parse_ddmmyyyy("1990x", "birth"), ("1990x",)),
        (lambda: PersonalId("999090012345"), ("999",)),
        (lambda: parse_card_qr("001090012345||NGUYEN VAN AN|01011990|Khac|HA NOI|01012021"), ("Khac",)),
        (lambda: parse_mrz(bad_digit), ("C01234568",)),
        (lambda: parse_mrz(td1(birth="901301")), ("901301",)),
    ]
    for make, values in cases:
        with pytest.raises(InputError) as caught:
            make()
        assert caught.value.field, caught.value
        for value in values:
            assert value not in str(caught.value), (str(caught.value), value)


def test_config_check_warns_when_the_policy_is_relaxed(tmp_path: Path) -> None:
    base = '[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\n'
    relaxed, strict = tmp_path / "relaxed.toml", tmp_path / "strict.toml"
    relaxed.write_text(base + '[policy]\nfinger_required_not_checked = "admit"\n')
    strict.write_text(base + '[policy]\nfinger_not_checked = "admit"\n')
    res = subprocess.run([sys.executable, "-m", "agent", "config", "check", "--config", str(relaxed), "--json"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "warning: policy.finger_required_not_checked = 'admit'" in res.stderr
    assert json.loads(res.stdout)["warnings"][0].startswith("policy.finger_required_not_checked")
    res = subprocess.run([sys.executable, "-m", "agent", "config", "check", "--config", str(strict)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0 and "warning: policy." not in res.stderr


def test_every_reason_and_rule_is_documented() -> None:
    from agent.app.policy import DEFAULT_ACTIONS, MESSAGES

    root = Path(__file__).resolve().parent.parent
    policy_doc = (root / "docs" / "policy.md").read_text()
    readme = (root / "README.md").read_text()
    example = (root / "docs" / "agent.example.toml").read_text()
    cddl = (root / "docs" / "events.cddl").read_text()
    for finding in Finding:
        assert f"`{finding.value}`" in policy_doc or f"`{finding.value}`," in policy_doc, finding
        assert finding in MESSAGES and finding in DEFAULT_ACTIONS
        assert f"{finding.value.lower()} = " in example, finding
    for rule in RULES:
        assert f"`{rule}`" in policy_doc and rule in readme and f'"{rule}"' in cddl, rule
    for code in ("INTERNAL_ERROR", "STORE_FAILED", "FINGER_REQUIRED_NOT_CHECKED"):
        assert code in policy_doc
    # the exit-code table of gate-agent read: each status once, 1 reserved for authenticity
    table = [line for line in readme.splitlines() if line.startswith("| ") and line[2:4].strip() in "0123"]
    assert [line[2] for line in table] == ["0", "1", "2", "3"], table
    assert "nothing else exits 1" in table[1]


def test_an_untyped_surprise_inside_the_read_becomes_a_typed_card_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.card import session as session_mod
    from agent.card.errors import UnexpectedCardData

    card = build_card("cccd", seed=230)

    def overflow(self: object, name: str) -> bytes:
        return (1 << 40).to_bytes(3, "big")  # what an unchecked offset once did

    monkeypatch.setattr(session_mod.ChipSession, "read_file", overflow)
    with pytest.raises(UnexpectedCardData, match="OverflowError"):
        read_document(InProcessReader(card), keys_of(card), ["dg1"])


def test_timeouts_read_from_the_config_bounds_the_gates_chip_read(tmp_path: Path) -> None:
    from agent.app.wiring import build_runtime
    from agent.config import load_config

    config = tmp_path / "agent.toml"
    (tmp_path / "trust").mkdir()  # the schema requires the directory to exist
    config.write_text(f'[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\nstate_dir = "{tmp_path / "s"}"\n'
                      f'[reader]\ntrust_dir = "{tmp_path / "trust"}"\n[timeouts]\nread = 7.5\n')  # fmt: skip
    runtime = build_runtime(load_config(config))
    try:
        reader = runtime.flow.reader
        assert isinstance(reader, PcscChipReader) and reader.read_timeout == 7.5
    finally:
        for close in runtime.closers:
            close()


@pytest.mark.pty
def test_expired_terminal_credentials_do_not_turn_the_finger_check_off(
    module: tuple[SimModule, FingerprintModule], tmp_path: Path
) -> None:
    sim, driver = module
    expired = sim_eac.eac_pki(0, terminal_days=(-60, -1)).write_credentials(tmp_path / "expired")
    card = build_card("cccd", seed=215)
    flow, out, sink = _eac_flow(card, ModuleFinger(driver, 50), tmp_path, expired)
    sim.place(sim_eac.finger_identity(card.person.id_number))
    check_in(flow, card)
    record = sink.records[-1][1]
    assert record.chip is not None and record.chip.finger_reference is None and record.finger.required
    assert (out.shown[-1].outcome, out.shown[-1].reason) == ("refer_desk", "FINGER_REQUIRED_NOT_CHECKED")
