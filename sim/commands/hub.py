"""``python -m sim hub``: the facility hub on a broker (verify, deduplicate, store, acknowledge, answer).

With ``--tls-ca/--tls-cert/--tls-key`` (or ``--pki DIR`` of ``python -m sim pki``) it
connects with its client certificate, as the shipped broker configuration
(docs/deploy/mosquitto/facility.conf) requires.  Each event stored is reported: one
line (``stored TYPE TERMINAL seq N id ID [outcome]``, no personal data), or a progress
bar when stdout is a terminal; ``--quiet`` silences both.

Everything the hub sends a terminal is signed with ``--hub-key`` (Ed25519 PEM, made
when missing), the key terminals pin at enrolment.  ``python -m sim hub enroll``
is the hub's half of enrolment (``docs/enrol.md``): it checks a terminal's request,
signs its TLS certificate (``--pki``: ca.crt, ca.key) and CV certificate (the
simulated DV), registers its signing key in ``--keys`` and writes the answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.infra.control import stop_on_signals

HELP = "run the facility hub simulator on an MQTT broker"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("run", "enroll"), default="run",
                        help="run the hub (default), or enroll a terminal from its request")  # fmt: skip
    parser.add_argument("--broker", help="mqtt://host:port, or mqtts://host:port with TLS; several, comma-"
                        "separated: the nodes of a cluster, tried in turn (run)")  # fmt: skip
    parser.add_argument("--db", type=Path, help="SQLite file for the events (run)")
    parser.add_argument("--facility", default="01001")
    parser.add_argument("--keys", type=Path, required=True, help="directory of <terminal>.pub signing keys")
    parser.add_argument("--hub-key", type=Path, help="the hub's message-signing key (PEM, made when missing)")
    enrol = parser.add_argument_group("enroll")
    enrol.add_argument("--terminal", help="the terminal id of the request")
    enrol.add_argument("--request", type=Path, help="the terminal's request directory (gate-agent enroll)")
    enrol.add_argument("--out", type=Path, help="where to write the answer for the terminal")
    enrol.add_argument("--ml-root", type=Path, help="PEM of the master-list-signer root the terminal pins")
    enrol.add_argument("--eac-seed", type=int, default=0, help="seed of the simulated EAC PKI (CVCA, DV)")
    enrol.add_argument("--json", action="store_true")
    parser.add_argument("--eligibility", type=Path, help="JSON list of insurance records to answer queries with")
    parser.add_argument("--insured", help="comma-separated person seeds (`sim card --seed`) the insurer has valid "
                        "records of, registered at --facility; added to --eligibility")  # fmt: skip
    parser.add_argument("--no-gateway", action="store_true",
                        help="answer eligibility with records only (no social-insurance gateway answer)")
    parser.add_argument("--xml0", type=Path, help="on exit, write today's QĐ 4750 XML0 check-in file here")
    parser.add_argument("--push", action="store_true", help="push the eligibility data to every known terminal")
    parser.add_argument("--username")
    parser.add_argument("--password")
    tls = parser.add_argument_group("TLS (client certificate)")
    tls.add_argument("--pki", type=Path, help="a `python -m sim pki` directory: ca.crt, hub.crt, hub.key")
    tls.add_argument("--tls-ca", type=Path, help="CA certificate of the broker")
    tls.add_argument("--tls-cert", type=Path, help="the hub's client certificate")
    tls.add_argument("--tls-key", type=Path, help="the hub's private key")
    parser.add_argument("--quiet", action="store_true", help="no line or progress bar per stored event")
    parser.add_argument("--dashboard", type=int, metavar="PORT",
                        help="serve the live dashboard on http://127.0.0.1:PORT/ (0: any free port)")  # fmt: skip
    scale = parser.add_argument_group("scale")
    scale.add_argument("--share", metavar="GROUP", help="consume through MQTT 5 shared subscriptions "
                       "($share/GROUP/...) with the other workers of GROUP (same --db and --hub-key)")  # fmt: skip
    scale.add_argument("--protocol", choices=("5", "3.1.1"), default="5", help="MQTT version (3.1.1: RabbitMQ 3.10)")
    scale.add_argument("--client-id", help="a fixed MQTT client id (with --persistent, to resume the session)")
    scale.add_argument("--persistent", action="store_true", help="keep the broker session across reconnects")


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


def enroll(args: argparse.Namespace) -> int:
    from cryptography import x509

    from agent.uplink.hubmsg import load_or_create_private_key
    from sim.hub.enrol import Authority, EnrolRefused, enroll_terminal

    missing = [n for n in ("terminal", "request", "out", "ml_root", "pki", "hub_key") if not getattr(args, n)]
    if missing:
        print(f"python -m sim hub enroll: error: needs --{missing[0].replace('_', '-')}", file=sys.stderr)
        return 2
    try:
        root = x509.load_pem_x509_certificate(args.ml_root.read_bytes())
        authority = Authority.load(args.pki, load_or_create_private_key(args.hub_key), root, args.eac_seed)
        result = enroll_terminal(args.request, args.terminal, authority, args.keys, args.out)
    except (OSError, ValueError, EnrolRefused) as exc:
        print(f"python -m sim hub enroll: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print(f"enrolled {result['terminal']}: answer in {result['out']}")
        print(f"terminal signing key: {result['terminal_signing_key_fingerprint']}")
        print(f"hub key:              {result['hub_key_fingerprint']}")
        print(f"master-list root:     {result['ml_root_fingerprint']}")
    return 0


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from agent.uplink.hubmsg import fingerprint, load_or_create_private_key
    from sim.hub.hub import Hub, load_keys

    if args.action == "enroll":
        return enroll(args)
    if not args.broker or not args.db:
        print("python -m sim hub: error: --broker and --db are required", file=sys.stderr)
        return 2
    signing_key = load_or_create_private_key(args.hub_key) if args.hub_key else None

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
    from sim.hub.gateway import GatewaySim
    from sim.hub.vneid import IdentityService

    by_id = {r["id_number"]: r for r in records}
    gateway = None if args.no_gateway else GatewaySim(by_id)
    hub = Hub(args.broker, args.facility, args.db, load_keys(args.keys), by_id,
              args.username, args.password, tls=tls, on_stored=reporter, signing_key=signing_key,
              gateway=gateway, identity_service=IdentityService(), share=args.share, protocol=args.protocol,
              client_id=args.client_id, persistent=args.persistent).start()  # fmt: skip
    stop = threading.Event()
    dashboard = None
    if args.dashboard is not None:
        from sim.hub.dashboard import Dashboard

        dashboard = Dashboard(args.db, args.dashboard).start()

    stop_on_signals(stop)
    try:
        if not hub.connected.wait(30):
            print(f"python -m sim hub: error: cannot connect to the broker at {args.broker}", file=sys.stderr)
            return 3
        if args.push:
            for terminal in hub.keys:
                hub.push_eligibility(terminal, records, dt.datetime.now(dt.UTC).isoformat())
        ready = {"event": "ready", "facility": args.facility, "terminals": sorted(hub.keys), "tls": tls is not None,
                 "hub_key": fingerprint(hub.signing_key.public_key())}  # fmt: skip
        if dashboard is not None:
            ready["dashboard"] = dashboard.url
        print(json.dumps(ready), flush=True)
        stop.wait()
    finally:
        if dashboard is not None:
            dashboard.stop()
        if args.xml0 is not None:
            from sim.hub.xml0 import VN

            count = hub.export_xml0(dt.datetime.now(VN).date(), args.xml0)
            print(json.dumps({"event": "xml0", "rows": count, "path": str(args.xml0)}), flush=True)
        hub.stop()
        reporter.close()
    print(json.dumps({"event": "stopped", "stored": hub.stats.stored, "duplicates": hub.stats.duplicates,
                      "rejected": hub.stats.rejected}), flush=True)  # fmt: skip
    return 0
