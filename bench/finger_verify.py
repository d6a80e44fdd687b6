"""1:1 fingerprint verification per module profile: the real driver against the simulated module on a pty.

The simulated module models its UART (10 bits a byte at the profile's baud rate, both
directions) and its processing times (capture, feature extraction, match) from the
profile.  A verification is the check-in's: the reference from the chip goes into
buffer 2 — a 512-byte template, or DG3's image (36 KB) converted on the module — then
the live finger is captured into buffer 1 and the buffers are matched.

    .venv/bin/python bench/finger_verify.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.bio.image import GrayImage, to_module_image  # noqa: E402
from agent.bio.module import FingerprintModule  # noqa: E402
from agent.profiles import fingerprint_profile  # noqa: E402
from sim.finger import synth  # noqa: E402
from sim.finger.module import PROFILES, PtyModule, SimModule, image_features  # noqa: E402


def verify_once(driver: FingerprintModule, reference: bytes, image: bool) -> bool:
    driver.download_image(reference) if image else driver.download_template(reference, 2)
    if image:
        driver.image_to_buffer(2)
    assert driver.capture_live(threading.Event(), 10)
    driver.image_to_buffer(1)
    return driver.match_buffers().matched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run, templates only, two profiles")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    names = ["r307", "r503"] if args.quick else ["r307", "r503", "as608", "zfm20"]
    kinds = [("template", False)] if args.quick else [("template", False), ("DG3 image", True)]
    work = Path(tempfile.mkdtemp(prefix="bench-finger-"))
    print(f"{'module':<7} {'reference':<10} {'wall ms p50':>11} {'p95':>7} {'UART ms':>8} {'module ms':>9} "
          f"{'wall/(UART+module)':>18}")  # fmt: skip
    for name in names:
        sim = SimModule(PROFILES[name], speed=1.0)
        served = PtyModule(sim, work / name).start()
        profile = fingerprint_profile(name)
        driver = FingerprintModule.open(str(work / name), profile)
        try:
            driver.handshake()
            sim.place("alice")
            ref = synth.reference_for("alice")
            ref_image = to_module_image(GrayImage(ref.width, ref.height, ref.pixels))
            ref_template = image_features(ref_image, profile.template_size)
            assert ref_template is not None
            for label, image in kinds:
                reference = ref_image if image else ref_template
                walls, models = [], []
                for _ in range(runs):
                    uart0, busy0 = served.uart_seconds, sim.busy_seconds
                    t0 = time.perf_counter()
                    assert verify_once(driver, reference, image)
                    walls.append(time.perf_counter() - t0)
                    models.append((served.uart_seconds - uart0, sim.busy_seconds - busy0))
                wall = statistics.median(walls) * 1000
                p95 = sorted(walls)[int(0.95 * (len(walls) - 1))] * 1000
                uart = statistics.median(m[0] for m in models) * 1000
                busy = statistics.median(m[1] for m in models) * 1000
                print(f"{name:<7} {label:<10} {wall:>11.0f} {p95:>7.0f} {uart:>8.0f} {busy:>9.0f} "
                      f"{wall / (uart + busy):>18.2f}")  # fmt: skip
        finally:
            driver.close()
            served.stop()
    print("UART and module: the modelled times; the ratio is the driver's and the pty's overhead on top")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
