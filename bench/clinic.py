"""Decision latency at a gate with modelled devices, against the critical path; the daemon's RSS and CPU.

One gate (a real ``gate-agent run`` with its pcscd, QR scanner and fingerprint sensor)
and N insured patients, with the devices' times modelled: the chip link at 424 kbit/s,
and either

* ``--sensor module``: the R307 module's UART (115,200 baud and 256-byte packets as
  negotiated, or 57,600 baud and 128-byte packets with ``--slow-uart``) and processing
  times; the match runs on the module;
* ``--sensor usb``: a USB image sensor through libfprint's virtual_image driver (the
  sensor's read-out modelled at 0.15 s), minutiae and match on the host.

For each check-in:

* latency: card on the reader -> decision shown (the recorder output);
* chip read: what the daemon logs for the read (PACE, AA, CA, TA, DG3, PA);
* finger capture: capture and minutiae extraction (runs during the read);
* reference match: module: the DG3 image down the UART, its features, the match;
  usb: DG3 decoded, its minutiae, the comparison (as the daemon logs them);
* critical path = max(chip read, finger capture) + reference match.

    .venv/bin/python bench/clinic.py [--patients 30] [--quick] [--sensor usb|module] [--slow-uart]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import cpu_seconds, percentile, proc_status  # noqa: E402
from sim.clinic.patients import Mix  # noqa: E402
from sim.clinic.run import Clinic, Gate  # noqa: E402

READ = re.compile(r"agent\.card\.read: read \S+ via \w+: (\d+) APDUs, ([0-9.]+) s")
HOST = re.compile(r"finger on the host: capture ([0-9.]+) s, extract ([0-9.]+) s, reference ([0-9.]+) s, "
                  r"compare ([0-9.]+) s")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (agent\.transport\.pcsc: card inserted|"
                   r"agent\.app\.outputs: outcome)", re.M)


def detected_to_shown(log_text: str) -> list[float]:
    """Per check-in: the daemon saw the card (pcscd's report) -> the outcome shown, from the daemon's log."""
    import datetime as dt

    out, inserted = [], None
    for m in STAMP.finditer(log_text):
        at = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if m[2].endswith("card inserted"):
            inserted = at
        elif inserted is not None:
            out.append(at - inserted)
            inserted = None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="6 patients, 2 s idle")
    parser.add_argument("--sensor", choices=["module", "usb"], default="usb")
    parser.add_argument("--slow-uart", action="store_true", help="module: 57,600 baud, 128-byte packets")
    args = parser.parse_args()
    patients = 6 if args.quick else args.patients
    idle_seconds = 2.0 if args.quick else 5.0
    out = Path(tempfile.mkdtemp(prefix="bench-clinic-"))
    only_insured = Mix(problem_rate=0, uninsured=0, expired=0, child_no_card=0, tampered=0, cloned=0, borrowed_card=0)
    clinic = Clinic(1, patients, out, seed=1, progress=False, mix=only_insured, real_times=True, sensor=args.sensor,
                    fast_uart=not args.slow_uart)  # fmt: skip
    try:
        clinic.setup()
        gate: Gate = clinic.gates[0]
        assert gate.process is not None
        pid = gate.process.pid
        time.sleep(1.0)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(idle_seconds)
        idle_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
        idle_rss = proc_status("VmRSS", pid)
        uart0, busy0 = gate.finger_port.uart_seconds, gate.finger.busy_seconds
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        summary = clinic.run()
        busy_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
        busy_rss = proc_status("VmRSS", pid)
        module_total = (gate.finger_port.uart_seconds - uart0) + (gate.finger.busy_seconds - busy0)
    finally:
        clinic.teardown()
    log_text = (gate.dir / "agent.log").read_text()
    reads = [(int(m[1]), float(m[2])) for m in READ.finditer(log_text)]
    host = [tuple(float(x) for x in m.groups()) for m in HOST.finditer(log_text)]
    visits = sorted(clinic.visits, key=lambda v: v.patient.index)
    latencies = [v.seconds for v in visits if v.seconds is not None]
    assert summary["as_expected"] == patients, summary["unexpected"]
    assert len(reads) == len(latencies), (len(reads), len(latencies))
    profile = gate.finger.profile
    chip = [seconds for _, seconds in reads]
    if args.sensor == "module":
        capture = profile.t_image + profile.t_features  # during the chip read
        per_checkin_module = module_total / len(latencies)
        reference_match = per_checkin_module - capture
        captures = [capture] * len(chip)
        matches = [reference_match] * len(chip)
        device = f"{profile.name} at {profile.baud} baud, {profile.packet_size}-byte packets (match on the module)"
    else:
        assert len(host) == len(chip), (len(host), len(chip))
        captures = [gate.usb.t_capture + extract for _, extract, _, _ in host]
        matches = [reference + compare for _, _, reference, compare in host]
        capture, reference_match = statistics.median(captures), statistics.median(matches)
        device = "USB sensor through libfprint virtual_image (match on the host, NBIS)"
    critical = [max(c, f) + m for c, f, m in zip(chip, captures, matches, strict=True)]
    ratios = [lat / crit for lat, crit in zip(latencies, critical, strict=True)]
    daemon = detected_to_shown(log_text)
    assert len(daemon) == len(critical), (len(daemon), len(critical))
    daemon_ratios = [d / crit for d, crit in zip(daemon, critical, strict=True)]
    print(f"{patients} check-ins at one gate, chip link 424 kbit/s, {device}")
    print(f"{'':<28} {'p50':>8} {'p95':>8}")
    for label, values in (("decision latency s", latencies), ("chip read s", chip), ("critical path s", critical),
                          ("latency / critical path", ratios), ("card seen -> decision s", daemon),
                          ("  / critical path", daemon_ratios)):  # fmt: skip
        print(f"{label:<28} {statistics.median(values):>8.3f} {percentile(values, 0.95):>8.3f}")
    print(f"{'APDUs per read':<28} {statistics.median(a for a, _ in reads):>8.0f}")
    print(f"{'finger capture s':<28} {capture:>8.3f}")
    what = "DG3 image down the UART, features, match" if args.sensor == "module" else "DG3 decoded, minutiae, compare"
    print(f"{'reference match s':<28} {reference_match:>8.3f}   ({what})")
    print("(card seen: when pcscd reports the card to the daemon; pcscd polls the virtual reader every 0.4 s)")
    print(f"check-ins per minute per terminal: {summary['checkins_per_minute_per_terminal']}")
    print(f"daemon RSS: idle {idle_rss:.1f} MB, busy {busy_rss:.1f} MB")
    print(f"daemon CPU: idle {idle_cpu:.1f} %, busy {busy_cpu:.1f} % (of one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
