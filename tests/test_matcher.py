"""The host matcher (NBIS through the afis C library) on synthetic fingers: genuine accepted, impostors refused."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest

from agent.bio import image as bi
from agent.bio import matcher as bm
from agent.bio.image import GrayImage
from agent.bio.matcher import DEFAULT_THRESHOLD, ExtractionError, MatcherUnavailable, NbisMatcher, Template
from sim.finger import synth

FINGERS = 4


@cache
def impressions() -> dict[tuple[int, int], GrayImage]:
    out = {}
    for f in range(FINGERS):
        m = synth.master(11, f)
        for i in range(3):
            imp = synth.impression(m, i)
            out[f, i] = GrayImage(imp.width, imp.height, imp.pixels)
    return out


@cache
def templates() -> dict[tuple[int, int], Template]:
    matcher = NbisMatcher()
    return {key: matcher.extract(img) for key, img in impressions().items()}


def test_genuine_pairs_match_and_impostors_do_not() -> None:
    matcher = NbisMatcher()
    t = templates()
    for f in range(FINGERS):
        for i in (1, 2):
            assert matcher.compare(t[f, i], t[f, 0]) >= DEFAULT_THRESHOLD, (f, i)
        for g in range(FINGERS):
            if g != f:
                assert matcher.compare(t[g, 1], t[f, 0]) < DEFAULT_THRESHOLD, (f, g)


def test_reference_through_wsq_still_matches() -> None:
    matcher = NbisMatcher()
    ref = impressions()[0, 0]
    decoded = bi.decode(bi.encode(ref, bi.WSQ), ref.width, ref.height, bi.WSQ)
    assert matcher.compare(templates()[0, 1], matcher.extract(decoded)) >= DEFAULT_THRESHOLD


def test_comparison_is_symmetric_enough_and_deterministic() -> None:
    matcher = NbisMatcher()
    t = templates()
    assert matcher.compare(t[1, 1], t[1, 0]) == matcher.compare(t[1, 1], t[1, 0])
    assert matcher.extract(impressions()[2, 1]) == t[2, 1]


def test_concurrent_use_gives_the_sequential_results() -> None:
    matcher = NbisMatcher()
    keys = sorted(impressions())
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda k: matcher.extract(impressions()[k]), keys * 2))
    assert got == [templates()[k] for k in keys * 2]
    barrier = threading.Barrier(4)

    def score(f: int) -> int:
        barrier.wait()
        return matcher.compare(templates()[f, 1], templates()[f, 0])

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(score, range(FINGERS))) == [score_seq(f) for f in range(FINGERS)]


def score_seq(f: int) -> int:
    return NbisMatcher().compare(templates()[f, 1], templates()[f, 0])


def test_keeps_the_most_reliable_minutiae() -> None:
    img = impressions()[0, 1]
    few, many = NbisMatcher(keep=12).extract(img), NbisMatcher(keep=200).extract(img)
    assert len(few.minutiae) == 12 < len(many.minutiae)
    floor = sorted((m.reliability for m in many.minutiae), reverse=True)[11]
    assert all(m.reliability >= floor for m in few.minutiae)


def test_unusable_images_are_typed_errors() -> None:
    matcher = NbisMatcher()
    with pytest.raises(ExtractionError, match="minutiae"):
        matcher.extract(GrayImage(256, 288, b"\xf0" * (256 * 288)))  # no finger on the sensor
    with pytest.raises(ExtractionError, match="not one fingerprint"):
        matcher.extract(GrayImage(32, 32, b"\x80" * 1024))
    with pytest.raises(ExtractionError, match="ppi"):
        matcher.extract(GrayImage(256, 288, impressions()[0, 0].pixels, ppi=1000))


def test_empty_templates_never_match() -> None:
    matcher = NbisMatcher()
    assert matcher.compare(Template(256, 288, ()), templates()[0, 0]) == 0


def test_missing_library_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv(bm.ENV_LIBRARY, "/nonexistent/libafis_lfs.so")
    assert bm.available() is not None
    with pytest.raises(MatcherUnavailable):
        NbisMatcher()


def test_template_repr_has_no_coordinates() -> None:
    t = templates()[0, 0]
    assert repr(t) == f"Template(256x288, {len(t.minutiae)} minutiae)"
