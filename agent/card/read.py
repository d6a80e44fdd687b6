"""Read and verify a chip: the one function the CLI and the check-in flow call.

``read_document`` opens the chip, reads the files asked for (plus EF.SOD when trust
anchors are given, since Passive Authentication needs it), parses what it read,
and runs Passive Authentication.  Files the chip lacks are *missing*, files it
refuses are *denied*; neither is an error.  The result keeps the raw bytes only in
memory, for the caller to drop when done.

Downgrade resistance: EF.SOD is always read first, and every data group it lists
that a check depends on is read whether asked for or not.  A chip that will not
give a listed DG14 or DG15 is not the chip the state issued (``DG14_WITHHELD``,
``DG15_WITHHELD``); DG14 listed makes Chip Authentication mandatory, DG15 listed
Active Authentication: "not judged" then becomes failed (``CA_REQUIRED``,
``AA_REQUIRED``), except when the terminal itself cannot run the protocol
(``CA_NOT_RUN``); PACE announced in DG14 but no EF.CardAccess is
``CARD_ACCESS_MISSING``.  The rules that fired are in :attr:`ReadResult.rules`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from agent.card import ca, lds
from agent.card.aa import active_authentication
from agent.card.authresult import AuthResult
from agent.card.cvc import TerminalCredentials
from agent.card.dg3 import Dg3, parse_dg3
from agent.card.errors import CardError, ParseError, ReadDeadlineError, UnexpectedCardData
from agent.card.keys import AccessKeys
from agent.card.pa import PaResult, passive_authentication
from agent.card.secinfo import SecurityInfos, parse_security_infos
from agent.card.session import ChipSession, FileDenied, FileMissing
from agent.card.sod import parse_sod
from agent.card.ta import TerminalAuthError, terminal_authentication
from agent.card.trust import TrustStore
from agent.model import CLONE_RULES
from agent.transport.base import CardTransport

log = logging.getLogger(__name__)

DEFAULT_FILES = ("com", "dg1", "dg13", "dg14", "dg15")

#: downgrade rules: code -> True when it alone shows the chip is not the original (CLONE_SUSPECTED: the codes
#: of agent.model.CLONE_RULES, the one list); the others have their own finding (PACE_DOWNGRADE, and
#: CHIP_AUTH_NOT_RUN where the terminal is to blame)
RULES: dict[str, bool] = {
    code: code in CLONE_RULES
    for code in (
        "DG14_WITHHELD",  # EF.SOD lists DG14, the chip will not give it: Chip Authentication avoided
        "DG15_WITHHELD",  # EF.SOD lists DG15, the chip will not give it: Active Authentication avoided
        "CA_REQUIRED",  # DG14 listed, Chip Authentication not judged (no usable key announced ...)
        "AA_REQUIRED",  # DG15 listed, Active Authentication not judged (unknown trailer, algorithm ...)
        "CARD_ACCESS_MISSING",  # DG14 announces PACE, the chip has no EF.CardAccess: PACE avoided
        "CA_NOT_RUN",  # DG14 listed, this terminal cannot run the announced Chip Authentication
    )
}


@dataclass(frozen=True)
class RuleHit:
    """A downgrade rule that fired for this chip."""

    rule: str
    detail: str

    @property
    def clone(self) -> bool:
        return RULES[self.rule]

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "detail": self.detail, "clone": self.clone}


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
    dg3: Dg3 | None = None
    passive_auth: PaResult | None = None
    active_auth: AuthResult | None = None
    chip_auth: AuthResult | None = None
    terminal_auth: AuthResult | None = None
    listed: tuple[str, ...] = ()  # data groups EF.SOD (or, without one, EF.COM) says the chip has
    rules: list[RuleHit] = field(default_factory=list)
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
        if self.dg3 is not None:
            out["dg3"] = self.dg3.as_dict()
        out["passive_auth"] = self.passive_auth.as_dict() if self.passive_auth else {"valid": None, "failed_step": None}
        for name in ("active_auth", "chip_auth", "terminal_auth"):
            result: AuthResult | None = getattr(self, name)
            out[name] = result.as_dict() if result else {"valid": None, "failed_step": None}
        out["listed"] = list(self.listed)
        out["rules"] = [hit.as_dict() for hit in self.rules]
        out["failures"] = self.failures()
        out["apdus"] = self.apdus
        out["bytes"] = self.bytes_received
        out["seconds"] = round(self.seconds, 4)
        return out


    def failures(self) -> list[str]:
        """Every authenticity check that failed, or was required and not made: empty when the chip is proven."""
        out = [f"{name}: failed" for name in ("passive_auth", "active_auth", "chip_auth")
               if (r := getattr(self, name)) is not None and r.valid is False]  # fmt: skip
        return out + [hit.rule for hit in self.rules]


_PARSERS = {"com": lds.parse_com, "dg1": lds.parse_dg1, "dg2": lds.parse_dg2, "dg13": lds.parse_dg13,
            "dg3": parse_dg3}  # fmt: skip


def read_document(
    transport: CardTransport,
    keys: AccessKeys,
    files: tuple[str, ...] | list[str] = DEFAULT_FILES,
    *,
    chunk_size: int = 0,
    extended_length: bool = True,
    trust: TrustStore | None = None,
    at: dt.datetime | None = None,
    terminal: TerminalCredentials | None = None,
    deadline: float | None = None,
) -> ReadResult:
    """Open the chip, read ``files``, check the chip's authenticity, run Passive Authentication.

    Active Authentication runs when DG15 was read, Chip Authentication when DG14 was
    read and announces a key; DG3 is read after Terminal Authentication with
    ``terminal`` credentials (after Chip Authentication, as EAC version 1 requires).
    ``deadline`` (``time.monotonic()``) bounds the whole read: :class:`ReadDeadlineError` after it.
    Whatever the chip answers, only a :class:`CardError` (or a transport error) leaves this function.
    """
    try:
        return _read_document(transport, keys, files, chunk_size=chunk_size, extended_length=extended_length,
                              trust=trust, at=at, terminal=terminal, deadline=deadline)  # fmt: skip
    except (ValueError, OverflowError, IndexError, KeyError, TypeError, AttributeError, UnicodeError) as exc:
        # a bug's signature, but the chip caused it: a typed error, never a crash of the caller
        log.warning("the chip's answers could not be handled: %s", type(exc).__name__)
        raise UnexpectedCardData(f"the chip's answers could not be handled ({type(exc).__name__})") from exc


def _read_document(
    transport: CardTransport,
    keys: AccessKeys,
    files: tuple[str, ...] | list[str],
    *,
    chunk_size: int,
    extended_length: bool,
    trust: TrustStore | None,
    at: dt.datetime | None,
    terminal: TerminalCredentials | None,
    deadline: float | None,
) -> ReadResult:
    start = time.perf_counter()
    wanted = [lds.file_spec(name).name for name in files]
    session = ChipSession(transport, chunk_size=chunk_size, extended_length=extended_length, deadline=deadline)
    access = session.open(keys)
    result = ReadResult(access, transport.name, {})
    for name in ("sod", "com"):
        if name == "sod" or name in wanted:
            _read_into(session, result, name)
    result.listed = _listed(result)
    # every data group a check depends on is read when the chip says it has it
    for name in ("dg14", "dg15") + (("dg3",) if terminal is not None else ()):
        if name in result.listed and name not in wanted:
            wanted.append(name)
    needs_ta = "dg3" in wanted
    for name in wanted:
        if name in ("dg3", "sod", "com"):
            continue  # DG3 after Terminal Authentication; EF.SOD and EF.COM are read
        _read_into(session, result, name)
    infos = _infos(result)  # DG14, parsed once for both the authentication and the downgrade rules
    authenticity(session, result, terminal, needs_ta, infos)
    for name, parse in _PARSERS.items():
        if name in result.files:
            try:
                setattr(result, name, parse(result.files[name]))
            except ParseError as exc:
                result.parse_errors[name] = str(exc)
    if trust is None:
        pass  # not checked: no trust anchors
    elif "sod" in result.files:
        dgs = {n: d for n, d in result.files.items() if n.startswith("dg")}
        result.passive_auth = passive_authentication(result.files["sod"], dgs, trust, at)
    else:
        result.passive_auth = PaResult(False, "sod", "the chip has no EF.SOD")
    _distrust_unauthenticated_keys(result)
    downgrade_rules(session, result, infos)
    if deadline is not None and time.monotonic() > deadline:
        raise ReadDeadlineError("the chip read passed its deadline")
    counters = session.channel.counters
    result.apdus = counters.apdus
    result.bytes_received = counters.bytes_received
    result.seconds = time.perf_counter() - start
    log.info(
        "read %s via %s: %d APDUs, %.3f s, passive auth %s, AA %s, CA %s, TA %s, rules %s",
        ",".join(result.files),
        access,
        result.apdus,
        result.seconds,
        "n/a" if result.passive_auth is None else result.passive_auth.valid,
        *("n/a" if r is None else r.valid for r in (result.active_auth, result.chip_auth, result.terminal_auth)),
        ",".join(hit.rule for hit in result.rules) or "none",
    )
    return result


def _read_into(session: ChipSession, result: ReadResult, name: str) -> None:
    try:
        result.files[name] = session.read_file(name)
    except FileMissing:
        result.missing.append(name)
    except FileDenied:
        result.denied.append(name)


def _listed(result: ReadResult) -> tuple[str, ...]:
    """The data groups the chip must have: EF.SOD's hash list, else EF.COM's tag list (unsigned, a hint)."""
    names: set[str] = set()
    if "sod" in result.files:
        try:
            names |= {f"dg{n}" for n in parse_sod(result.files["sod"]).dg_hashes}
        except ParseError as exc:
            result.parse_errors["sod"] = str(exc)
    if not names and "com" in result.files:
        try:
            names |= set(lds.parse_com(result.files["com"]).files)
        except ParseError as exc:
            result.parse_errors["com"] = str(exc)
    return tuple(sorted(names, key=lambda n: int(n[2:]) if n[2:].isdigit() else 0))


def downgrade_rules(session: ChipSession, result: ReadResult, infos: SecurityInfos | None) -> None:
    """Every check a listed data group makes mandatory: what could not be made fails (see the module docstring)."""
    listed = set(result.listed)
    for name, rule in (("dg14", "DG14_WITHHELD"), ("dg15", "DG15_WITHHELD")):
        if name in listed and name not in result.files:
            how = "denies" if name in result.denied else "does not give"
            result.rules.append(RuleHit(rule, f"EF.SOD lists {name.upper()} and the chip {how} it: a copy"))
    if "dg15" in listed and "dg15" in result.files:
        aa = result.active_auth
        if aa is None or aa.valid is None:
            why = aa.detail if aa is not None else "not run"
            result.rules.append(RuleHit("AA_REQUIRED", f"EF.SOD lists DG15; Active Authentication not judged: {why}"))
            result.active_auth = AuthResult.failed(
                aa.failed_step if aa is not None and aa.failed_step else "required",
                f"required by EF.SOD (DG15) and not judged: {why}", aa.algorithm if aa else None)  # fmt: skip
    if "dg14" in listed and "dg14" in result.files:
        ca_result = result.chip_auth
        if ca_result is None or ca_result.valid is None:
            why = ca_result.detail if ca_result is not None else "not run"
            if ca_result is not None and ca_result.failed_step == "extended":
                result.rules.append(RuleHit("CA_NOT_RUN", f"EF.SOD lists DG14; this terminal cannot run it: {why}"))
            else:
                result.rules.append(RuleHit("CA_REQUIRED", f"EF.SOD lists DG14; Chip Authentication not judged: {why}"))
                result.chip_auth = AuthResult.failed(
                    ca_result.failed_step if ca_result is not None and ca_result.failed_step else "required",
                    f"required by EF.SOD (DG14) and not judged: {why}",
                    ca_result.algorithm if ca_result else None)  # fmt: skip
    if infos is not None and infos.pace and session.card_access is None:
        result.rules.append(RuleHit("CARD_ACCESS_MISSING",
                                    "DG14 announces PACE but the chip has no readable EF.CardAccess"))  # fmt: skip


def _infos(result: ReadResult) -> SecurityInfos | None:
    if "dg14" not in result.files:
        return None
    try:
        return parse_security_infos(result.files["dg14"], "DG14")
    except ParseError as exc:
        result.parse_errors["dg14"] = str(exc)
        return None


def authenticity(session: ChipSession, result: ReadResult, terminal: TerminalCredentials | None, dg3: bool,
                 infos: SecurityInfos | None) -> None:  # fmt: skip
    """Active, Chip and (for DG3) Terminal Authentication, each judged on its own.

    A chip that announces Chip Authentication and fails it, or whose DG15 key does not
    sign our challenge, is not the chip the state issued: the result says so.  Whether
    DG14 and DG15 themselves are genuine is Passive Authentication's verdict.
    """
    if "dg15" in result.files:
        result.active_auth = active_authentication(session.send, result.files["dg15"], infos)
        if result.active_auth.valid is False and (session.sm is None or session.sm.broken):
            session.reopen()  # the failed command ended the session; CA and TA need one
    choice: ca.CaChoice | None = None
    if infos is not None:
        try:
            choice = ca.choose(infos)
        except ca.ChipAuthError as exc:
            result.chip_auth = AuthResult.skipped(exc.step, exc.detail)
        if choice is None and result.chip_auth is None:
            result.chip_auth = AuthResult.skipped("dg14", "DG14 announces no Chip Authentication key")
    elif "dg14" in result.missing:
        result.chip_auth = AuthResult.skipped("dg14", "the chip has no DG14")
    if choice is not None and isinstance(choice.public_key, ca.DhPublicKey) and not session.extended_length:
        # a DH public value (256 bytes and more) does not fit a short APDU, and this terminal (its reader)
        # sends none longer: not the chip's fault.  A chip that refused an extended read is not excused:
        # CA is tried all the same, and a chip that cannot do it is judged (DG14 announces it).
        result.chip_auth = AuthResult.skipped("extended", "DH Chip Authentication needs extended-length APDUs",
                                              choice.describe())  # fmt: skip
        choice = None
    if choice is not None:
        try:
            session.run_chip_auth(choice)
            result.chip_auth = AuthResult.passed(choice.describe())
        except (ca.ChipAuthError, CardError) as exc:
            failure = ca.describe_failure(exc)
            result.chip_auth = AuthResult.failed(failure.failed_step or "keys", failure.detail, choice.describe())
    if not dg3:
        return
    if infos is not None and not infos.terminal_auth:
        result.terminal_auth = AuthResult.skipped("chip", "DG14 announces no Terminal Authentication")
    elif terminal is None:
        result.terminal_auth = AuthResult.skipped("credentials", "no terminal credentials configured")
    elif session.chip_auth is None:
        result.terminal_auth = AuthResult.skipped("chip_auth", "TA needs a successful Chip Authentication first")
    else:
        try:
            terminal_authentication(session.send, terminal, session.id_picc(), session.chip_auth.ephemeral_compressed)
            family, digest = terminal.terminal.public_key.algorithm
            result.terminal_auth = AuthResult.passed(f"TA-{family.upper()}-{digest.upper()}")
        except TerminalAuthError as exc:
            result.terminal_auth = AuthResult.failed(exc.step, exc.detail)
        except CardError as exc:
            result.terminal_auth = AuthResult.failed("session", str(exc))
    if result.terminal_auth is None or not result.terminal_auth.valid:
        result.denied.append("dg3")
        return
    try:
        result.files["dg3"] = session.read_file("dg3")
    except FileMissing:
        result.missing.append("dg3")
    except FileDenied:
        result.denied.append("dg3")


def _distrust_unauthenticated_keys(result: ReadResult) -> None:
    """AA and CA prove possession of DG15's and DG14's keys; worthless when those files fail their hash check."""
    pa = result.passive_auth
    if pa is None or pa.valid:
        return
    for name, attr in (("dg14", "chip_auth"), ("dg15", "active_auth")):
        outcome: AuthResult | None = getattr(result, attr)
        if outcome is not None and outcome.valid and pa.failed_step == f"hash:{name}":
            detail = f"{name.upper()} fails Passive Authentication: the chip proved a key the state did not sign"
            setattr(result, attr, AuthResult.failed(name, detail, outcome.algorithm))
