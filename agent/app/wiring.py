"""From the config to running parts: which real device, service and output implements each port.

This is the only module that knows every layer; everything else sees ports.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent import profiles
from agent.app.chip import PcscChipReader
from agent.app.effective_policy import effective_policy, pushed_path
from agent.app.eligibility import EligibilityCache
from agent.app.flow import CheckinFlow, FlowTimeouts
from agent.app.outputs import GpioOutput, LogOutput, MultiOutput, RecorderOutput, ScreenOutput
from agent.app.ports import CardInserted, CardRemoved, Output, Trigger
from agent.config import Config
from agent.daemon import DeviceSource, Runtime
from agent.errors import GateAgentError

log = logging.getLogger(__name__)


def build_outputs(cfg: Config) -> MultiOutput:
    outs: list[Output] = []
    o = cfg.outputs
    for kind in o.kinds:
        if kind == "log":
            outs.append(LogOutput())
        elif kind == "recorder":
            outs.append(RecorderOutput(o.recorder_path, cfg.terminal.terminal_id))
        elif kind == "screen":
            outs.append(ScreenOutput())
        elif kind == "gpio":
            outs.append(GpioOutput(o.gpio_chip, o.gpio_relay_line, o.gpio_green_line, o.gpio_red_line, o.relay_seconds))
    return MultiOutput(outs)


def write_json_atomic(path: Path, doc: Any) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(doc, ensure_ascii=False).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def build_eligibility_cache(cfg: Config) -> EligibilityCache:
    """The cache, loaded from and saved to ``state_dir/eligibility.json`` (mode 0600)."""
    path = cfg.state_dir / "eligibility.json"

    def save(doc: dict[str, Any]) -> None:
        try:
            write_json_atomic(path, doc)
        except OSError as exc:
            raise GateAgentError(f"cannot save the eligibility cache {path}: {exc}") from exc

    cache = EligibilityCache(dt.timedelta(hours=cfg.eligibility.max_age_hours))
    if path.exists():
        try:
            cache.load_document(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, GateAgentError) as exc:
            log.error("eligibility cache %s unreadable, starting empty: %s", path, exc)
    cache.on_change = save
    return cache


class CardWatcherSource:
    """PC/SC card presence as flow triggers."""

    name = "card reader"

    def __init__(self, reader: str) -> None:
        from agent.transport.pcsc import CardWatcher

        self.watcher = CardWatcher(reader)

    def start(self, submit: Callable[[Trigger], None]) -> None:
        self.watcher.start_watch(lambda present: submit(CardInserted() if present else CardRemoved()))

    def stop(self) -> None:
        self.watcher.stop()

    def state(self) -> str:
        return self.watcher.state()


class CommandHandler:
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
            if kind == "trust_update":
                return self._trust(body)
            if kind == "terminal_credentials":
                return self._credentials(body)
            if kind == "policy":
                table = body.get("policy")
                if not isinstance(table, Mapping):
                    return False, "policy must be a table"
                policy = effective_policy(self.cfg, dict(table))  # validated before anything is written
                write_json_atomic(pushed_path(self.cfg), dict(table))
                self.flow.policy = policy
                return True, "policy applied"
        except (ValueError, TypeError) as exc:
            return False, f"malformed command: {exc}"
        except GateAgentError as exc:
            return False, str(exc)
        return False, f"unknown command type {kind!r}"

    def _trust(self, body: Mapping[str, Any]) -> tuple[bool, str]:
        """Replace the trust anchors: every file must load before any is written."""
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
            elif suffix in (".pem", ".der", ".crt", ".cer"):
                check.add_certificate(data, str(name))
            else:
                return False, f"unknown trust file type {name!r}"
        trust_dir = self.cfg.trust_dir
        trust_dir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = trust_dir / str(name)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self.reader.reload_trust()
        return True, f"{len(files)} trust files installed"

    def _credentials(self, body: Mapping[str, Any]) -> tuple[bool, str]:
        """Replace the Terminal Authentication chain and key: the new set must load and verify first.

        Files are swapped one by one (each atomically); a power cut in between leaves a set that
        fails to load at start, which the status reports, and the gate keeps working without DG3.
        """
        import tempfile

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
            for name, data in files.items():
                path = Path(staging) / str(name)
                path.write_bytes(b"")
                path.chmod(0o600)
                path.write_bytes(data)
            if "terminal.key" not in files and (directory / "terminal.key").exists():
                # renewed certificates for the same key: keep the key
                (Path(staging) / "terminal.key").write_bytes(b"")
                (Path(staging) / "terminal.key").chmod(0o600)
                (Path(staging) / "terminal.key").write_bytes((directory / "terminal.key").read_bytes())
            try:
                credentials = load_credentials(staging)
            except CvcError as exc:
                return False, f"credentials rejected: {exc}"
            for old in directory.glob("*.cvcert"):
                if old.name not in files:
                    old.unlink()
            for name in [*files, "terminal.key"]:
                if (Path(staging) / str(name)).exists():
                    os.replace(Path(staging) / str(name), directory / str(name))
        self.reader.reload_credentials()
        term = credentials.terminal
        return True, f"terminal credentials installed: {term.chr} until {term.expiration}"


def build_runtime(cfg: Config) -> Runtime:
    """Every part of the terminal from the config (devices, queue, uplink, outputs)."""
    from agent.app.attendant import AttendantSocket
    from agent.app.eligibility import EligibilityChain
    from agent.scan.source import ScannerSource
    from agent.store.queue import EventQueue
    from agent.transport.pcsc import PcscTransport
    from agent.uplink.client import Uplink, UplinkConfig
    from agent.uplink.events import EventFactory, load_signing_key
    from agent.uplink.sink import QueueSink

    state = cfg.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    queue = EventQueue(state / "queue", capacity=cfg.terminal.queue_capacity)
    factory = EventFactory(cfg.terminal.facility_id, cfg.terminal.terminal_id, load_signing_key(state / "terminal.key"))
    uplink = None
    if cfg.uplink.broker_urls:
        uplink = Uplink(UplinkConfig.from_settings(cfg.uplink, cfg.terminal.facility_id, cfg.terminal.terminal_id),
                        queue)  # fmt: skip
    cache = build_eligibility_cache(cfg)
    eligibility = EligibilityChain(cache, uplink, cfg.eligibility.online_timeout)
    r = cfg.reader
    chunk, extended = r.chunk_size, r.extended_length
    if r.profile:
        reader_profile = profiles.load(r.profile, "reader")
        chunk = chunk or int(reader_profile["chunk_size"])
        extended = extended and bool(reader_profile["extended_length"])  # the hardware's limit wins
    files = list(r.files)
    if r.terminal_credentials and cfg.finger.enabled and "dg3" not in files:
        files.append("dg3")  # the chip's fingerprint reference, for the 1:1 match
    reader = PcscChipReader(
        lambda: PcscTransport(r.name), files, cfg.trust_dir, chunk_size=chunk, extended_length=extended,
        credentials_dir=Path(r.terminal_credentials) if r.terminal_credentials else None,
        read_timeout=cfg.timeouts.read,
    )  # fmt: skip
    finger = None
    if cfg.finger.enabled:
        from agent.app.finger import open_finger

        finger = open_finger(cfg.finger)
    t = cfg.timeouts
    attendant = AttendantSocket(state / "attendant.sock")  # a source, and an output: it answers waiting requests
    flow = CheckinFlow(
        reader=reader,
        eligibility=eligibility,
        sink=QueueSink(queue, factory, uplink),
        output=MultiOutput([*build_outputs(cfg).outputs, attendant]),
        policy=effective_policy(cfg),
        facility_code=cfg.terminal.facility_id,
        finger=finger,
        timeouts=FlowTimeouts(keys=t.keys, card=t.card, read=t.read, finger=t.finger, card_removal=t.card_removal),
    )
    sources: list[DeviceSource] = [CardWatcherSource(r.name), attendant]
    sc = cfg.scanners
    if sc.mrz_url:
        baud = int(profiles.load(sc.mrz_profile, "scanner")["baud"]) if sc.mrz_profile else 9600
        sources.append(ScannerSource(sc.mrz_url, "mrz", baud))
    if sc.qr_url:
        baud = int(profiles.load(sc.qr_profile, "scanner")["baud"]) if sc.qr_profile else 9600
        sources.append(ScannerSource(sc.qr_url, "qr", baud))

    def extra_status() -> dict[str, Any]:
        out: dict[str, Any] = {"queue": queue.stats(), "eligibility": {"records": len(cache), "fresh": cache.fresh},
                               "terminal_credentials": reader.credentials_status}  # fmt: skip
        if uplink is not None:
            out["uplink"] = {"connected": uplink.connected, "published": uplink.stats.published,
                             "acked": uplink.stats.acked, "broker": uplink.stats.broker}  # fmt: skip
        return out

    def reconfigure(fresh: Config) -> None:
        flow.policy = effective_policy(fresh)
        ft = fresh.timeouts
        flow.timeouts = FlowTimeouts(keys=ft.keys, card=ft.card, read=ft.read, finger=ft.finger,
                                     card_removal=ft.card_removal)
        reader.read_timeout = ft.read
        flow.output = MultiOutput([*build_outputs(fresh).outputs, attendant])
        reader.reload_trust()
        reader.reload_credentials()

    closers: list[Callable[[], None]] = [queue.close]
    if finger is not None:
        closers.append(finger.close)
    if uplink is not None:
        uplink.on_command = CommandHandler(cfg, cache, reader, flow)
        uplink.start()
        closers.append(lambda: uplink.stop(5.0))
    return Runtime(flow, sources, uplink, extra_status, closers, reconfigure)
