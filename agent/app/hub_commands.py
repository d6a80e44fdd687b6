"""The hub's commands to this terminal, each applied atomically (checked in full first) or refused with a reason.

The uplink verifies a command (signature, freshness, addressee) and calls
:class:`HubCommands` with its body; the answer ``(ok, detail)`` goes back to the
hub as the command's acknowledgement.  Commands:

* ``eligibility_snapshot`` / ``eligibility_delta`` -- the eligibility cache (saved by its ``on_change``);
* ``policy`` -- the ``[policy]`` table, saved to ``state_dir/policy.json`` and used from the next check-in;
* ``trust_update`` -- trust anchors (CSCA certificates, master lists, CRLs) added to or replacing files
  in ``reader.trust_dir``;
* ``terminal_credentials`` -- the Terminal Authentication chain and key in ``reader.terminal_credentials``.

Files are written with :mod:`agent.store.files` (fsync'd, renamed into place, the
directory fsync'd); no old file is deleted before every new one is in place.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.app.chip import PcscChipReader
from agent.app.eligibility import EligibilityCache
from agent.app.flow import CheckinFlow
from agent.app.policy import Policy
from agent.config import Config
from agent.errors import GateAgentError
from agent.store.files import fsync_dir, write_atomic, write_durable, write_json_atomic

TRUST_SUFFIXES = (".pem", ".der", ".crt", ".cer", ".crl", ".ml")


class HubCommands:
    """Hub commands, each applied atomically (validated in full first) or rejected with a reason."""

    def __init__(self, cfg: Config, cache: EligibilityCache, reader: PcscChipReader, flow: CheckinFlow) -> None:
        self.cfg = cfg
        self.cache = cache
        self.reader = reader
        self.flow = flow

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
        policy = Policy.from_config(dict(table))
        write_json_atomic(self.cfg.state_dir / "policy.json", dict(table))
        self.flow.policy = policy
        return True, "policy applied"

    def _trust(self, body: Mapping[str, Any]) -> tuple[bool, str]:
        """Add or replace trust anchors: every file must load before any is written."""
        from agent.card.trust import TrustStore

        files = body.get("files")
        if not isinstance(files, Mapping) or not files:
            return False, "files must map file names to contents"
        check = TrustStore()
        for name, data in files.items():
            if not isinstance(data, bytes) or "/" in str(name) or str(name).startswith("."):
                return False, f"bad trust file {name!r}"
            suffix = Path(str(name)).suffix.lower()
            if suffix == ".crl":
                check.add_crl(data, str(name))
            elif suffix == ".ml":
                check.add_master_list(data, str(name))
            elif suffix in TRUST_SUFFIXES:
                check.add_certificate(data, str(name))
            else:
                return False, f"unknown trust file type {name!r}"
        trust_dir = Path(self.cfg.reader.trust_dir)
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
        from agent.card.cvc import CvcError, load_credentials

        files = body.get("files")
        target = self.cfg.reader.terminal_credentials
        if not target:
            return False, "reader.terminal_credentials is not configured on this terminal"
        if not isinstance(files, Mapping) or not files:
            return False, "files must map file names to contents"
        for name, data in files.items():
            name = str(name)
            if not isinstance(data, bytes) or "/" in name or name.startswith(".") or \
                    not (name.endswith(".cvcert") or name == "terminal.key"):  # fmt: skip
                return False, f"bad credentials file {name!r} (only *.cvcert and terminal.key)"
        directory = Path(target)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=directory.parent) as staging:
            staged = Path(staging)
            for name, data in files.items():
                write_durable(staged / str(name), data, 0o600)
            if "terminal.key" not in files and (directory / "terminal.key").exists():
                # renewed certificates for the same key: keep the key
                write_durable(staged / "terminal.key", (directory / "terminal.key").read_bytes(), 0o600)
            try:
                credentials = load_credentials(staged)
            except CvcError as exc:
                return False, f"credentials rejected: {exc}"
            fsync_dir(staged)
            for name in [*files, "terminal.key"]:
                if (staged / str(name)).exists():
                    (staged / str(name)).replace(directory / str(name))
            fsync_dir(directory)
            stale = [old for old in directory.glob("*.cvcert") if old.name not in files]
            for old in stale:
                old.unlink()
            if stale:
                fsync_dir(directory)
        self.reader.reload_credentials()
        term = credentials.terminal
        return True, f"terminal credentials installed: {term.chr} until {term.expiration}"
