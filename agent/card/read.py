"""Read and verify a chip: the one function the CLI and the check-in flow call.

``read_document`` opens the chip, reads the files asked for (plus EF.SOD when trust
anchors are given, since Passive Authentication needs it), parses what it read,
and runs Passive Authentication.  Files the chip lacks are *missing*, files it
refuses are *denied*; neither is an error.  The result keeps the raw bytes only in
memory, for the caller to drop when done.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from agent.card import lds
from agent.card.errors import ParseError
from agent.card.keys import AccessKeys
from agent.card.pa import PaResult, passive_authentication
from agent.card.session import ChipSession, FileDenied, FileMissing
from agent.card.trust import TrustStore
from agent.transport.base import CardTransport

log = logging.getLogger(__name__)

DEFAULT_FILES = ("com", "dg1", "dg13", "dg14", "dg15")


@dataclass
class ReadResult:
    access: str
    reader: str
    files: dict[str, bytes] = field(repr=False)
    missing: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    parse_errors: dict[str, str] = field(default_factory=dict)
    com: lds.Com | None = None
    dg1: lds.Dg1 | None = None
    dg2: lds.Dg2 | None = None
    dg13: lds.Dg13 | None = None
    passive_auth: PaResult | None = None
    apdus: int = 0
    bytes_received: int = 0
    seconds: float = 0.0

    def as_dict(self, *, include_faces: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "access": self.access,
            "reader": self.reader,
            "files": {name: len(data) for name, data in self.files.items()},
            "missing": self.missing,
            "denied": self.denied,
        }
        if self.parse_errors:
            out["parse_errors"] = self.parse_errors
        if self.com is not None:
            out["com"] = {"lds_version": self.com.lds_version, "files": list(self.com.files)}
        if self.dg1 is not None:
            out["dg1"] = self.dg1.as_dict()
        if self.dg2 is not None:
            out["dg2"] = [face.as_dict() for face in self.dg2.faces]
        if self.dg13 is not None:
            out["dg13"] = self.dg13.as_dict()
        out["passive_auth"] = self.passive_auth.as_dict() if self.passive_auth else {"valid": None, "failed_step": None}
        out["apdus"] = self.apdus
        out["bytes"] = self.bytes_received
        out["seconds"] = round(self.seconds, 4)
        return out


_PARSERS = {"com": lds.parse_com, "dg1": lds.parse_dg1, "dg2": lds.parse_dg2, "dg13": lds.parse_dg13}


def read_document(
    transport: CardTransport,
    keys: AccessKeys,
    files: tuple[str, ...] | list[str] = DEFAULT_FILES,
    *,
    chunk_size: int = 0,
    extended_length: bool = True,
    trust: TrustStore | None = None,
    at: dt.datetime | None = None,
) -> ReadResult:
    start = time.perf_counter()
    wanted = [lds.file_spec(name).name for name in files]
    if trust is not None and "sod" not in wanted:
        wanted.append("sod")
    session = ChipSession(transport, chunk_size=chunk_size, extended_length=extended_length)
    access = session.open(keys)
    result = ReadResult(access, transport.name, {})
    for name in wanted:
        try:
            result.files[name] = session.read_file(name)
        except FileMissing:
            result.missing.append(name)
        except FileDenied:
            result.denied.append(name)
    for name, parse in _PARSERS.items():
        if name in result.files:
            try:
                setattr(result, name, parse(result.files[name]))
            except ParseError as exc:
                result.parse_errors[name] = str(exc)
    if "sod" in result.files:
        dgs = {n: d for n, d in result.files.items() if n.startswith("dg")}
        result.passive_auth = passive_authentication(result.files["sod"], dgs, trust, at)
    elif trust is not None:
        result.passive_auth = PaResult(False, "sod", "the chip has no EF.SOD")
    counters = session.channel.counters
    result.apdus = counters.apdus
    result.bytes_received = counters.bytes_received
    result.seconds = time.perf_counter() - start
    log.info(
        "read %s via %s: %d APDUs, %.3f s, passive auth %s",
        ",".join(result.files),
        access,
        result.apdus,
        result.seconds,
        "n/a" if result.passive_auth is None else result.passive_auth.valid,
    )
    return result
