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

``attacks`` runs the adversarial corpus instead of the official mix
(:func:`sim.clinic.patients.make_attack_patients`): copied and hostile chips, borrowed
cards with the finger withheld or not matching, and genuine patients as a control
group.  A gate that cannot read a card decides nothing and tells the patient so; the
clinic sees that prompt in the daemon's log (the ``log`` output) and notes the visit
as ``not_read``.  The summary's ``attacks`` table lists, per kind, the outcomes and
reasons shown and whether every attempt was stopped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.app import enrol
from agent.app.attendant import send
from agent.config import load_config
from agent.errors import GateAgentError
from agent.uplink.events import load_signing_key
from sim.card import build_card, shared_pki
from sim.card.eac import finger_identity
from sim.card.vpcd import VpcdPlug
from sim.clinic.patients import (
    ADMITTED,
    ATTACKS,
    CARD_VARIANT,
    EXPECTED,
    NOT_READ,
    VNEID_VARIANT,
    Kind,
    Mix,
    Patient,
    expected,
    insurance_record,
    make_attack_patients,
    make_patients,
)
from sim.finger import synth
from sim.finger.module import PROFILES, PtyModule, SimModule
from sim.finger.usb import VirtualImageSensor
from sim.hub.enrol import Authority, enroll_terminal
from sim.hub.gateway import GatewaySim
from sim.hub.hub import Hub, load_keys
from sim.hub.vneid import IdentityService
from sim.infra.mosquitto import Mosquitto, start_mosquitto
from sim.infra.pcscd import Pcscd, start_pcscd
from sim.pki import make_pki
from sim.scanner import PtyScanner, scan_text

log = logging.getLogger(__name__)
FACILITY = "01001"
#: how long a gate waits for a finger (from the start of the read): a withheld finger ends the wait
FINGER_TIMEOUT = 4.0
FINGER_TIMEOUT_REAL = 10.0
#: a prompt in the daemon's log (agent.app.outputs.LogOutput) that ends a check-in without a decision
_NOT_READ_PROMPT = re.compile(rb"prompt (read_failed|wrong_keys): ")


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


def parse_clinic_faults(spec: str | None) -> ClinicFaults:
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


def not_read_prompt(log_path: Path, offset: int) -> str | None:
    """The code of the first "card could not be read" prompt a daemon logged after ``offset``, if any."""
    with log_path.open("rb") as fh:
        fh.seek(offset)
        found = _NOT_READ_PROMPT.search(fh.read())
    return None if found is None else found.group(1).decode()


class Gate:
    """One terminal: its pcscd, reader plug, QR scanner and gate-agent daemon."""

    def __init__(self, index: int, work: Path, broker: str, trust: Path, authority: Authority, real_times: bool,
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
        terminal = self.state / "eac"
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
finger = {FINGER_TIMEOUT_REAL if real_times else FINGER_TIMEOUT}
[outputs]
kinds = ["log", "recorder"]
recorder_path = "{self.recorder}"
[uplink]
broker_urls = ["{broker}"]
allow_plaintext = true
backoff_min = 0.2
backoff_max = 2.0
ack_timeout = 10.0
""")
        self.enrol(authority, work / "hub-keys")
        self.key = load_signing_key(self.state / "terminal.key")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = (self.dir / "agent.log").open("ab")
        self.start()

    def enrol(self, authority: Authority, hub_keys: Path) -> None:
        """As an installer does: keys born on the gate, public parts to the hub, the hub's answer installed."""
        cfg = load_config(self.config)
        enrol.request(cfg, self.dir / "enrol-request")
        enroll_terminal(self.dir / "enrol-request", self.name, authority, hub_keys, self.dir / "enrol-answer")
        enrol.install(cfg, self.dir / "enrol-answer")

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

    def log_size(self) -> int:
        return (self.dir / "agent.log").stat().st_size

    def not_read_since(self, offset: int) -> str | None:
        return not_read_prompt(self.dir / "agent.log", offset)

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
    gateway_code: str | None = None  # what the gateway answered, from the check-in event the hub stored

    @property
    def as_expected(self) -> bool:
        return expected(self.patient).met(self.outcome, self.reason)

    @property
    def stopped(self) -> bool:
        """The gate showed an outcome that keeps the patient out (not admitted, and not nothing at all)."""
        return self.outcome is not None and self.outcome not in ADMITTED

    def as_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient.index,
            "kind": self.patient.kind.value,
            "route": self.patient.route,
            "gateway_code": self.gateway_code,
            "category": self.patient.category,
            "gate": self.gate,
            "outcome": self.outcome,
            "reason": self.reason,
            "expected": list(expected(self.patient).allowed),
            "as_expected": self.as_expected,
            "attack": self.patient.kind in ATTACKS,
            "event_id": self.event_id,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "attempts": self.attempts,
        }


class Clinic:
    def __init__(self, terminals: int, patients: int, out: Path, *, seed: int = 0, province: str | None = None,
                 broker: str | None = None, faults: ClinicFaults | None = None, progress: bool = True,
                 mix: Mix | None = None, real_times: bool = False, attacks: bool = False, sensor: str = "module",
                 fast_uart: bool = True) -> None:  # fmt: skip
        self.out = out
        self.sensor = sensor
        self.fast_uart = fast_uart
        self.real_times = real_times
        self.work = out / "work"
        self.seed = seed
        self.faults = faults or ClinicFaults()
        self.today = dt.date.today()
        self.attacks = attacks
        if attacks:
            self.patients = make_attack_patients(patients, seed, province, today=self.today)
        else:
            self.patients = make_patients(patients, seed, province, mix or Mix(), self.today)
        self.terminals = terminals
        self.broker_url = broker
        self.progress = progress
        self.mosquitto: Mosquitto | None = None
        self.gates: list[Gate] = []
        self.hub: Hub | None = None
        self.identity_service = IdentityService()  # the national identity service the hub asks (VNeID)
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

    def run_once(
        self, before_teardown: Callable[[Clinic], None] | None = None
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """Set up, run every patient, then (always) tear down: the summary and each daemon's exit code.

        ``before_teardown`` sees the clinic still running (its hub's database, for instance).
        """
        try:
            self.setup()
            summary = self.run()
            if before_teardown is not None:
                before_teardown(self)
        finally:
            codes = self.teardown()
        return summary, codes

    def setup(self) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        if self.broker_url is None:
            self.mosquitto = start_mosquitto(self.work / "broker")
            self.broker_url = self.mosquitto.url
        trust = self.work / "trust"
        shared_pki().write_trust(trust)
        make_pki(self.work / "pki", FACILITY, [])
        hub_key = ed25519.Ed25519PrivateKey.generate()
        authority = Authority.load(self.work / "pki", hub_key, shared_pki().csca)
        self.gates = [Gate(i, self.work, self.broker_url, trust, authority, self.real_times, self.sensor,
                           self.fast_uart) for i in range(self.terminals)]  # fmt: skip
        records = [r for r in (insurance_record(p, FACILITY, self.today) for p in self.patients) if r is not None]
        self.records = records
        keys = load_keys(self.work / "hub-keys")  # registered at enrolment
        by_id = {str(r["id_number"]): r for r in records}
        forced = {p.person.id_number: p.gateway_code for p in self.patients if p.gateway_code}
        temporary = {p.person.id_number for p in self.patients if p.kind is Kind.CHILD_TEMP_CARD}
        # the service does not answer in time for these patients (the hub then says "unverified")
        self.identity_service.unreachable = {p.person.id_number for p in self.patients
                                             if p.kind is Kind.VNEID_OFFLINE}  # fmt: skip
        self.hub = Hub(self.broker_url, FACILITY, self.work / "hub.db", keys, by_id, signing_key=hub_key,
                       gateway=GatewaySim(by_id, forced=forced, children_without_card=temporary, today=self.today),
                       identity_service=self.identity_service).start()  # fmt: skip
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
            log_offset = gate.log_size()
            start = time.monotonic()
            if patient.route == "vneid":
                start = time.monotonic()
                gate.scanner.emit(self.identity_service.issue(patient.person, VNEID_VARIANT[patient.kind]))
            elif patient.route == "desk":
                try:
                    send(gate.state / "attendant.sock", {"id_number": patient.person.id_number, "no_card": True})
                except GateAgentError:
                    time.sleep(1)  # the daemon is restarting after a power cut
                    continue
            else:
                faults = f"remove@{rng.randint(3, 12)}" if rng.random() < self.faults.card_pull else None
                card = build_card("cccd", patient.card_seed, person=patient.person, faults=faults,
                                  variant=CARD_VARIANT.get(patient.kind),
                                  link_kbps=424 if self.real_times else None)  # fmt: skip
                holder = "someone else" if patient.kind is Kind.BORROWED_CARD else patient.person.id_number
                finger = finger_identity(holder)
                touches = patient.kind is not Kind.FINGER_WITHHELD  # that patient never touches the sensor
                if touches and gate.sensor == "usb":
                    synth.master_for(finger)  # the finger exists before the visit (its generation is not timed)
                elif touches:
                    gate.finger.place(finger)
                # (the clinic cannot ask the gates' pcscds itself: libpcsclite binds a process to one daemon)
                gate.plug.insert(card)
                if not gate.plug.wait_connected(10):
                    gate.plug.remove()
                    continue
                start = time.monotonic()  # the card is on the reader: the patient's wait starts
                gate.scanner.emit(scan_text(patient.person, "qr"))
                if touches and gate.sensor == "usb":  # the finger goes down on the sensor as the card is read
                    threading.Thread(target=gate.usb.present_finger, args=(finger,), daemon=True).start()
            deadline = time.monotonic() + 30
            shown = None
            shown_at = 0.0
            while time.monotonic() < deadline:
                got = gate.outcomes()
                if len(got) > before:
                    shown, shown_at = got[before], time.monotonic()
                    break
                prompt = gate.not_read_since(log_offset)
                if prompt is not None:  # the gate decided nothing: "the card could not be read"
                    shown = {"outcome": NOT_READ, "reason": prompt.upper(), "event_id": None}
                    shown_at = time.monotonic()
                    break
                if gate.plug.card is not None and not gate.plug.card.present and patient.has_card:
                    self._fault(gate.name, "card-pull", f"patient {patient.index}, attempt {attempt}")
                    break  # the card was pulled mid-read: take it and try again
                time.sleep(0.02)
            if patient.has_card:
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
        codes = {e["id"]: e["body"].get("eligibility", {}).get("gateway_code") for e in self.hub.events()
                 if e["type"] == "checkin"}  # fmt: skip
        for v in self.visits:
            v.gateway_code = codes.get(v.event_id or "")
        unexpected = [v.as_dict() for v in self.visits if not v.as_expected]
        by_route: dict[str, dict[str, int]] = {}
        by_code: dict[str, dict[str, int]] = {}
        for v in self.visits:
            route = by_route.setdefault(v.patient.route, {})
            route[v.outcome or "none"] = route.get(v.outcome or "none", 0) + 1
            code = by_code.setdefault(v.gateway_code or "none", {})
            code[v.outcome or "none"] = code.get(v.outcome or "none", 0) + 1
        with (self.out / "outcomes.jsonl").open("w", encoding="utf-8") as fh:
            for v in sorted(self.visits, key=lambda v: v.patient.index):
                fh.write(json.dumps(v.as_dict(), ensure_ascii=False) + "\n")
        summary = {
            "terminals": self.terminals,
            "patients": len(self.patients),
            "seconds": round(elapsed, 1),
            "checkins_per_minute_per_terminal": round(len(durations) / elapsed * 60 / self.terminals, 1),
            "outcomes": dict(outcomes),
            "by_route": by_route,
            "by_gateway_code": dict(sorted(by_code.items())),
            "vneid_verifications": dict(self.identity_service.by_status),
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
            **attack_table(self.visits),
            "fault_log": [f.as_dict() for f in sorted(self.fault_log, key=lambda f: f.seconds)],
        }
        (self.out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
        return summary


def attack_table(visits: list[Visit]) -> dict[str, Any]:
    """Per attack kind (and control kind) in an attack clinic: the outcomes and reasons shown, and whether every
    attempt was stopped.  Empty when no attack came."""
    if not any(v.patient.kind in ATTACKS for v in visits):
        return {}
    rows = []
    for kind in sorted({v.patient.kind for v in visits}, key=lambda k: (k not in ATTACKS, k.value)):
        mine = [v for v in visits if v.patient.kind is kind]
        shown = Counter((v.outcome or "none", v.reason or "-") for v in mine)
        rows.append({
            "kind": kind.value,
            "attack": kind in ATTACKS,
            "patients": len(mine),
            "expected": EXPECTED[kind].describe(),
            "outcomes": [{"outcome": o, "reason": r, "count": n} for (o, r), n in sorted(shown.items())],
            "stopped": sum(v.stopped for v in mine),
            "admitted": sum(v.outcome in ADMITTED for v in mine),
            "as_expected": sum(v.as_expected for v in mine),
        })  # fmt: skip
    attacks = [r for r in rows if r["attack"]]
    return {
        "attacks": rows,
        "attacks_tried": sum(r["patients"] for r in attacks),
        "attacks_stopped": sum(r["stopped"] for r in attacks),
        "attacks_admitted": sum(r["admitted"] for r in attacks),
    }


def render_attacks(summary: dict[str, Any]) -> list[str]:
    """The attack -> outcome table: one line per kind, outcome and reason."""
    lines = [f"{'attack (control)':<22} {'outcome':<12} {'reason':<30} {'count':>5}  stopped"]
    for row in summary["attacks"]:
        name = row["kind"] if row["attack"] else f"({row['kind']})"
        for i, shown in enumerate(row["outcomes"]):
            stopped = ""
            if i == 0:
                stopped = f"{row['stopped']}/{row['patients']}" if row["attack"] else "control"
            lines.append(f"{name if i == 0 else '':<22} {shown['outcome']:<12} {shown['reason']:<30} "
                         f"{shown['count']:>5}  {stopped}".rstrip())  # fmt: skip
    verdict = "every attack stopped" if summary["attacks_admitted"] == 0 else "ATTACKS ADMITTED"
    lines.append(f"attacks stopped: {summary['attacks_stopped']}/{summary['attacks_tried']}, "
                 f"admitted: {summary['attacks_admitted']} ({verdict})")  # fmt: skip
    return lines


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
    if summary.get("by_route"):
        lines += ["", f"{'route':<10} outcomes"]
        for route in ("chip", "vneid", "desk"):
            if route in summary["by_route"]:
                got = sorted(summary["by_route"][route].items())
                lines.append(f"{route:<10} " + ", ".join(f"{o} {n}" for o, n in got))
    if summary.get("by_gateway_code"):
        lines += ["", f"{'gateway code':<14} outcomes"]
        for code, got in summary["by_gateway_code"].items():
            lines.append(f"{code:<14} " + ", ".join(f"{o} {n}" for o, n in sorted(got.items())))
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
    if summary.get("attacks"):
        lines += ["", *render_attacks(summary)]
    if summary["discrepancies_by_category"]:
        lines.append("record discrepancies by category: " + json.dumps(summary["discrepancies_by_category"],
                                                                       ensure_ascii=False))  # fmt: skip
    return "\n".join(lines)
