"""Every card variant of the simulator, read as the gate reads it: the conclusion the registry names.

In-process and through pcscd + vpcd (the ``serve`` fixture), and through ``gate-agent read`` for the
adversarial variants: exit 1 for a failed or skipped-but-required check, 3 for a hostile chip, 0 otherwise.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.app.chip import chip_read_from
from agent.app.policy import Finding, findings
from agent.card.errors import HostileCardError
from agent.card.read import read_document
from agent.card.trust import TrustStore
from agent.model import ChipFacts
from sim.card import REGISTRY, build_card
from sim.card.variants import ACCEPTED, CLONE_SUSPECTED, PASSIVE_AUTH_FAILED, READ_ERROR
from sim.infra.pcscd import Pcscd
from tests.card_fixtures import Serve, id_keys, keys_of, pcscd_card, read_cli

FILES = ["com", "dg1", "dg13"]  # the gate's files; EF.SOD makes it read DG14 and DG15 as well
ADVERSARIAL = ["clone-hiding-dg14-dg15", "no-sfi", "hostile-chaining", "hostile-oversize", "aa-unknown-trailer",
               "cardaccess-missing"]  # fmt: skip


def test_the_adversarial_variants_exist() -> None:
    assert set(ADVERSARIAL) <= set(REGISTRY)


def _facts(result: object) -> ChipFacts:
    return chip_read_from(result).facts  # type: ignore[arg-type]


@pytest.mark.parametrize("serve", ["inprocess", "pcscd"], indirect=True)
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_variant_gets_its_conclusion(name: str, serve: Serve, tmp_path: Path) -> None:
    card = build_card("cccd", seed=400, variant=name)
    card.write_trust(str(tmp_path / "trust"))
    trust = TrustStore.from_directory(tmp_path / "trust")
    conclusion = REGISTRY[name].conclusion
    start = time.monotonic()
    with serve(card) as transport:
        if conclusion == READ_ERROR:
            with pytest.raises(HostileCardError):
                read_document(transport, keys_of(card), FILES, trust=trust, deadline=time.monotonic() + 10)
            assert time.monotonic() - start < 10
            return
        r = read_document(transport, keys_of(card), FILES, trust=trust, deadline=time.monotonic() + 20)
    found = findings_of(r)
    if conclusion == ACCEPTED:
        assert r.failures() == [] and r.passive_auth is not None and r.passive_auth.valid, r.as_dict()
        assert not (set(found) & {Finding.CLONE_SUSPECTED, Finding.PA_FAILED, Finding.PACE_DOWNGRADE})
    elif conclusion == PASSIVE_AUTH_FAILED:
        assert r.passive_auth is not None and r.passive_auth.valid is False and Finding.PA_FAILED in found
    else:
        assert conclusion == CLONE_SUSPECTED
        assert r.failures(), r.as_dict()
        assert set(found) & {Finding.CLONE_SUSPECTED, Finding.PACE_DOWNGRADE}, found


def findings_of(result: object) -> list[Finding]:
    import datetime as dt

    from agent.model import Assurance, CheckinFacts, Eligibility, EligibilitySource, FingerFacts, FingerStatus
    from tests.flow_fakes import PERSON

    facts = CheckinFacts(PERSON, Assurance.CHIP, _facts(result), FingerFacts(FingerStatus.NOT_CHECKED),
                         Eligibility(None, EligibilitySource.NONE, False), dt.date.today(), "01001")  # fmt: skip
    return findings(facts)


@pytest.mark.pcscd
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_gate_agent_read_exit_code_for_each_adversarial_card(name: str, pcscd: Pcscd, tmp_path: Path) -> None:
    card = build_card("cccd", seed=401, variant=name)
    card.write_trust(str(tmp_path / "trust"))
    with pcscd_card(pcscd, card):
        code, out, err = read_cli(pcscd, *id_keys(card), "--trust", str(tmp_path / "trust"))
    conclusion = REGISTRY[name].conclusion
    expected = {ACCEPTED: 0, CLONE_SUSPECTED: 1, PASSIVE_AUTH_FAILED: 1, READ_ERROR: 3}[conclusion]
    assert code == expected, (name, out, err[-2000:])
    if expected == 1:
        assert out["failures"], out
    if expected == 3:
        assert out["error"]["type"] in ("ChainingError", "FileTooLarge"), out
    rules = {"clone-hiding-dg14-dg15": ["DG14_WITHHELD", "DG15_WITHHELD"], "aa-unknown-trailer": ["AA_REQUIRED"],
             "cardaccess-missing": ["CARD_ACCESS_MISSING"], "no-sfi": []}  # fmt: skip
    if name in rules:
        assert [hit["rule"] for hit in out["rules"]] == rules[name], out
    if name == "no-sfi":
        assert out["passive_auth"]["valid"] is True and out["chip_auth"]["valid"] is True
    if name == "clone-hiding-dg14-dg15":  # the copied files are genuine; what the chip withholds names the copy
        assert out["passive_auth"]["valid"] is True and "dg14" in out["listed"]
        assert out["failures"] == ["DG14_WITHHELD", "DG15_WITHHELD"]
    if name == "aa-unknown-trailer":
        assert out["active_auth"]["valid"] is False and "AA_REQUIRED" in out["failures"]
