"""Reading and verifying a chip: the same tests over the in-process card and a real pcscd + vpcd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.card.errors import AccessDenied, CardError
from agent.card.read import read_document
from agent.card.trust import TrustStore
from agent.errors import CardRemovedError
from sim.card import InProcessReader, build_card
from sim.infra.pcscd import Pcscd
from tests.card_fixtures import Serve, id_keys, keys_of, pcscd_card, read_cli, trust_of


def test_cccd_full_read_with_pace_and_passive_auth(serve: Serve, tmp_path: Path) -> None:
    card = build_card("cccd", seed=11)
    with serve(card) as transport:
        r = read_document(transport, keys_of(card), ["com", "dg1", "dg2", "dg3", "dg11", "dg13", "dg14", "dg15"],
                          trust=trust_of(card, tmp_path))  # fmt: skip
    p = card.person
    assert r.access == "PACE"
    assert r.passive_auth is not None and r.passive_auth.valid, r.passive_auth
    assert r.missing == ["dg11"] and r.denied == ["dg3"]
    assert r.dg1 is not None and r.dg1.mrz.document_number == p.id_number[3:]
    assert r.dg13 is not None
    assert (r.dg13.id_number, r.dg13.full_name, r.dg13.birth, r.dg13.sex) == (p.id_number, p.full_name, p.birth, p.sex)
    assert r.dg2 is not None and r.dg2.faces[0].format == "jpeg" and len(r.dg2.faces[0].data) > 19_000
    assert r.com is not None and "dg13" in r.com.files
    assert r.files["dg1"] == card.files.files["dg1"]


def test_passport_without_pace_uses_bac(serve: Serve, tmp_path: Path) -> None:
    card = build_card("passport", seed=12, pace=False)
    with serve(card) as transport:
        r = read_document(transport, keys_of(card), ["dg1"], trust=trust_of(card, tmp_path))
    assert r.access == "BAC" and r.passive_auth is not None and r.passive_auth.valid
    assert r.dg1 is not None and r.dg1.mrz.format == "TD3"


def test_pace_refused_falls_back_to_bac(serve: Serve) -> None:
    card = build_card("cccd", seed=13, faults="pace-refused")
    with serve(card) as transport:
        assert read_document(transport, keys_of(card), ["dg1"]).access == "BAC"


def test_wrong_keys_are_a_clean_access_denied(serve: Serve) -> None:
    card = build_card("cccd", seed=14)
    other = build_card("cccd", seed=15)
    with serve(card) as transport, pytest.raises(AccessDenied, match="no access key opened the chip"):
        read_document(transport, keys_of(other), ["dg1"])


def test_chip_without_extended_length(serve: Serve, tmp_path: Path) -> None:
    card = build_card("cccd", seed=16, extended_length=False)
    with serve(card) as transport:
        r = read_document(transport, keys_of(card), ["dg1", "dg2", "dg13"], trust=trust_of(card, tmp_path))
    assert r.passive_auth is not None and r.passive_auth.valid
    assert r.dg2 is not None and len(r.dg2.faces[0].data) > 19_000


def test_offsets_above_32767_use_odd_read_binary(serve: Serve) -> None:
    card = build_card("cccd", seed=17, dg2_size=40_000)
    with serve(card) as transport:
        r = read_document(transport, keys_of(card, can=True), ["dg2"], extended_length=False)
    assert r.files["dg2"] == card.files.files["dg2"] and len(r.files["dg2"]) > 32767


@pytest.mark.parametrize("at", [2, 6, 9])
def test_card_pulled_mid_read_is_a_clean_error_and_a_retry_works(serve: Serve, at: int) -> None:
    card = build_card("cccd", seed=18, faults=f"remove@{at}")
    with serve(card) as transport, pytest.raises(CardRemovedError):
        read_document(transport, keys_of(card), ["dg1", "dg13"])
    card.faults.remove_at.clear()
    card.reinsert()
    with serve(card) as transport:
        assert read_document(transport, keys_of(card), ["dg1", "dg13"]).dg13 is not None


def test_rf_error_is_a_typed_error(serve: Serve) -> None:
    card = build_card("cccd", seed=19, faults="rf-error@9")
    with serve(card) as transport, pytest.raises(CardError):
        read_document(transport, keys_of(card), ["dg1", "dg13"])


@pytest.mark.parametrize(
    ("variant", "step"),
    [
        ("altered-dg", "hash:dg13"),
        ("bad-signature", "signature"),
        ("unknown-csca", "chain"),
        ("expired-signer", "validity"),
        ("revoked-signer", "revocation"),
    ],
)
def test_passive_authentication_names_the_failing_step(variant: str, step: str, tmp_path: Path) -> None:
    card = build_card("cccd", seed=20, variant=variant)
    r = read_document(InProcessReader(card), keys_of(card), ["dg1", "dg13"], trust=trust_of(card, tmp_path))
    assert r.passive_auth is not None
    assert (r.passive_auth.valid, r.passive_auth.failed_step) == (False, step)


def test_master_list_alone_is_enough_trust(tmp_path: Path) -> None:
    card = build_card("cccd", seed=21)
    card.write_trust(str(tmp_path / "all"))
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "list.ml").write_bytes((tmp_path / "all" / "masterlist.ml").read_bytes())
    r = read_document(InProcessReader(card), keys_of(card), ["dg1"], trust=TrustStore.from_directory(tmp_path / "ml"))
    assert r.passive_auth is not None and r.passive_auth.valid
    revocation = next(s for s in r.passive_auth.steps if s.name == "revocation")
    assert "not checked" in revocation.detail


@pytest.mark.pcscd
def test_gate_agent_read_json(pcscd: Pcscd, tmp_path: Path) -> None:
    card = build_card("cccd", seed=22)
    card.write_trust(str(tmp_path / "trust"))
    with pcscd_card(pcscd, card):
        code, out, err = read_cli(pcscd, *id_keys(card), "--trust", str(tmp_path / "trust"))
    assert code == 0, err
    assert out["access"] == "PACE" and out["passive_auth"]["valid"] is True
    assert set(out["dg1"]) >= {"document_number", "surname", "given_names", "nationality", "birth", "expiry", "sex"}
    assert out["dg13"]["full_name"] == card.person.full_name and out["apdus"] > 0 and out["seconds"] > 0


@pytest.mark.pcscd
def test_gate_agent_read_reports_a_missing_reader(pcscd: Pcscd) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "agent", "read", "--reader", "no such reader", "--can", "123456"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **pcscd.env},
    )  # fmt: skip
    assert res.returncode == 3 and "no PC/SC reader matches" in res.stderr


def test_bad_keys_input_is_exit_2() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "agent", "read", "--id-number", "123", "--birth", "01011990"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 2 and "12 digits" in res.stderr


@pytest.mark.pcscd
def test_card_watcher_reports_insert_and_remove(pcscd: Pcscd) -> None:
    import threading

    from agent.transport.pcsc import CardWatcher
    from sim.card.vpcd import VpcdPlug

    events: list[bool] = []
    changed = threading.Event()

    def on_change(present: bool) -> None:
        events.append(present)
        changed.set()

    watcher = CardWatcher(pcscd.reader_names[0][:10], poll_ms=200)
    watcher.start_watch(on_change)
    plug = VpcdPlug(build_card("cccd", seed=23), pcscd.vpcd_ports[0])
    try:
        assert changed.wait(5) and events == [False]  # the initial state: empty reader
        changed.clear()
        plug.start()
        assert changed.wait(10) and events[-1] is True
        assert watcher.state() == "card present"
        changed.clear()
        plug.remove()
        assert changed.wait(10) and events[-1] is False
    finally:
        plug.stop()
        watcher.stop()


def test_missing_pcscd_is_a_clean_error(tmp_path: Path) -> None:
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-such.comm")}
    res = subprocess.run(
        [sys.executable, "-m", "agent", "read", "--can", "123456"], capture_output=True, text=True, timeout=60, env=env
    )
    assert res.returncode == 3 and "cannot reach pcscd" in res.stderr
