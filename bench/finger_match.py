"""The host matcher on the synthetic corpus: speed, score distributions, error rates, the threshold, memory.

The corpus is N synthetic fingers × M impressions (sim/finger/synth.py), generated
once and cached in a temporary directory.  Impression 0 of each finger is the
enrolment: it goes through the chip's DG3 encoding (WSQ by default, as ICAO
practice stores it) and back, as the gate would decode it.  Impressions 1..M-1
are live captures.

* genuine pairs: each finger's reference against each of its live impressions;
* impostor pairs: each finger's reference against live impression 1 of every other finger;
* FNMR at FMR 0.1 % and 0.01 %: the smallest threshold whose impostor acceptance
  is at most that rate, and the genuine pairs it refuses.

    .venv/bin/python bench/finger_match.py [--fingers 200] [--impressions 4] [--keep 40] [--format wsq]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.bio import image as bioimage  # noqa: E402
from agent.bio.matcher import DEFAULT_THRESHOLD, NbisMatcher, Template, library_path  # noqa: E402
from bench.measure import percentile, proc_status  # noqa: E402
from sim.finger import synth  # noqa: E402

FORMATS = {"raw": bioimage.UNCOMPRESSED, "packed4": bioimage.BIT_PACKED, "wsq": bioimage.WSQ,
           "jp2": bioimage.JPEG2000}  # fmt: skip


def corpus(seed: int, fingers: int, impressions: int, cache: Path) -> np.ndarray:
    """uint8 array [finger, impression, 288, 256], from the cache when there."""
    path = cache / f"corpus-s{seed}-{fingers}x{impressions}.npy"
    if path.exists():
        return np.load(path)
    start = time.perf_counter()
    out = np.empty((fingers, impressions, 288, 256), dtype=np.uint8)
    for f in range(fingers):
        m = synth.master(seed, f)
        for i in range(impressions):
            out[f, i] = np.frombuffer(synth.impression(m, i).pixels, dtype=np.uint8).reshape(288, 256)
        if f % 50 == 49:
            print(f"  generated {f + 1}/{fingers} fingers ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    print(f"corpus generated in {time.perf_counter() - start:.1f} s, cached at {path}", file=sys.stderr)
    return out


def threshold_at(impostor: list[int], fmr: float) -> int:
    """The smallest threshold t with |impostor ≥ t| / |impostor| ≤ fmr."""
    allowed = int(fmr * len(impostor))
    ordered = sorted(impostor, reverse=True)
    return ordered[allowed] + 1 if allowed < len(ordered) else 0


def histogram(scores: list[int], edges: list[int]) -> str:
    counts = [sum(1 for s in scores if lo <= s < hi) for lo, hi in zip(edges, [*edges[1:], 1 << 30], strict=True)]
    return "  ".join(f"[{lo},{'∞' if i == len(edges) - 1 else edges[i + 1]}):{c}"
                     for i, (lo, c) in enumerate(zip(edges, counts, strict=True)))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fingers", type=int, default=200)
    parser.add_argument("--impressions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=int, default=25, help="most reliable minutiae kept per template")
    parser.add_argument("--format", choices=sorted(FORMATS), default="wsq", help="the DG3 reference's encoding")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gate-agent-finger-corpus")
    args = parser.parse_args()

    rss0 = proc_status("VmRSS")
    matcher = NbisMatcher(keep=args.keep)
    rss_lib = proc_status("VmRSS")
    data = corpus(args.seed, args.fingers, args.impressions, args.cache)
    rss_corpus = proc_status("VmRSS")

    compression = FORMATS[args.format]
    extract_ms: list[float] = []
    decode_ms: list[float] = []
    refs: list[Template] = []
    lives: list[list[Template]] = []
    failures = 0
    for f in range(args.fingers):
        enrol = bioimage.GrayImage(256, 288, data[f, 0].tobytes())
        encoded = bioimage.encode(enrol, compression)
        t = time.perf_counter()
        decoded = bioimage.decode(encoded, 256, 288, compression, 4 if compression == bioimage.BIT_PACKED else 8)
        decode_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        refs.append(matcher.extract(decoded))
        extract_ms.append((time.perf_counter() - t) * 1000)
        row = []
        for i in range(1, args.impressions):
            t = time.perf_counter()
            try:
                row.append(matcher.extract(bioimage.GrayImage(256, 288, data[f, i].tobytes())))
            except Exception:
                failures += 1
                row.append(Template(256, 288, ()))
            extract_ms.append((time.perf_counter() - t) * 1000)
        lives.append(row)
    rss_templates = proc_status("VmRSS")

    genuine: list[int] = []
    genuine_ms: list[float] = []
    for f in range(args.fingers):
        for live in lives[f]:
            t = time.perf_counter()
            genuine.append(matcher.compare(live, refs[f]))
            genuine_ms.append((time.perf_counter() - t) * 1000)
    impostor: list[int] = []
    impostor_ms: list[float] = []
    for f in range(args.fingers):
        for g in range(args.fingers):
            if f != g:
                t = time.perf_counter()
                impostor.append(matcher.compare(lives[g][0], refs[f]))
                impostor_ms.append((time.perf_counter() - t) * 1000)

    print(f"corpus: {args.fingers} fingers × {args.impressions} impressions (seed {args.seed}), "
          f"reference encoded as {args.format}, keep {args.keep} minutiae; matcher library {library_path().name}")
    print(f"{'':<32} {'p50':>8} {'p99':>8} {'max':>8}")
    for label, values in (("DG3 decode ms", decode_ms), ("extraction ms", extract_ms),
                          ("compare ms (genuine)", genuine_ms), ("compare ms (impostor)", impostor_ms)):  # fmt: skip
        print(f"{label:<32} {statistics.median(values):>8.2f} {percentile(values, 0.99):>8.2f} {max(values):>8.2f}")
    print(f"extraction failures: {failures} of {args.fingers * (args.impressions - 1)} live impressions")
    edges = [0, 10, 20, 30, 40, 60, 80, 120, 200]
    print(f"genuine  scores ({len(genuine)}): min {min(genuine)} p1 {percentile(genuine, 0.01)} "
          f"p50 {statistics.median(genuine):.0f}; {histogram(genuine, edges)}")
    print(f"impostor scores ({len(impostor)}): max {max(impostor)} p99.9 {percentile(impostor, 0.999)} "
          f"p50 {statistics.median(impostor):.0f}; {histogram(impostor, edges)}")
    for fmr in (0.001, 0.0001):
        t = threshold_at(impostor, fmr)
        fnmr = sum(1 for s in genuine if s < t) / len(genuine)
        real_fmr = sum(1 for s in impostor if s >= t) / len(impostor)
        print(f"FMR ≤ {fmr:.2%}: threshold {t}, FNMR {fnmr:.2%} (measured FMR {real_fmr:.4%})")
    t = DEFAULT_THRESHOLD
    print(f"at the configured threshold {t}: FNMR {sum(1 for s in genuine if s < t) / len(genuine):.2%}, "
          f"FMR {sum(1 for s in impostor if s >= t) / len(impostor):.4%}")
    print(f"memory: RSS {rss0:.1f} MB at start, +{rss_lib - rss0:.1f} MB loading the matcher, "
          f"+{rss_templates - rss_corpus:.1f} MB for {args.fingers * args.impressions} templates "
          f"(library file {os.path.getsize(library_path()) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
