"""Synthetic fingers: reproducible, finger-like (the matcher finds the ground-truth minutiae), impressions vary."""

from __future__ import annotations

from agent.bio.image import GrayImage
from agent.bio.matcher import NbisMatcher
from sim.finger import synth


def test_reproducible_from_the_seed() -> None:
    a, b = synth.master(3, 5), synth.master(3, 5)
    assert a.kind == b.kind and a.minutiae == b.minutiae
    assert synth.impression(a, 2).pixels == synth.impression(b, 2).pixels
    assert synth.impression(a, 1).pixels != synth.impression(a, 2).pixels
    assert synth.master(4, 5).ridges.tobytes() != a.ridges.tobytes()


def test_looks_like_a_finger() -> None:
    m = synth.master(3, 1)
    assert 8.0 <= m.period <= 10.5
    assert 20 <= len(m.minutiae) <= 150
    assert {x.kind for x in m.minutiae} == {"ending", "bifurcation"}
    imp = synth.impression(m, 1)
    assert (imp.width, imp.height, len(imp.pixels)) == (256, 288, 256 * 288)
    # ridges dark on light: about half the finger's area is ridge
    dark = sum(1 for p in imp.pixels if p < 128) / len(imp.pixels)
    assert 0.2 < dark < 0.6


def test_matcher_finds_the_ground_truth_minutiae() -> None:
    matcher = NbisMatcher(keep=200)
    for finger in range(2):
        imp = synth.impression(synth.master(9, finger), 1)
        found = matcher.extract(GrayImage(imp.width, imp.height, imp.pixels)).minutiae
        hits = sum(1 for g in imp.minutiae if any((g.x - m.x) ** 2 + (g.y - m.y) ** 2 <= 100 for m in found))
        assert len(imp.minutiae) >= 15
        assert hits >= 0.6 * len(imp.minutiae), (hits, len(imp.minutiae))


def test_impressions_differ_in_pose_contact_and_skin() -> None:
    m = synth.master(3, 2)
    params = [synth.impression(m, i).params for i in range(1, 6)]
    for key in ("rotation_deg", "shift_x", "elastic_px", "moisture", "contact"):
        assert len({round(p[key], 3) for p in params}) == 5, key
    assert any(p["moisture"] < 0 for p in params) or any(p["moisture"] > 0 for p in params)
    assert synth.impression(m, 1, quality=0.3).params["elastic_px"] > 0
