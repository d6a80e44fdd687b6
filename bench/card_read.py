"""Full CCCD read through a real pcscd: APDUs, bytes, wall time and agent CPU time per read.

The card runs in its own process (``python -m sim card``) so the CPU time measured
here is the agent's alone.  Run as root (a private pcscd in its own mount namespace):

    .venv/bin/python bench/card_read.py [--reads 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.infra.pcscd import start_pcscd  # noqa: E402

FILES = ["com", "sod", "dg1", "dg13", "dg14", "dg15"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-card-"))
    daemon = start_pcscd(work / "pcscd")
    os.environ.update(daemon.env)
    from agent.card.keys import AccessKeys
    from agent.card.read import read_document
    from agent.card.trust import TrustStore
    from agent.transport.pcsc import PcscTransport, wait_for_card

    card = subprocess.Popen(
        [sys.executable, "-m", "sim", "card", "--seed", "7", "--vpcd-port", str(daemon.vpcd_ports[0]),
         "--trust-out", str(work / "trust")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert card.stdout is not None
        ready = json.loads(card.stdout.readline())
        keys = AccessKeys(can=ready["keys"]["can"])
        trust = TrustStore.from_directory(work / "trust")
        wait_for_card(daemon.reader_names[0], 10)
        print(f"{'files':<28} {'chunk':>6} {'APDUs':>6} {'bytes':>7} {'wall ms p50':>12} {'p95':>7} {'CPU ms':>7}")
        rows = {}
        for with_dg2 in (False, True):
            for chunk, ext in ((0xDF, False), (0x1000, True)):
                files = FILES + (["dg2"] if with_dg2 else [])
                walls, cpus = [], []
                apdus = size = 0
                for _ in range(args.reads + 1):
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    with PcscTransport(daemon.reader_names[0]) as transport:
                        result = read_document(transport, keys, files, chunk_size=chunk, extended_length=ext,
                                               trust=trust)  # fmt: skip
                    walls.append(time.perf_counter() - wall0)
                    cpus.append(time.process_time() - cpu0)
                    assert result.passive_auth is not None and result.passive_auth.valid
                    apdus, size = result.apdus, result.bytes_received
                walls, cpus = walls[1:], cpus[1:]  # the first read warms caches
                p50 = statistics.median(walls) * 1000
                p95 = sorted(walls)[int(0.95 * (len(walls) - 1))] * 1000
                label = "+".join(files) if not with_dg2 else "... + dg2 (20 KB)"
                rows[(with_dg2, chunk)] = p50
                print(f"{label:<28} {chunk:>6} {apdus:>6} {size:>7} {p50:>12.1f} {p95:>7.1f} "
                      f"{statistics.median(cpus) * 1000:>7.1f}")  # fmt: skip
        for with_dg2 in (False, True):
            ratio = rows[(with_dg2, 0xDF)] / rows[(with_dg2, 0x1000)]
            print(f"short/extended wall-time ratio {'with' if with_dg2 else 'without'} DG2: {ratio:.2f}")
    finally:
        card.terminate()
        card.wait(10)
        daemon.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
