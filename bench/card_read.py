"""Full CCCD read through a real pcscd: APDUs, bytes, wall time and agent CPU time per read.

Rows: the check-in's files with Passive Authentication only; with DG14/DG15, which
adds Active and Chip Authentication; with the face image (DG2); and the full EAC
read (Chip and Terminal Authentication, then the fingerprint reference in DG3).

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

BASE = ["com", "sod", "dg1", "dg13"]
FILES = [*BASE, "dg14", "dg15"]
CASES = [  # label, files, with terminal credentials
    ("PA only: " + "+".join(BASE), BASE, False),
    ("+ dg14, dg15 (AA + CA)", FILES, False),
    ("+ dg2 (20 KB face)", [*FILES, "dg2"], False),
    ("+ TA + dg3 (37 KB finger)", [*FILES, "dg3"], True),
]


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
        from agent.card.cvc import load_credentials
        from sim.card.eac import eac_pki

        terminal = load_credentials(eac_pki(0).write_credentials(work / "terminal"))
        print(f"{'files':<28} {'chunk':>6} {'APDUs':>6} {'bytes':>7} {'wall ms p50':>12} {'p95':>7} {'CPU ms':>7}")
        rows = {}
        for label, files, eac in CASES:
            for chunk, ext in ((0xDF, False), (0x1000, True)):
                walls, cpus = [], []
                apdus = size = 0
                for _ in range(args.reads + 1):
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    with PcscTransport(daemon.reader_names[0]) as transport:
                        result = read_document(transport, keys, files, chunk_size=chunk, extended_length=ext,
                                               trust=trust, terminal=terminal if eac else None)  # fmt: skip
                    walls.append(time.perf_counter() - wall0)
                    cpus.append(time.process_time() - cpu0)
                    assert result.passive_auth is not None and result.passive_auth.valid
                    for check in (result.active_auth, result.chip_auth, result.terminal_auth):
                        assert check is None or check.valid, check
                    apdus, size = result.apdus, result.bytes_received
                walls, cpus = walls[1:], cpus[1:]  # the first read warms caches
                p50 = statistics.median(walls) * 1000
                p95 = sorted(walls)[int(0.95 * (len(walls) - 1))] * 1000
                rows[(label, chunk)] = p50
                print(f"{label:<28} {chunk:>6} {apdus:>6} {size:>7} {p50:>12.1f} {p95:>7.1f} "
                      f"{statistics.median(cpus) * 1000:>7.1f}")  # fmt: skip
        for label, _, _ in CASES:
            ratio = rows[(label, 0xDF)] / rows[(label, 0x1000)]
            print(f"short/extended wall-time ratio, {label}: {ratio:.2f}")
        base = CASES[0][0]
        for label, _, _ in CASES[1:]:
            print(f"{label} / PA only, extended: {rows[(label, 0x1000)] / rows[(base, 0x1000)]:.2f}")
    finally:
        card.terminate()
        card.wait(10)
        daemon.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
