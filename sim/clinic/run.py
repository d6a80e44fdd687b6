"""A whole clinic: hub, broker, T gates (real ``gate-agent run`` daemons, each with its own pcscd, card
reader, fingerprint module and QR scanner) and N patients arriving, with faults on demand.

Every patient goes to a gate: puts a finger on the sensor, a card on the reader and
scans its QR code (or, for a child without a card, the attendant enters the ID
number); the clinic waits for the outcome the gate shows (the daemon's recorder
output), takes the card back, and notes what it expected for that kind of patient.
The gates hold EAC terminal credentials, so they read each card's fingerprint
reference (DG3) and match it on the module.  At the end the clinic checks that every
outcome shown reached the hub exactly once.

``real_times`` models the devices: the contactless link at 424 kbit/s and the
fingerprint module's UART and processing times from its profile; without it they
answer as fast as they can (a quick demo).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.app.attendant import send
from agent.errors import GateAgentError
from agent.uplink.events import load_signing_key
from sim.card import build_card, shared_pki
from sim.card.eac import eac_pki, finger_identity
from sim.card.vpcd import VpcdPlug
from sim.clinic.patients import EXPECTED_DEFAULT, Kind, Mix, Patient, insurance_record, make_patients
from sim.finger import synth
from sim.finger.module import PROFILES, PtyModule, SimModule
from sim.finger.usb import VirtualImageSensor
from sim.hub.hub import Hub
from sim.infra.mosquitto import Mosquitto, start_mosquitto
from sim.infra.pcscd import Pcscd, start_pcscd
from sim.scanner import PtyScanner, scan_text

#: the card a patient of this kind carries (genuine unless named)
CARD_VARIANTS = {Kind.TAMPERED: "altered-dg", Kind.CLONED: "clone"}

log = logging.getLogger(__name__)
FACILITY = "01001"


@dataclass
class ClinicFaults:
    broker_down: tuple[int, float] | None = None  # after patient k, for s seconds
    power_cut: list[int] = field(default_factory=list)  # kill -9 a gate's daemon after these patients
    card_pull: float = 0.0  # probability a card is pulled mid-read (the patient tries again)


@dataclass(frozen=True)
class FaultRecord:
    """A fault that happened: seconds since the run started, the gate it hit (or ``broker``), its kind."""

    seconds: float
    gate: str
    kind: str  # broker-down, broker-up, power-cut, card-pull
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"t": round(self.seconds, 2), "gate": self.gate, "kind": self.kind, "detail": self.detail}


#: the kinds a fault log counts (broker-up is the end of a broker-down, not a fault of its own)
FAULT_KINDS = ("broker-down", "power-cut", "card-pull")


def parse_faults(spec: str | None) -> ClinicFaults:
    """``broker-down=S@K``, ``power-cut@K`` (repeatable), ``card-pull=P``; comma separated."""
    faults = ClinicFaults()
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            if item.startswith("broker-down="):
                seconds, after = item.removeprefix("broker-down=").split("@")
                faults.broker_down = (int(after), float(seconds))
            elif item.startswith("power-cut@"):
                faults.power_cut.append(int(item.removeprefix("power-cut@")))
            elif item.startswith("card-pull="):
                faults.card_pull = float(item.removeprefix("card-pull="))
            else:
                raise ValueError("unknown fault")
        except ValueError:
            raise ValueError(f"bad fault {item!r} (broker-down=SECONDS@K, power-cut@K, card-pull=P)") from None
    return faults


class Gate:
    """One terminal: its pcscd, reader plug, QR scanner and gate-agent daemon."""

    def __init__(self, index: int, work: Path, broker: str, trust: Path, terminal: Path, real_times: bool,
                 sensor: str = "module", fast_uart: bool = True) -> None:  # fmt: skip
        self.name = f"gate-{index + 1}"
        self.sensor = sensor
        self.dir = work / self.name
        self.dir.mkdir(parents=True)
        self.pcscd: Pcscd = start_pcscd(self.dir / "pcscd", reader_name=f"Clinic Reader {index + 1}")
        self.reader = self.pcscd.reader_names[0]
        self.plug = VpcdPlug(None, self.pcscd.vpcd_ports[0]).start()
        self.scanner = PtyScanner(self.dir / "qr")
        self.finger = SimModule(PROFILES["r307"], speed=1.0 if real_times else 0.0)
        self.finger_port = PtyModule(self.finger, self.dir / "finger").start()
        # the USB sensor: libfprint in the daemon listens on this socket, the simulated sensor sends images there
        self.usb = VirtualImageSensor(self.dir / "fprint.sock", speed=1.0 if real_times else 0.0)
        finger_url = f"fprint://virtual_image?socket={self.dir / 'fprint.sock'}" if sensor == "usb" \
            else str(self.dir / "finger")  # fmt: skip
        self.state = self.dir / "state"
        self.key = load_signing_key(self.state / "terminal.key")
        self.recorder = self.dir / "outcomes.jsonl"
        self.config = self.dir / "agent.toml"
        self.config.write_text(f"""
[terminal]
facility_id = "{FACILITY}"
terminal_id = "{self.name}"
state_dir = "{self.state}"
[reader]
name = "{self.reader}"
trust_dir = "{trust}"
terminal_credentials = "{terminal}"
[finger]
enabled = true
url = "{finger_url}"
profile = "r307"
threshold = 30
negotiate = {"true" if fast_uart else "false"}
[scanners]
qr_url = "{self.dir / "qr"}"
[timeouts]
keys = 15.0
card_removal = 10.0
[outputs]
kinds = ["log", "recorder"]
recorder_path = "{self.recorder}"
[uplink]
broker_urls = ["{broker}"]
backoff_min = 0.2
backoff_max = 2.0
ack_timeout = 10.0
""")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = (self.dir / "agent.log").open("ab")
        self.start()

    def start(self, timeout: float = 30.0) -> None:
        """Start the daemon and wait until it serves (its attendant socket appears)."""
        sock = self.state / "attendant.sock"
        sock.unlink(missing_ok=True)
        env = {**os.environ, **self.pcscd.env}
        self.process = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(self.config)],
                                        env=env, stdout=self.log, stderr=self.log)  # fmt: skip
        deadline = time.monotonic() + timeout
        while not sock.exists() and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise GateAgentError(
                    f"{self.name} exited with {self.process.returncode} (see {self.dir / 'agent.log'})"
                )
            time.sleep(0.05)
        time.sleep(0.3)  # the scanners open their ports right after
        if self.sensor == "usb":
            self.usb.close()
            self.usb.connect()

    def power_cut(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.start()

    def outcomes(self) -> list[dict[str, Any]]:
        if not self.recorder.exists():
            return []
        return [json.loads(line) for line in self.recorder.read_text().splitlines() if line.strip()]

    def stop(self) -> int:
        code = 0
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = -9
        self.plug.stop()
        self.scanner.close()
        self.finger_port.stop()
        self.usb.close()
        self.pcscd.stop()
        self.log.close()
        return code


@dataclass
class Visit:
    patient: Patient
    gate: str
    outcome: str | None = None
    reason: str | None = None
    event_id: str | None = None
    seconds: float | None = None
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        expected = EXPECTED_DEFAULT[self.patient.kind]
        return {
            "patient": self.patient.index,
            "kind": self.patient.kind.value,
            "category": self.patient.category,
            "gate": self.gate,
            "outcome": self.outcome,
            "reason": self.reason,
            "expected": list(expected),
            "as_expected": self.outcome in expected,
            "event_id": self.event_id,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "attempts": self.attempts,
        }


class Clinic:
    def __init__(self, terminals: int, patients: int, out: Path, *, seed: int = 0, province: str | None = None,
                 broker: str | None = None, faults: ClinicFaults | None = None, progress: bool = True,
                 mix: Mix | None = None, real_times: bool = False, sensor: str = "module",
                 fast_uart: bool = True) -> None:  # fmt: skip
        self.out = out
        self.sensor = sensor
        self.fast_uart = fast_uart
        self.real_times = real_times
        self.work = out / "work"
        self.seed = seed
        self.faults = faults or ClinicFaults()
        self.today = dt.date.today()
        self.patients = make_patients(patients, seed, province, mix or Mix(), self.today)
        self.terminals = terminals
        self.broker_url = broker
        self.progress = progress
        self.mosquitto: Mosquitto | None = None
        self.gates: list[Gate] = []
        self.hub: Hub | None = None
        self.visits: list[Visit] = []
        self._done = 0
        self._lock = threading.Lock()
        self._broker_event = threading.Event()
        self._started = time.monotonic()
        self.fault_log: list[FaultRecord] = []

    def _fault(self, gate: str, kind: str, detail: str = "") -> None:
        record = FaultRecord(time.monotonic() - self._started, gate, kind, detail)
        with self._lock:
            self.fault_log.append(record)
        log.info("fault at +%.1f s: %s %s %s", record.seconds, gate, kind, detail)

    # --- setup / teardown ---------------------------------------------------------------------------

    def setup(self) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        if self.broker_url is None:
            self.mosquitto = start_mosquitto(self.work / "broker")
            self.broker_url = self.mosquitto.url
        trust = self.work / "trust"
        shared_pki().write_trust(trust)
        terminal = eac_pki(0).write_credentials(self.work / "terminal")
        self.gates = [Gate(i, self.work, self.broker_url, trust, terminal, self.real_times, self.sensor,
                           self.fast_uart) for i in range(self.terminals)]  # fmt: skip
        records = [r for r in (insurance_record(p, FACILITY, self.today) for p in self.patients) if r is not None]
        self.records = records
        keys = {g.name: g.key.public_key() for g in self.gates}
        by_id = {str(r["id_number"]): r for r in records}
        self.hub = Hub(self.broker_url, FACILITY, self.work / "hub.db", keys, by_id).start()
        if not self.hub.connected.wait(30):
            raise GateAgentError("the hub could not connect to the broker")
        for gate in self.gates:
            self._push_eligibility(gate)

    def _push_eligibility(self, gate: Gate) -> None:
        assert self.hub is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            cid = self.hub.push_eligibility(gate.name, self.records, dt.datetime.now(dt.UTC).isoformat())
            result = self.hub.wait_result(cid, 2)
            if result is not None:
                if not result.get("ok"):
                    raise GateAgentError(f"{gate.name} refused the eligibility data: {result.get('reason')}")
                return
        raise GateAgentError(f"{gate.name} never came up (see {gate.dir / 'agent.log'})")

    def teardown(self) -> dict[str, int]:
        codes = {gate.name: gate.stop() for gate in self.gates}
        if self.hub is not None:
            self.hub.stop()
        if self.mosquitto is not None:
            self.mosquitto.stop()
        return codes

    # --- patients -----------------------------------------------------------------------------------

    def _visit(self, gate: Gate, patient: Patient, rng: random.Random) -> Visit:
        visit = Visit(patient, gate.name)
        for attempt in range(1, 4):
            visit.attempts = attempt
            before = len(gate.outcomes())
            start = time.monotonic()
            if patient.kind is Kind.CHILD_NO_CARD:
                try:
                    send(gate.state / "attendant.sock", {"id_number": patient.person.id_number, "no_card": True})
                except GateAgentError:
                    time.sleep(1)  # the daemon is restarting after a power cut
                    continue
            else:
                faults = f"remove@{rng.randint(3, 12)}" if rng.random() < self.faults.card_pull else None
                card = build_card("cccd", patient.card_seed, person=patient.person, faults=faults,
                                  variant=CARD_VARIANTS.get(patient.kind),
                                  link_kbps=424 if self.real_times else None)  # fmt: skip
                holder = "someone else" if patient.kind is Kind.BORROWED_CARD else patient.person.id_number
                finger = finger_identity(holder)
                if gate.sensor == "usb":
                    synth.master_for(finger)  # the finger exists before the visit (its generation is not timed)
                else:
                    gate.finger.place(finger)
                # (the clinic cannot ask the gates' pcscds itself: libpcsclite binds a process to one daemon)
                gate.plug.insert(card)
                if not gate.plug.wait_connected(10):
                    gate.plug.remove()
                    continue
                start = time.monotonic()  # the card is on the reader: the patient's wait starts
                gate.scanner.emit(scan_text(patient.person, "qr"))
                if gate.sensor == "usb":  # the finger goes down on the sensor as the card is read
                    threading.Thread(target=gate.usb.present_finger, args=(finger,), daemon=True).start()
            deadline = time.monotonic() + 30
            shown = None
            shown_at = 0.0
            while time.monotonic() < deadline:
                got = gate.outcomes()
                if len(got) > before:
                    shown, shown_at = got[before], time.monotonic()
                    break
                if gate.plug.card is not None and not gate.plug.card.present and patient.kind is not Kind.CHILD_NO_CARD:
                    self._fault(gate.name, "card-pull", f"patient {patient.index}, attempt {attempt}")
                    break  # the card was pulled mid-read: take it and try again
                time.sleep(0.02)
            if patient.kind is not Kind.CHILD_NO_CARD:
                gate.plug.remove()
                gate.finger.remove()
                time.sleep(0.6)  # pcscd polls the virtual reader: let it see the card go (after the decision)
            if shown is not None:
                visit.outcome, visit.reason = str(shown["outcome"]), str(shown["reason"])
                visit.event_id = shown.get("event_id")
                visit.seconds = shown_at - start
                return visit
            time.sleep(0.5)
        return visit

    def _gate_worker(self, gate: Gate, patients: list[Patient], bar: Any) -> None:
        rng = random.Random(f"{self.seed}:{gate.name}")
        for patient in patients:
            with self._lock:
                index = self._done
            if self.faults.broker_down and index == self.faults.broker_down[0] and self.mosquitto is not None:
                self._broker_outage(self.faults.broker_down[1], gate.name)
            if index in self.faults.power_cut:
                with self._lock:
                    self.faults.power_cut.remove(index)
                self._fault(gate.name, "power-cut", f"before patient {patient.index}")
                gate.power_cut()
            visit = self._visit(gate, patient, rng)
            with self._lock:
                self.visits.append(visit)
                self._done += 1
            if bar is not None:
                bar.update(1)

    def _broker_outage(self, seconds: float, gate: str) -> None:
        assert self.mosquitto is not None
        if self._broker_event.is_set():
            return
        self._broker_event.set()
        self._fault("broker", "broker-down", f"for {seconds:g} s (seen first by {gate})")
        self.mosquitto.kill()

        def back() -> None:
            assert self.mosquitto is not None
            self.mosquitto.start()
            self._fault("broker", "broker-up")

        threading.Timer(seconds, back).start()

    def run(self) -> dict[str, Any]:
        from tqdm import tqdm

        started = self._started = time.monotonic()
        bar = tqdm(total=len(self.patients), unit="patient", disable=not self.progress, file=sys.stderr)
        queues: list[list[Patient]] = [[] for _ in self.gates]
        for i, patient in enumerate(self.patients):
            queues[i % len(self.gates)].append(patient)
        threads = [
            threading.Thread(target=self._gate_worker, args=(g, q, bar))
            for g, q in zip(self.gates, queues, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bar.close()
        elapsed = time.monotonic() - started
        return self.summary(elapsed)

    # --- results ------------------------------------------------------------------------------------

    def summary(self, elapsed: float) -> dict[str, Any]:
        assert self.hub is not None
        shown = {v.event_id for v in self.visits if v.event_id}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stored = {e["id"] for e in self.hub.events() if e["type"] == "checkin"}
            if shown <= stored:
                break
            time.sleep(0.2)
        stored = {e["id"] for e in self.hub.events() if e["type"] == "checkin"}
        durations = sorted(v.seconds for v in self.visits if v.seconds is not None)
        outcomes = Counter(v.outcome or "none" for v in self.visits)
        unexpected = [v.as_dict() for v in self.visits if v.outcome not in EXPECTED_DEFAULT[v.patient.kind]]
        with (self.out / "outcomes.jsonl").open("w", encoding="utf-8") as fh:
            for v in sorted(self.visits, key=lambda v: v.patient.index):
                fh.write(json.dumps(v.as_dict(), ensure_ascii=False) + "\n")
        summary = {
            "terminals": self.terminals,
            "patients": len(self.patients),
            "seconds": round(elapsed, 1),
            "checkins_per_minute_per_terminal": round(len(durations) / elapsed * 60 / self.terminals, 1),
            "outcomes": dict(outcomes),
            "kinds": dict(Counter(p.kind.value for p in self.patients)),
            "as_expected": len(self.visits) - len(unexpected),
            "unexpected": unexpected,
            "shown": len(shown),
            "at_hub": len(stored),
            "shown_missing_at_hub": sorted(shown - stored),
            "hub_duplicates_removed": self.hub.stats.duplicates,
            "hub_rejected": self.hub.stats.rejected,
            "discrepancies_by_category": self.hub.discrepancy_report(),
            "latency_p50": round(statistics.median(durations), 3) if durations else None,
            "latency_p95": round(durations[int(0.95 * (len(durations) - 1))], 3) if durations else None,
            "faults": {kind: n for kind in FAULT_KINDS if (n := sum(1 for f in self.fault_log if f.kind == kind))},
            "fault_log": [f.as_dict() for f in sorted(self.fault_log, key=lambda f: f.seconds)],
        }
        (self.out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
        return summary


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['patients']} patients at {summary['terminals']} gates in {summary['seconds']} s "
        f"({summary['checkins_per_minute_per_terminal']} check-ins/min/gate, "
        f"p50 {summary['latency_p50']} s, p95 {summary['latency_p95']} s)",
        "",
        f"{'outcome':<24} {'count':>6}",
    ]
    for outcome, count in sorted(summary["outcomes"].items()):
        lines.append(f"{outcome:<24} {count:>6}")
    lines += ["", f"{'patient kind':<24} {'count':>6}"]
    for kind, count in sorted(summary["kinds"].items()):
        lines.append(f"{kind:<24} {count:>6}")
    lines += [
        "",
        f"as the policy expects:   {summary['as_expected']}/{summary['patients']}",
        f"outcomes shown:          {summary['shown']}, at the hub: {summary['at_hub']} "
        f"(missing {len(summary['shown_missing_at_hub'])}, duplicates removed {summary['hub_duplicates_removed']})",
    ]
    if summary.get("fault_log"):
        lines += ["", f"{'fault':<24} {'count':>6}"]
        for kind, count in summary["faults"].items():
            lines.append(f"{kind:<24} {count:>6}")
        lines += ["", "fault log (seconds since the start):"]
        for f in summary["fault_log"]:
            lines.append(f"  +{f['t']:7.1f} s  {f['gate']:<8} {f['kind']:<12} {f['detail']}".rstrip())
    if summary["discrepancies_by_category"]:
        lines.append("record discrepancies by category: " + json.dumps(summary["discrepancies_by_category"],
                                                                       ensure_ascii=False))  # fmt: skip
    return "\n".join(lines)
