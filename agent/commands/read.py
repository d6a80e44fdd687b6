"""``gate-agent read``: read and verify a chip ID card or passport on a PC/SC reader.

Access keys, one of: ``--mrz`` (the printed MRZ lines), ``--doc-number/--birth YYMMDD/--expiry``,
``--id-number --birth DDMMYYYY [--issued DDMMYYYY]`` (a CCCD: CAN and MRZ keys are
derived), ``--qr`` (the QR code on the CCCD front), ``--can``.  Active and Chip
Authentication run whenever DG15 / DG14 are read; ``--files ...,dg3`` with
``--terminal DIR`` (the terminal's CV certificates and key) runs Terminal
Authentication and reads the fingerprints.

Exit status: 0 the chip was read and no authenticity check failed; 1 an authenticity
check failed, or was required by the chip's EF.SOD and could not be made (a downgrade
rule fired: the JSON's ``rules`` and ``failures`` say which), and nothing else exits 1;
2 bad input (unusable keys or terminal credentials, keys that do not open the chip);
3 a reader or card error.  With ``--json`` every outcome prints one JSON object on
stdout, a failure ``{"error": {"type", "message", "exit"}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.card.errors import InputError
from agent.errors import GateAgentError

HELP = "read and verify a chip ID card (CCCD) or passport"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reader", default="", help="PC/SC reader name substring (default: the first reader)")
    keys = parser.add_argument_group("access keys")
    keys.add_argument("--mrz", help="the MRZ lines as printed (newlines or one string)")
    keys.add_argument("--doc-number", help="document number (with --birth YYMMDD --expiry YYMMDD)")
    keys.add_argument("--birth", help="date of birth: YYMMDD with --doc-number, DDMMYYYY with --id-number")
    keys.add_argument("--expiry", help="date of expiry YYMMDD (with --doc-number)")
    keys.add_argument("--id-number", help="12-digit personal ID number of a CCCD (with --birth DDMMYYYY)")
    keys.add_argument("--issued", help="CCCD issue date DDMMYYYY (with --id-number), if known")
    keys.add_argument("--qr", help="the QR code text printed on the CCCD front")
    keys.add_argument("--can", help="card access number (6 digits; a CCCD's is the last 6 digits of the ID)")
    parser.add_argument("--files", default="com,dg1,dg13,dg14,dg15", help="comma-separated files to read")
    parser.add_argument("--trust", type=Path, help="trust anchors directory (CSCA certificates, CRLs, master lists)")
    parser.add_argument(
        "--terminal", type=Path, metavar="DIR",
        help="Terminal Authentication credentials (*.cvcert chain CVCA, DV, terminal; terminal.key): needed for dg3",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-size", type=int, default=0, help="bytes per READ BINARY (default: 223, or 4096 extended)"
    )
    parser.add_argument("--no-extended", action="store_true", help="never use extended-length APDUs")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait this long for a card")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def access_keys(args: argparse.Namespace) -> Any:
    from agent.card.cccd import cccd_access_keys, parse_card_qr, parse_ddmmyyyy
    from agent.card.keys import AccessKeys, MrzKey
    from agent.card.mrz import parse_mrz

    if args.mrz:
        return AccessKeys(can=args.can, mrz_keys=(parse_mrz(args.mrz).key,))
    if args.qr:
        return parse_card_qr(args.qr).access_keys()
    if args.id_number:
        if not args.birth:
            raise InputError("--id-number needs --birth DDMMYYYY", field="birth")
        issued = parse_ddmmyyyy(args.issued, "issued") if args.issued else None
        return cccd_access_keys(args.id_number, parse_ddmmyyyy(args.birth, "birth"), issued)
    if args.doc_number:
        if not (args.birth and args.expiry):
            raise InputError("--doc-number needs --birth YYMMDD and --expiry YYMMDD", field="birth")
        return AccessKeys(can=args.can, mrz_keys=(MrzKey(args.doc_number, args.birth, args.expiry),))
    if args.can:
        return AccessKeys(can=args.can)
    raise InputError("no access key: give --mrz, --qr, --id-number/--birth, --doc-number/--birth/--expiry or --can")


def run(args: argparse.Namespace) -> int:
    if not args.json:
        return _run(args)
    try:
        return _run(args)
    except GateAgentError as exc:
        error = {"error": {"type": type(exc).__name__, "message": str(exc), "exit": exc.exit_code}}
        json.dump(error, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        print(f"gate-agent read: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args: argparse.Namespace) -> int:
    from agent.card.cvc import CvcError, load_credentials
    from agent.card.read import read_document
    from agent.card.trust import TrustStore
    from agent.transport.pcsc import PcscTransport, wait_for_card

    keys = access_keys(args)
    files = [f.strip() for f in args.files.split(",") if f.strip()]
    trust = TrustStore.from_directory(args.trust) if args.trust else None
    try:
        terminal = load_credentials(args.terminal) if args.terminal else None
    except CvcError as exc:
        raise InputError(f"--terminal: {exc}", field="terminal") from None
    if args.wait:
        wait_for_card(args.reader, args.wait)
    with PcscTransport(args.reader) as transport:
        result = read_document(
            transport, keys, files, chunk_size=args.chunk_size, extended_length=not args.no_extended, trust=trust,
            terminal=terminal,
        )  # fmt: skip
    out = result.as_dict()
    if args.json:
        json.dump(out, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(render(out))
    return 1 if result.failures() else 0


def render(out: dict[str, Any]) -> str:
    lines = [f"reader      {out['reader']}", f"access      {out['access']}"]
    if "dg1" in out:
        d = out["dg1"]
        lines.append(f"document    {d['document_code']} {d['document_number']} ({d['issuing_state']})")
        lines.append(f"name        {d['surname']}, {d['given_names']}")
        lines.append(f"birth/sex   {d['birth']} {d['sex']}   expiry {d['expiry']}")
    if "dg13" in out:
        for key, value in out["dg13"].items():
            if key != "missing" and value:
                lines.append(f"dg13 {key:<14} {value}")
        if out["dg13"]["missing"]:
            lines.append(f"dg13 missing   {', '.join(out['dg13']['missing'])}")
    for face in out.get("dg2", []):
        lines.append(f"face        {face['format']} {face['width']}x{face['height']}, {face['bytes']} bytes")
    if out["missing"]:
        lines.append(f"not on chip {', '.join(out['missing'])}")
    if out["denied"]:
        lines.append(f"denied      {', '.join(out['denied'])}")
    pa = out["passive_auth"]
    verdict = "not checked (no --trust)" if pa["valid"] is None else ("VALID" if pa["valid"] else "FAILED")
    lines.append(
        f"passive auth {verdict}" + (f" at {pa['failed_step']}: {pa['detail']}" if pa.get("failed_step") else "")
    )
    labels = (("active_auth", "active auth "), ("chip_auth", "chip auth   "), ("terminal_auth", "terminal auth"))
    for key, label in labels:
        r = out[key]
        if r["valid"] is None and not r.get("failed_step"):
            continue
        verdict = {True: "VALID", False: "FAILED", None: "not run"}[r["valid"]]
        where = f" at {r['failed_step']}: {r['detail']}" if r.get("failed_step") else ""
        lines.append(f"{label} {verdict}{' (' + r['algorithm'] + ')' if r.get('algorithm') else ''}{where}")
    for finger in out.get("dg3", {}).get("fingers", []):
        lines.append(f"fingerprint {finger['position']}, {finger['format']} {finger['width']}x{finger['height']}")
    for hit in out.get("rules", []):
        lines.append(f"rule        {hit['rule']}: {hit['detail']}")
    lines.append(f"{out['apdus']} APDUs, {out['bytes']} bytes, {out['seconds']:.3f} s")
    return "\n".join(lines)
