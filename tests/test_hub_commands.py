"""Hub commands change the terminal's files durably and all-or-nothing; no old file goes before the new are in.

Files are real files in a temporary directory; ``os.fsync`` is watched (through
/proc/self/fd) to see which files and directories were made durable, and a power
cut is played by failing the first deletion.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app.chip import PcscChipReader
from agent.app.eligibility import EligibilityCache
from agent.app.hub_commands import HubCommands
from agent.config import Config, load_config
from agent.store.files import write_atomic, write_json_atomic
from sim.card import InProcessReader, build_card
from sim.card import eac as sim_eac


class PowerCut(Exception):
    pass


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths ``os.fsync`` was called on, in order."""
    paths: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    yield paths


def _config(tmp_path: Path, credentials: Path | None = None) -> Config:
    path = tmp_path / "agent.toml"
    path.write_text(f"""
[terminal]
facility_id = "01001"
terminal_id = "gate-1"
state_dir = "{tmp_path / 'state'}"
[reader]
trust_dir = "{tmp_path / 'trust'}"
terminal_credentials = "{credentials or ''}"
""")  # fmt: skip
    return load_config(path)


def _commands(cfg: Config, credentials: Path | None = None) -> HubCommands:
    reader = PcscChipReader(lambda: InProcessReader(build_card()), ["dg1"], Path(cfg.reader.trust_dir),
                            credentials_dir=credentials)  # fmt: skip
    return HubCommands(cfg, EligibilityCache(dt.timedelta(hours=1)), reader, None)  # type: ignore[arg-type]


def _trust_files(tmp_path: Path) -> dict[str, bytes]:
    """A master list and a CRL; the CSCA that signed the list is pinned as the master-list-signer root."""
    build_card().write_trust(str(tmp_path / "issued"))
    (tmp_path / "state").mkdir(exist_ok=True)
    (tmp_path / "state" / "ml-root.pem").write_bytes((tmp_path / "issued" / "csca.pem").read_bytes())
    return {p.name: p.read_bytes() for p in sorted((tmp_path / "issued").iterdir()) if p.suffix in (".ml", ".crl")}


def test_write_atomic_replaces_whole_files_with_the_mode_asked(tmp_path: Path, synced: list[str]) -> None:
    target = tmp_path / "doc.json"
    (tmp_path / ".doc.json.tmp").write_bytes(b"left over by a power cut")
    (tmp_path / ".doc.json.tmp").chmod(0o666)
    write_json_atomic(target, {"name": "Nguyễn"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"name": "Nguyễn"}
    assert target.stat().st_mode & 0o777 == 0o600
    assert synced == [str(tmp_path / ".doc.json.tmp"), str(tmp_path)]  # the data, then the rename
    write_atomic(target, b"x" * 100_000, 0o644)
    assert target.read_bytes() == b"x" * 100_000 and target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_trust_update_is_checked_whole_then_each_file_made_durable(tmp_path: Path, synced: list[str]) -> None:
    cfg = _config(tmp_path)
    commands = _commands(cfg)
    files = _trust_files(tmp_path)
    trust = tmp_path / "trust"
    ok, reason = commands({"type": "trust_update", "files": {**files, "broken.ml": b"not a master list"}})
    assert not ok and "broken.ml" in reason
    assert not trust.exists() or list(trust.iterdir()) == []
    ok, reason = commands({"type": "trust_update", "files": {**files, "notes.txt": b""}})
    assert not ok and "refused trust file" in reason
    csca = (tmp_path / "issued" / "csca.pem").read_bytes()
    ok, reason = commands({"type": "trust_update", "files": {**files, "csca.pem": csca}})
    assert not ok and "only in a signed master list" in reason
    synced.clear()
    ok, reason = commands({"type": "trust_update", "files": files})
    assert ok, reason
    assert {p.name: p.read_bytes() for p in trust.iterdir()} == files
    for name in files:
        assert str(trust / f".{name}.tmp") in synced  # the bytes were on disk before the rename
    assert synced[-1] == str(trust)
    assert commands.reader.trust is not None


def test_new_credentials_are_in_place_before_any_old_certificate_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "terminal"
    sim_eac.eac_pki(0, terminal_days=(-1, 5)).write_credentials(target)
    (target / "old-dv.cvcert").write_bytes((target / next(p.name for p in target.glob("*.cvcert"))).read_bytes())
    commands = _commands(_config(tmp_path, target), target)
    fresh = sim_eac.eac_pki(0, terminal_days=(-1, 60))
    files = {f"{k}.cvcert": v for k, v in fresh.certificates.items()}

    def cut(self: Path, missing_ok: bool = False) -> None:
        raise PowerCut(str(self))

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", cut)
        with pytest.raises(PowerCut, match=r"old-dv\.cvcert"):
            commands({"type": "terminal_credentials", "files": files})
    for name, data in files.items():  # the power cut came after every new file was in place
        assert (target / name).read_bytes() == data
    assert (target / "terminal.key").stat().st_mode & 0o077 == 0
    ok, reason = commands({"type": "terminal_credentials", "files": files})  # the hub sends it again
    assert ok, reason
    assert sorted(p.name for p in target.iterdir()) == sorted([*files, "terminal.key"])
    assert commands.reader.credentials is not None
    assert commands.reader.credentials.terminal.expiration == dt.date.today() + dt.timedelta(days=60)


def test_a_rejected_credentials_set_leaves_the_old_files_untouched(tmp_path: Path) -> None:
    target = tmp_path / "terminal"
    sim_eac.eac_pki(0, terminal_days=(-1, 5)).write_credentials(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    commands = _commands(_config(tmp_path, target), target)
    expired = sim_eac.eac_pki(0, terminal_days=(-60, -1))
    ok, reason = commands({"type": "terminal_credentials",
                           "files": {f"{k}.cvcert": v for k, v in expired.certificates.items()}})  # fmt: skip
    assert not ok and "rejected" in reason
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("tmp")] == []  # the staging is gone


def test_a_cvca_link_certificate_must_chain_to_the_current_cvca(tmp_path: Path) -> None:
    """CVCA rollover (TR-03110-3 2.2.1): the new CVCA comes as a link certificate signed by the one trusted now."""
    target = tmp_path / "terminal"
    sim_eac.eac_pki(0).write_credentials(target)
    commands = _commands(_config(tmp_path, target), target)
    old_cvca = sim_eac.seeded_key(0, "cvca")
    terminal_key = sim_eac.seeded_key(0, "is").public_key()
    today = dt.date.today()
    until = today + dt.timedelta(days=90)

    def chain(link_signer: object) -> dict[str, bytes]:
        new_cvca, dv = sim_eac.seeded_key(7, "cvca"), sim_eac.seeded_key(7, "dv")
        ca, dvr, tr = sim_eac.ROLE_CVCA | 3, sim_eac.ROLE_DV_DOMESTIC | 3, sim_eac.ROLE_IS | 3
        return {
            "link.cvcert": sim_eac.make_cvc(car="VNCVCA00001", chr_="VNCVCA00002", public_key=new_cvca.public_key(),
                                            role_rights=ca, effective=today, expiration=until,
                                            signer=link_signer, with_domain=True),  # type: ignore[arg-type]
            "dv2.cvcert": sim_eac.make_cvc(car="VNCVCA00002", chr_="VNDVBHYT00002", public_key=dv.public_key(),
                                           role_rights=dvr, effective=today, expiration=until, signer=new_cvca),
            "is2.cvcert": sim_eac.make_cvc(car="VNDVBHYT00002", chr_="VNISGATE00002", public_key=terminal_key,
                                           role_rights=tr, effective=today, expiration=until, signer=dv),
        }  # fmt: skip

    forged = chain(sim_eac.seeded_key(8, "cvca"))  # a "link" the trusted CVCA did not sign
    ok, reason = commands({"type": "terminal_credentials", "files": forged})
    assert not ok and "VNCVCA00002 does not verify with VNCVCA00001" in reason, reason
    ok, reason = commands({"type": "terminal_credentials", "files": chain(old_cvca)})
    assert ok, reason
    assert commands.reader.credentials is not None
    assert [c.chr for c in commands.reader.credentials.chain] == [
        "VNCVCA00001", "VNCVCA00002", "VNDVBHYT00002", "VNISGATE00002"]  # fmt: skip


def test_policy_is_saved_only_when_valid(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    commands = _commands(cfg)
    cfg.state_dir.mkdir(parents=True)
    ok, reason = commands({"type": "policy", "policy": {"no_such_finding": "admit"}})
    assert not ok and "no_such_finding" in reason
    assert not (cfg.state_dir / "policy.json").exists()
    ok, reason = commands({"type": "policy", "policy": "refuse everyone"})
    assert (ok, reason) == (False, "policy must be a table")
    assert commands({"type": "reboot"}) == (False, "unknown command type 'reboot'")
