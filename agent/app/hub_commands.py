"""The hub's commands to this terminal, each applied atomically (checked in full first) or refused with a reason.

The uplink verifies a command (signature, freshness, addressee) and calls
:class:`HubCommands` with its body; the answer ``(ok, detail)`` goes back to the
hub as the command's acknowledgement.  Commands:

* ``eligibility_snapshot`` / ``eligibility_delta`` -- the eligibility cache (saved by its ``on_change``);
* ``policy`` -- the ``[policy]`` table, saved to ``state_dir/policy.json`` and used from the next check-in
  (overlaid on the config's, :mod:`agent.app.effective_policy`: it survives a reload and a restart);
* ``trust_update`` -- trust anchors (CSCA certificates, master lists, CRLs) added to or replacing files
  in ``reader.trust_dir``;
* ``terminal_credentials`` -- the Terminal Authentication chain and key in ``reader.terminal_credentials``.

Files are written with :mod:`agent.store.files` (fsync'd, renamed into place, the
directory fsync'd); no old file is deleted before every new one is in place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509

from agent.app.chip import PcscChipReader
from agent.app.effective_policy import effective_policy, effective_table, pushed_path
from agent.app.eligibility import EligibilityCache
from agent.app.enrol import ML_ROOT_PIN
from agent.app.flow import CheckinFlow
from agent.config import Config
from agent.errors import GateAgentError
from agent.store.files import fsync_dir, write_atomic, write_durable, write_json_atomic

TRUST_SUFFIXES = (".crl", ".ml")  # CSCA certificates arrive inside a master list, never alone


class TrustPushError(GateAgentError):
    """A pushed trust anchor does not chain to what was pinned at enrolment."""


def policy_state(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """What the status heartbeat says about the policy in force: where it came from and a digest of it."""
    canonical = json.dumps(dict(table), sort_keys=True, default=str).encode()
    return {"source": source, "sha256": hashlib.sha256(canonical).hexdigest()[:16],
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip


def master_list_signer_chains_to(data: bytes, root: x509.Certificate, source: str) -> None:
    """The master list's signer is the pinned root or certified by it (9303-12: the CSCA certifies its signer)."""
    from asn1crypto import cms

    from agent.card.trust import SignatureError, certificate_key, signer_certificate, verify_issued_by

    try:
        signed = cms.ContentInfo.load(data, strict=True)["content"]
        infos = signed["signer_infos"]
        if len(infos) != 1:
            raise TrustPushError(f"{source}: a master list needs exactly one signer")
        signer = signer_certificate(signed, infos[0])
    except TrustPushError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, x509.InvalidVersion) as exc:
        raise TrustPushError(f"{source}: malformed master list: {exc}") from exc
    if signer is None:
        raise TrustPushError(f"{source}: the master list carries no signer certificate")
    if signer == root:
        return
    if signer.issuer != root.subject:
        raise TrustPushError(f"{source}: the master list signer is not certified by the pinned root")
    try:
        verify_issued_by(signer, certificate_key(root))
    except SignatureError as exc:
        raise TrustPushError(f"{source}: the master list signer is not certified by the pinned root: {exc}") from exc


class HubCommands:
    """Hub commands, each applied atomically (validated in full first) or rejected with a reason."""

    def __init__(self, cfg: Config, cache: EligibilityCache, reader: PcscChipReader, flow: CheckinFlow) -> None:
        self.cfg = cfg
        self.cache = cache
        self.reader = reader
        self.flow = flow
        self.policy_state: dict[str, Any] = policy_state(cfg.policy, "config")
        self.skew = cfg.uplink.clock_skew

    def __call__(self, body: Mapping[str, Any]) -> tuple[bool, str]:
        kind = body.get("type")
        try:
            if kind in ("eligibility_snapshot", "eligibility_delta"):
                return self._eligibility(kind, body)
            if kind == "trust_update":
                return self._trust(body)
            if kind == "terminal_credentials":
                return self._credentials(body)
            if kind == "policy":
                return self._policy(body)
        except (ValueError, TypeError) as exc:
            return False, f"malformed command: {exc}"
        except OSError as exc:
            return False, f"cannot write the files: {exc}"
        except GateAgentError as exc:
            return False, str(exc)
        return False, f"unknown command type {kind!r}"

    def _eligibility(self, kind: str, body: Mapping[str, Any]) -> tuple[bool, str]:
        as_of = dt.datetime.fromisoformat(str(body.get("as_of")))
        if as_of.tzinfo is None:
            return False, "as_of must carry a time zone"
        if as_of > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.skew):
            return False, "eligibility data dated in the future (beyond the allowed clock skew)"
        if kind == "eligibility_snapshot":
            records = body.get("records")
            if not isinstance(records, list | tuple):
                return False, "records must be a list"
            return True, f"{self.cache.apply_snapshot(records, as_of)} records"
        upserts, deletes = body.get("upserts", []), body.get("deletes", [])
        added, removed = self.cache.apply_delta(upserts, deletes, as_of)
        return True, f"{added} added or changed, {removed} removed"

    def _policy(self, body: Mapping[str, Any]) -> tuple[bool, str]:
        table = body.get("policy")
        if not isinstance(table, Mapping):
            return False, "policy must be a table"
        policy = effective_policy(self.cfg, dict(table))  # validated before anything is written
        write_json_atomic(pushed_path(self.cfg), dict(table))
        self.flow.policy = policy
        self.policy_state = policy_state(effective_table(self.cfg, dict(table)), "hub")
        return True, "policy applied"

    def _trust(self, body: Mapping[str, Any]) -> tuple[bool, str]:
        """Add or replace trust anchors: every file must load before any is written."""
        from agent.card.trust import TrustStore

        files = body.get("files")
        if not isinstance(files, Mapping) or not files:
            return False, "files must map file names to contents"
        pin = self.cfg.state_dir / ML_ROOT_PIN
        try:
            root = x509.load_pem_x509_certificate(pin.read_bytes())
        except (OSError, ValueError):
            return False, f"no master-list root pinned at enrolment ({pin.name}): trust updates are refused"
        check = TrustStore()
        for name, data in files.items():
            if not isinstance(data, bytes) or "/" in str(name) or str(name).startswith("."):
                return False, f"bad trust file {name!r}"
            suffix = Path(str(name)).suffix.lower()
            if suffix == ".crl":
                check.add_crl(data, str(name))
            elif suffix == ".ml":
                master_list_signer_chains_to(data, root, str(name))
                check.add_master_list(data, str(name))
            else:
                return False, f"refused trust file {name!r}: CSCA certificates come only in a signed master list (.ml)"
        if not check.certificates and not check.crls:
            return False, "no trust anchors in the update"
        trust_dir = self.cfg.trust_dir
        trust_dir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            write_atomic(trust_dir / str(name), data, 0o644)
        self.reader.reload_trust()
        return True, f"{len(files)} trust files installed"

    def _credentials(self, body: Mapping[str, Any]) -> tuple[bool, str]:
        """Replace the Terminal Authentication chain and key: the new set must load and verify first.

        The new files are staged (fsync'd) beside the directory, checked as a set, then
        renamed into place one by one (each atomically) and the directory fsync'd; only
        then are certificates that are not part of the new set deleted.  A power cut
        during the renames leaves a mix of old and new files, which may fail to load at
        start: the status reports it and the gate keeps working without DG3 until the
        hub sends the credentials again.
        """
        from agent.card.cvc import CvcError, load_credentials, parse_cvc

        files = body.get("files")
        target = self.cfg.reader.terminal_credentials
        if not target:
            return False, "reader.terminal_credentials is not configured on this terminal"
        if not isinstance(files, Mapping) or not files:
            return False, "files must map file names to contents"
        for name, data in files.items():
            name = str(name)
            if name.endswith(".key") or (isinstance(data, bytes) and b"PRIVATE KEY" in data):
                return False, "a private key never travels: credentials renewal carries certificates only"
            if not isinstance(data, bytes) or "/" in name or name.startswith(".") or not name.endswith(".cvcert"):
                return False, f"bad credentials file {name!r} (only *.cvcert)"
        directory = Path(target)
        current = _current_cvcas(directory)
        if not current:
            return False, "no CVCA certificate on this terminal to chain to (enrol first)"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=directory.parent) as staging:
            staged = Path(staging)
            for name, data in files.items():
                write_durable(staged / str(name), data, 0o600)
            if not (directory / "terminal.key").exists():
                return False, "no terminal key on this terminal (enrol first)"
            # the key made at enrolment stays; the trusted CVCA stays available for link certificates
            write_durable(staged / "terminal.key", (directory / "terminal.key").read_bytes(), 0o600)
            for file_name, cvca in current.items():
                if not (staged / file_name).exists():
                    write_durable(staged / file_name, cvca, 0o600)
            try:
                credentials = load_credentials(staged)
            except CvcError as exc:
                return False, f"credentials rejected: {exc}"
            root = credentials.chain[0]
            trusted = {(c.chr, c.public_key.point) for c in (parse_cvc(raw) for raw in current.values())}
            if (root.chr, root.public_key.point) not in trusted:  # same CVCA: same name and same key
                return False, "credentials rejected: the chain does not start at the CVCA this terminal trusts"
            fsync_dir(staged)
            names = {p.name for p in staged.glob("*.cvcert")}
            for name in names:
                (staged / name).replace(directory / name)
            fsync_dir(directory)
            stale = [old for old in directory.glob("*.cvcert") if old.name not in names]
            for old in stale:
                old.unlink()
            if stale:
                fsync_dir(directory)
        self.reader.reload_credentials()
        term = credentials.terminal
        return True, f"terminal credentials installed: {term.chr} until {term.expiration}"


def _current_cvcas(directory: Path) -> dict[str, bytes]:
    """The self-signed CVCA certificates the terminal holds now (file name -> encoded certificate)."""
    from agent.card.cvc import Role, parse_cvc
    from agent.card.errors import ParseError

    out: dict[str, bytes] = {}
    for file in sorted(directory.glob("*.cvcert")) if directory.is_dir() else []:
        try:
            cert = parse_cvc(file.read_bytes())
        except (OSError, ParseError):
            continue
        if cert.role is Role.CVCA and cert.self_signed:
            out[file.name] = cert.raw
    return out
