"""From the config to running parts: which real device, service and output implements each port.

This is the composition root: the only module that knows every layer below the
daemon; everything else sees ports.  The parts it builds live elsewhere: device
sources in :mod:`agent.app.sources`, hub commands in :mod:`agent.app.hub_commands`,
durable files in :mod:`agent.store.files`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import profiles
from agent.app.chip import PcscChipReader
from agent.app.eligibility import EligibilityCache
from agent.app.flow import CheckinFlow, FlowTimeouts
from agent.app.hub_commands import HubCommands, policy_state
from agent.app.outputs import GpioOutput, LogOutput, MultiOutput, RecorderOutput, ScreenOutput
from agent.app.policy import Policy
from agent.app.ports import DeviceSource, Output, StatusPublisher
from agent.app.sources import AttendantSocket, CardWatcherSource, ScannerSource
from agent.config import Config
from agent.store.files import load_key
from agent.store.keysource import queue_key_file
from agent.uplink.config import UplinkConfig
from agent.uplink.hubmsg import HighWaterMark, HubVerifier, load_public_key

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything the daemon runs, built from the config by :func:`build_runtime`."""

    flow: CheckinFlow
    sources: list[DeviceSource] = field(default_factory=list)
    status_publisher: StatusPublisher | None = None
    extra_status: Callable[[], dict[str, Any]] | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    reconfigure: Callable[[Config], None] | None = None


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


def build_eligibility_cache(cfg: Config) -> EligibilityCache:
    """The cache in ``state_dir/eligibility.db``, sealed under the queue's key for now; imports an old JSON cache."""
    from agent.app.eligibility import open_eligibility_cache

    (cfg.state_dir / "queue").mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file, create = queue_key_file(cfg.state_dir, cfg.terminal.queue_key)
    key = load_key(key_file, create=create)
    return open_eligibility_cache(cfg.state_dir, key, dt.timedelta(hours=cfg.eligibility.max_age_hours))


def build_hub_verifier(cfg: Config, up: UplinkConfig) -> HubVerifier | None:
    """The verifier of hub messages from the key pinned at enrolment; None (all refused) when none is pinned."""
    pin = Path(up.hub_key) if up.hub_key else cfg.state_dir / "hub.pub"
    if not pin.exists():
        log.error("no hub key pinned at %s: every hub message (acks, commands, replies) is refused; "
                  "run gate-agent enroll", pin)  # fmt: skip
        return None
    return HubVerifier(load_public_key(pin), cfg.terminal.facility_id, cfg.terminal.terminal_id,
                       HighWaterMark(cfg.state_dir / "hub-counter.json"), skew=up.clock_skew)  # fmt: skip


def build_runtime(cfg: Config) -> Runtime:
    """Every part of the terminal from the config (devices, queue, uplink, outputs)."""
    from agent.app.eligibility import EligibilityChain
    from agent.store.queue import EventQueue
    from agent.transport.pcsc import PcscTransport
    from agent.uplink.client import Uplink
    from agent.uplink.events import EventFactory, load_signing_key
    from agent.uplink.sink import QueueSink

    state = cfg.state_dir
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file, create = queue_key_file(state, cfg.terminal.queue_key)
    if create and not key_file.exists() and key_file.parent != state / "queue":
        load_key(key_file, create=True)  # made here once, outside the state directory
    queue = EventQueue(state / "queue", capacity=cfg.terminal.queue_capacity, key_file=key_file)
    factory = EventFactory(cfg.terminal.facility_id, cfg.terminal.terminal_id, load_signing_key(state / "terminal.key"))
    uplink = None
    if cfg.uplink.get("broker_urls"):
        up = UplinkConfig.from_table(cfg.uplink, cfg.terminal.facility_id, cfg.terminal.terminal_id)
        uplink = Uplink(up, queue, verifier=build_hub_verifier(cfg, up))
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
        files.append("dg3")  # the chip's fingerprint reference, for the 1:1 match on the module
    reader = PcscChipReader(
        lambda: PcscTransport(r.name), files, Path(r.trust_dir), chunk_size=chunk, extended_length=extended,
        credentials_dir=Path(r.terminal_credentials) if r.terminal_credentials else None,
    )  # fmt: skip
    finger = None
    if cfg.finger.enabled:
        from agent.app.finger import ModuleFinger
        from agent.bio.module import FingerprintModule

        module = FingerprintModule.open(cfg.finger.url, profiles.fingerprint_profile(cfg.finger.profile))
        module.handshake()
        finger = ModuleFinger(module, cfg.finger.threshold)
    policy_table = dict(cfg.policy)
    override = state / "policy.json"
    policy_source = "config"
    if override.exists():
        try:
            policy_table.update(json.loads(override.read_text()))
            policy_source = "hub"
        except (OSError, ValueError) as exc:
            log.error("policy pushed by the hub is unreadable, using the config's: %s", exc)
    t = cfg.timeouts
    flow = CheckinFlow(
        reader=reader,
        eligibility=eligibility,
        sink=QueueSink(queue, factory, uplink),
        output=build_outputs(cfg),
        policy=Policy.from_config(policy_table),
        facility_code=cfg.terminal.facility_id,
        finger=finger,
        timeouts=FlowTimeouts(t.keys, t.card, t.read, t.finger, t.outcome, t.card_removal),
    )
    sources: list[DeviceSource] = [CardWatcherSource(r.name), AttendantSocket(state / "attendant.sock")]
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
        out["policy"] = dict(commands.policy_state)
        if uplink is not None:
            out["uplink"] = {"connected": uplink.connected, "published": uplink.stats.published,
                             "acked": uplink.stats.acked, "broker": uplink.stats.broker,
                             "hub_messages_rejected": uplink.stats.rejected,
                             "hub_key_pinned": uplink.verifier is not None}  # fmt: skip
        return out

    commands = HubCommands(cfg, cache, reader, flow)
    commands.policy_state = policy_state(policy_table, policy_source)

    def reconfigure(fresh: Config) -> None:
        flow.policy = Policy.from_config(dict(fresh.policy))
        ft = fresh.timeouts
        flow.timeouts = FlowTimeouts(ft.keys, ft.card, ft.read, ft.finger, ft.outcome, ft.card_removal)
        flow.output = build_outputs(fresh)
        reader.reload_trust()
        reader.reload_credentials()

    closers: list[Callable[[], None]] = [queue.close]
    if finger is not None:
        closers.append(finger.module.close)
    if uplink is not None:
        uplink.on_command = commands
        uplink.start()
        closers.append(lambda: uplink.stop(5.0))
    return Runtime(flow, sources, uplink, extra_status, closers, reconfigure)
