"""EAC in the check-in: the chip's DG3 reference matched on the fingerprint module, clones refused,
terminal credentials as a status, a doctor check and a hub command.

The chip is the simulated card (in-process transport), the fingerprint module the
simulated module on a real pseudo-terminal, driven by the real driver.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from agent.app.chip import PcscChipReader
from agent.app.doctor import FAIL, OK, WARN, check_terminal_credentials
from agent.app.eligibility import EligibilityCache, EligibilityChain, record_to_dict
from agent.app.finger import ModuleFinger
from agent.app.flow import CheckinFlow, FlowTimeouts
from agent.app.hub_commands import HubCommands
from agent.app.outputs import MemoryOutput
from agent.app.policy import Policy
from agent.app.ports import CardInserted, KeysEntered
from agent.bio.module import FingerprintModule
from agent.config import Config, load_config
from agent.model import FingerStatus, InsuranceRecord
from sim.card import InProcessReader, SimulatedCard, build_card
from sim.card import eac as sim_eac
from sim.finger.module import SimModule
from tests.card_fixtures import keys_of
from tests.flow_fakes import MemorySink

NOW = dt.datetime.now(dt.UTC)
FAST = FlowTimeouts(keys=0.3, card=0.3, read=5, finger=5, outcome=0.1, card_removal=0.3)


def eac_flow(card: SimulatedCard, finger: ModuleFinger, tmp_path: Path, credentials: Path | None,
             files: list[str] | None = None, timeouts: FlowTimeouts = FAST) -> tuple[
    CheckinFlow, MemoryOutput, MemorySink
]:  # fmt: skip
    """A gate reading the card in-process, matching on the module, with the card holder insured (also for
    tests/test_failclosed.py)."""
    card.write_trust(str(tmp_path / "trust"))
    reader = PcscChipReader(lambda: InProcessReader(card), files or ["dg1", "dg13", "dg14", "dg15", "dg3"],
                            tmp_path / "trust", credentials_dir=credentials)  # fmt: skip
    p = card.person
    record = InsuranceRecord(p.id_number, "DN4010112345678", dt.date(2020, 1, 1), dt.date(2099, 12, 31), "01001", 4,
                             "pupils", p.full_name, p.birth, "M" if p.sex_vi == "Nam" else "F")  # fmt: skip
    cache = EligibilityCache(dt.timedelta(hours=24), now=lambda: NOW)
    cache.apply_snapshot([record_to_dict(record)], NOW - dt.timedelta(hours=1))
    out, sink = MemoryOutput(), MemorySink()
    flow = CheckinFlow(reader=reader, eligibility=EligibilityChain(cache), sink=sink, output=out,
                       policy=Policy.default(), facility_code="01001", finger=finger, timeouts=timeouts)  # fmt: skip
    return flow, out, sink


def check_in(flow: CheckinFlow, card: SimulatedCard) -> None:
    flow.submit(KeysEntered(keys_of(card), "qr"))
    flow.card_present = True
    flow.handle(CardInserted())


@pytest.mark.pty
def test_the_chips_fingerprint_reference_is_matched_on_the_module(
    module: tuple[SimModule, FingerprintModule], tmp_path: Path
) -> None:
    sim, driver = module
    creds = sim_eac.eac_pki(0).write_credentials(tmp_path / "terminal")
    card = build_card("cccd", seed=61)
    flow, out, sink = eac_flow(card, ModuleFinger(driver, 50), tmp_path, creds)
    sim.place(sim_eac.finger_identity(card.person.id_number))  # the card holder's own finger
    check_in(flow, card)
    record = sink.records[-1][1]
    assert record.chip is not None and record.chip.chip_auth is True and record.chip.active_auth is True
    assert record.finger.status is FingerStatus.MATCH, record.finger
    assert out.shown[-1].outcome == "admitted"
    # someone else's finger on the same card
    sim.place(sim_eac.finger_identity("000000000000"))
    card.reinsert()
    check_in(flow, card)
    assert sink.records[-1][1].finger.status is FingerStatus.NO_MATCH
    assert (out.shown[-1].outcome, out.shown[-1].reason) == ("refer_desk", "FINGER_NO_MATCH")


@pytest.mark.pty
def test_a_cloned_chip_is_refused(module: tuple[SimModule, FingerprintModule], tmp_path: Path) -> None:
    sim, driver = module
    card = build_card("cccd", seed=62, variant="clone")
    flow, out, sink = eac_flow(card, ModuleFinger(driver, 50), tmp_path, None)
    sim.place(sim_eac.finger_identity(card.person.id_number))
    check_in(flow, card)
    chip = sink.records[-1][1].chip
    assert chip is not None and chip.clone_suspected and chip.passive_auth is True
    assert (out.shown[-1].outcome, out.shown[-1].reason) == ("refused", "CLONE_SUSPECTED")


def test_credentials_status_missing_expired_and_valid(tmp_path: Path) -> None:
    reader = PcscChipReader(lambda: InProcessReader(build_card()), ["dg1"], None, credentials_dir=tmp_path / "none")
    assert reader.credentials is None and reader.credentials_status.startswith("unusable: credentials")
    good = sim_eac.eac_pki(0).write_credentials(tmp_path / "good")
    reader = PcscChipReader(lambda: InProcessReader(build_card()), ["dg1"], None, credentials_dir=good)
    assert reader.credentials is not None and "VNISGATE00001 valid until" in reader.credentials_status
    expired = sim_eac.eac_pki(0, terminal_days=(-60, -1)).write_credentials(tmp_path / "expired")
    reader = PcscChipReader(lambda: InProcessReader(build_card()), ["dg1"], None, credentials_dir=expired)
    assert reader.credentials is None and "not valid on" in reader.credentials_status
    # a check-in still works without them: the chip is read, DG3 stays closed, the finger is "not checked"
    card = build_card("cccd", seed=63)
    read = PcscChipReader(lambda: InProcessReader(card), ["dg1", "dg14", "dg3"], None, credentials_dir=expired)
    chip = read.read(keys_of(card))
    assert chip.facts.finger_reference is None and chip.facts.chip_auth is True


def _config(tmp_path: Path, credentials: Path | None, finger: bool = False) -> Config:
    text = f"""
[terminal]
facility_id = "01001"
terminal_id = "gate-1"
state_dir = "{tmp_path / "state"}"
[reader]
trust_dir = "{tmp_path / "trust"}"
terminal_credentials = "{credentials or ""}"
[finger]
enabled = {"true" if finger else "false"}
url = "{tmp_path / "finger"}"
"""
    path = tmp_path / "agent.toml"
    path.write_text(text)
    (tmp_path / "trust").mkdir(exist_ok=True)  # a configured trust_dir must exist
    return load_config(path)


def test_doctor_checks_terminal_credentials(tmp_path: Path) -> None:
    def status(cfg: Config) -> tuple[str, str]:
        (check,) = list(check_terminal_credentials(cfg))
        return check.status, check.detail

    assert status(_config(tmp_path, None))[0] == OK
    assert status(_config(tmp_path, None, finger=True))[0] == FAIL  # the finger cannot be matched
    good = sim_eac.eac_pki(0).write_credentials(tmp_path / "good")
    assert status(_config(tmp_path, good)) == (OK, f"VNISGATE00001 via VNDVBHYT00001, valid until "
                                                   f"{dt.date.today() + dt.timedelta(days=30)}")  # fmt: skip
    soon = sim_eac.eac_pki(0, terminal_days=(-1, 3)).write_credentials(tmp_path / "soon")
    assert status(_config(tmp_path, soon))[0] == WARN
    expired = sim_eac.eac_pki(0, terminal_days=(-60, -1)).write_credentials(tmp_path / "expired")
    assert status(_config(tmp_path, expired))[0] == FAIL
    no_right = sim_eac.eac_pki(0, rights=sim_eac.READ_DG4).write_credentials(tmp_path / "noright")
    assert status(_config(tmp_path, no_right)) == (FAIL, "VNISGATE00001 does not grant reading DG3 (fingerprints)")


def test_hub_replaces_terminal_credentials_atomically(tmp_path: Path) -> None:
    target = tmp_path / "terminal"
    old = sim_eac.eac_pki(0, terminal_days=(-1, 5)).write_credentials(target)
    cfg = _config(tmp_path, target)
    reader = PcscChipReader(lambda: InProcessReader(build_card()), ["dg1"], None, credentials_dir=target)
    handler = HubCommands(cfg, EligibilityCache(dt.timedelta(hours=1)), reader, None)  # type: ignore[arg-type]
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    fresh = sim_eac.eac_pki(0, terminal_days=(-1, 60))
    files = {f"{k}.cvcert": v for k, v in fresh.certificates.items()}
    # a set whose terminal certificate was not signed by the DV is rejected and changes nothing
    forged = sim_eac.eac_pki(0, forge_terminal=True)
    ok, reason = handler({"type": "terminal_credentials", "files": {**files, "is.cvcert": forged.certificates["is"]}})
    assert not ok and "signature" in reason
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    ok, reason = handler({"type": "terminal_credentials", "files": {**files, "../evil": b""}})
    assert not ok and "bad credentials file" in reason
    # a private key never travels, not even the right one
    ok, reason = handler({"type": "terminal_credentials", "files": {**files, "terminal.key": _pem(fresh.terminal_key)}})
    assert not ok and "private key" in reason
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    ok, reason = handler({"type": "terminal_credentials", "files": files})
    assert ok, reason
    assert reader.credentials is not None
    assert reader.credentials.terminal.expiration == dt.date.today() + dt.timedelta(days=60)
    assert (target / "terminal.key").stat().st_mode & 0o077 == 0
    # renewed certificates for the same key: the key stays
    renewed = sim_eac.eac_pki(0, terminal_days=(-1, 90))
    ok, reason = handler({"type": "terminal_credentials",
                          "files": {f"{k}.cvcert": v for k, v in renewed.certificates.items()}})  # fmt: skip
    assert ok, reason
    assert reader.credentials is not None
    assert reader.credentials.terminal.expiration == dt.date.today() + dt.timedelta(days=90)


def _pem(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_finger_capture_thread_is_not_left_behind(module: tuple[SimModule, FingerprintModule], tmp_path: Path) -> None:
    """No finger placed: the check-in ends with a finger error within its timeout, the module stays usable."""
    sim, driver = module
    creds = sim_eac.eac_pki(0).write_credentials(tmp_path / "terminal")
    card = build_card("cccd", seed=64)
    flow, _, sink = eac_flow(card, ModuleFinger(driver, 50), tmp_path, creds)
    flow.timeouts = FlowTimeouts(keys=0.3, card=0.3, read=5, finger=1.0, outcome=0.1, card_removal=0.3)
    sim.remove()
    check_in(flow, card)
    assert sink.records[-1][1].finger.status is FingerStatus.ERROR
    assert threading.active_count() < 20
    driver.handshake()
