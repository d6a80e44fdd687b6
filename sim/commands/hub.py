"""``python -m sim hub``: the facility hub on a broker (verify, deduplicate, store, acknowledge, answer).

With ``--tls-ca/--tls-cert/--tls-key`` (or ``--pki DIR`` of ``python -m sim pki``) it
connects with its client certificate, as the shipped broker configuration
(docs/deploy/mosquitto/facility.conf) requires.  Each event stored is reported: one
line (``stored TYPE TERMINAL seq N id ID [outcome]``, no personal data), or a progress
bar when stdout is a terminal; ``--quiet`` silences both.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

HELP = "run the facility hub simulator on an MQTT broker"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, help="mqtt://host:port, or mqtts://host:port with TLS")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file for the events")
    parser.add_argument("--facility", default="01001")
    parser.add_argument("--keys", type=Path, required=True, help="directory of <terminal>.pub signing keys")
    parser.add_argument("--eligibility", type=Path, help="JSON list of insurance records to answer queries with")
    parser.add_argument("--insured", help="comma-separated person seeds (`sim card --seed`) the insurer has valid "
                        "records of, registered at --facility; added to --eligibility")  # fmt: skip
    parser.add_argument("--push", action="store_true", help="push the eligibility data to every known terminal")
    parser.add_argument("--username")
    parser.add_argument("--password")
    tls = parser.add_argument_group("TLS (client certificate)")
    tls.add_argument("--pki", type=Path, help="a `python -m sim pki` directory: ca.crt, hub.crt, hub.key")
    tls.add_argument("--tls-ca", type=Path, help="CA certificate of the broker")
    tls.add_argument("--tls-cert", type=Path, help="the hub's client certificate")
    tls.add_argument("--tls-key", type=Path, help="the hub's private key")
    parser.add_argument("--quiet", action="store_true", help="no line or progress bar per stored event")


def tls_files(args: argparse.Namespace) -> tuple[str, str, str] | None:
    """(CA, certificate, key) from ``--pki`` or the three ``--tls-*`` options; ValueError if incomplete."""
    given = [args.tls_ca, args.tls_cert, args.tls_key]
    if args.pki is not None:
        if any(given):
            raise ValueError("--pki and --tls-* are alternatives")
        given = [args.pki / "ca.crt", args.pki / "hub.crt", args.pki / "hub.key"]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("TLS needs --tls-ca, --tls-cert and --tls-key together")
    for path in given:
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such file")
    return str(given[0]), str(given[1]), str(given[2])


def insured_records(seeds: str, facility: str) -> list[dict[str, Any]]:
    """Valid insurance records, at ``facility``, of the simulated people of these seeds."""
    import datetime as dt

    from sim.population import make_person

    today = dt.date.today()
    records = []
    for item in seeds.split(","):
        seed = int(item.strip())
        person = make_person(seed)
        records.append({
            "id_number": person.id_number, "card_number": f"GD4{person.province_code[1:]}{seed:010d}",
            "valid_from": dt.date(today.year, 1, 1).isoformat(), "valid_to": dt.date(today.year, 12, 31).isoformat(),
            "facility_code": facility, "benefit_level": 4, "category": "employees", "full_name": person.full_name,
            "birth": person.birth.isoformat(), "sex": person.sex,
        })  # fmt: skip
    return records


def event_line(terminal: str, event: Mapping[str, Any]) -> str:
    """One stored event, without personal data: type, terminal, sequence number, id and the outcome."""
    outcome = event.get("body", {}).get("outcome") if isinstance(event.get("body"), Mapping) else None
    line = f"stored {event.get('type')} {terminal} seq {event.get('seq')} id {event.get('id')}"
    return f"{line} {outcome}" if outcome else line


class Reporter:
    """A line per stored event, or a tqdm bar when ``out`` is a terminal, or nothing."""

    def __init__(self, quiet: bool, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.bar: Any = None
        self.quiet = quiet
        if not quiet and self.out.isatty():
            from tqdm import tqdm

            self.bar = tqdm(unit="event", desc="stored", file=self.out, dynamic_ncols=True)

    def __call__(self, terminal: str, event: Mapping[str, Any]) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{terminal} {event.get('type')}", refresh=False)
            self.bar.update(1)
        else:
            print(event_line(terminal, event), file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from sim.hub.hub import Hub, load_keys

    try:
        tls = tls_files(args)
    except ValueError as exc:
        print(f"python -m sim hub: error: {exc}", file=sys.stderr)
        return 2
    records = json.loads(args.eligibility.read_text()) if args.eligibility else []
    try:
        records += insured_records(args.insured, args.facility) if args.insured else []
    except ValueError:
        print(f"python -m sim hub: error: --insured takes person seeds, e.g. 12,13 (not {args.insured!r})",
              file=sys.stderr)  # fmt: skip
        return 2
    reporter = Reporter(args.quiet)
    hub = Hub(args.broker, args.facility, args.db, load_keys(args.keys), {r["id_number"]: r for r in records},
              args.username, args.password, tls=tls, on_stored=reporter).start()  # fmt: skip
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if not hub.connected.wait(30):
            print(f"python -m sim hub: error: cannot connect to the broker at {args.broker}", file=sys.stderr)
            return 3
        if args.push:
            for terminal in hub.keys:
                hub.push_eligibility(terminal, records, dt.datetime.now(dt.UTC).isoformat())
        ready = {"event": "ready", "facility": args.facility, "terminals": sorted(hub.keys), "tls": tls is not None}
        print(json.dumps(ready), flush=True)
        stop.wait()
    finally:
        hub.stop()
        reporter.close()
    print(json.dumps({"event": "stopped", "stored": hub.stats.stored, "duplicates": hub.stats.duplicates,
                      "rejected": hub.stats.rejected}), flush=True)  # fmt: skip
    return 0
