"""From the config to running parts: which real device, service and output implements each port.

This is the composition root: the only module that knows every layer below the
daemon; everything else sees ports.  The parts it builds live elsewhere: device
sources in :mod:`agent.app.sources`, hub commands in :mod:`agent.app.hub_commands`,
durable files in :mod:`agent.store.files`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import profiles
from agent.app.chip import PcscChipReader
from agent.app.effective_policy import policy_in_force
from agent.app.eligibility import EligibilityCache
from agent.app.flow import CheckinFlow, FlowTimeouts
from agent.app.hub_commands import HubCommands, policy_state
from agent.app.outputs import GpioOutput, LogOutput, MultiOutput, RecorderOutput, ScreenOutput
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


def build_outputs(cfg: Config, previous: MultiOutput | None = None) -> MultiOutput:
    """The outputs of ``[outputs]``; on a reload the kiosk page keeps running when its address is unchanged.

    Every other output of ``previous`` that holds something (the GPIO lines, a port, the speech
    process) is closed before the new ones are made: a new relay output asks for the same lines.
    """
    from agent.kiosk.output import KioskOutput
    from agent.kiosk.speech import SpeechOutput

    outs: list[Output] = []
    o = cfg.outputs
    old = previous.outputs if previous is not None else []
    kept: list[Output] = []
    for out in old:
        if isinstance(out, KioskOutput) and "kiosk" in o.kinds and out.address == (o.kiosk_bind, o.kiosk_port):
            out.model.hold, out.backlog_warn = o.kiosk_hold, o.backlog_warn
            kept.append(out)
        else:
            _close(out)
    for kind in o.kinds:
        if kind == "kiosk":
            outs.append(kept[0] if kept else KioskOutput(o.kiosk_bind, o.kiosk_port, hold=o.kiosk_hold,
                                                         backlog_warn=o.backlog_warn))  # fmt: skip
        elif kind == "log":
            outs.append(LogOutput())
        elif kind == "recorder":
            outs.append(RecorderOutput(o.recorder_path, cfg.terminal.terminal_id))
        elif kind == "screen":
            outs.append(ScreenOutput())
        elif kind == "gpio":
            outs.append(GpioOutput(o.gpio_chip, o.gpio_relay_line, o.gpio_green_line, o.gpio_red_line, o.relay_seconds))
    if o.speech != "off":
        outs.append(SpeechOutput(o.speech, voice=o.speech_voice, recorded_dir=Path(o.recorded_dir) if o.recorded_dir
                                 else None))  # fmt: skip
    return MultiOutput(outs)


def connect_kiosk(outputs: MultiOutput, status: Callable[[], dict[str, Any]]) -> None:
    """Give the kiosk page the gate's status document, for its fault strip."""
    from agent.kiosk.output import KioskOutput

    for out in outputs.outputs:
        if isinstance(out, KioskOutput):
            out.status_source = status


def close_outputs(outputs: MultiOutput) -> None:
    """At shutdown: every output that holds something lets it go (the relay drops: the gate closes)."""
    for out in outputs.outputs:
        _close(out)


def _close(out: Output) -> None:
    close = getattr(out, "close", None)
    if callable(close):
        close()


def build_eligibility_cache(cfg: Config) -> EligibilityCache:
    """The cache in ``state_dir/eligibility.db``, sealed under the queue's key for now; imports an old JSON cache."""
    from agent.app.eligibility import open_eligibility_cache

    (cfg.state_dir / "queue").mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file, create = queue_key_file(cfg.state_dir, cfg.terminal.queue_key)
    key = load_key(key_file, create=create)
    return open_eligibility_cache(cfg.state_dir, key, dt.timedelta(hours=cfg.eligibility.max_age_hours))


def build_hub_verifier(cfg: Config, up: UplinkConfig) -> HubVerifier | None:
    """The verifier of hub messages from the key pinned at enrolment; None (all refused) when none is pinned."""
    pin = cfg.hub_key_path
    if not pin.exists():
        log.error("no hub key pinned at %s: every hub message (acks, commands, replies) is refused; "
                  "run gate-agent enroll", pin)  # fmt: skip
        return None
    return HubVerifier(load_public_key(pin), cfg.terminal.facility_id, cfg.terminal.terminal_id,
                       HighWaterMark(cfg.state_dir / "hub-counter.json"), skew=up.clock_skew)  # fmt: skip


def build_runtime(cfg: Config) -> Runtime:
    """Every part of the terminal from the config (devices, queue, uplink, outputs)."""
    from agent.app.eligibility import EligibilityChain
    from agent.app.vneid import HubTokenVerifier
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
    if cfg.uplink.broker_urls:
        up = UplinkConfig.from_settings(cfg.uplink, cfg.terminal.facility_id, cfg.terminal.terminal_id)
        uplink = Uplink(up, queue, verifier=build_hub_verifier(cfg, up), batch_sealer=factory.seal_batch)
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
    policy, policy_table, policy_source = policy_in_force(cfg)
    t = cfg.timeouts
    attendant = AttendantSocket(state / "attendant.sock")  # a source, and an output: it answers waiting requests
    outputs = build_outputs(cfg)
    flow = CheckinFlow(
        reader=reader,
        eligibility=eligibility,
        sink=QueueSink(queue, factory, uplink),
        output=MultiOutput([*outputs.outputs, attendant]),
        policy=policy,
        facility_code=cfg.terminal.facility_id,
        finger=finger,
        # VNeID tokens go to the hub for verification with the same short wait as an eligibility query
        vneid=HubTokenVerifier(uplink, cfg.eligibility.online_timeout),
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
        out["policy"] = dict(commands.policy_state)
        if finger is not None:
            out["finger"] = finger.state()  # the hub sees a sensor that failed mid-run, as the kiosk does
        if uplink is not None:
            out["uplink"] = {"connected": uplink.connected, "published": uplink.stats.published,
                             "acked": uplink.stats.acked, "broker": uplink.stats.broker,
                             "hub_messages_rejected": uplink.stats.rejected,
                             "hub_key_pinned": uplink.verifier is not None}  # fmt: skip
        return out

    commands = HubCommands(cfg, cache, reader, flow)
    commands.policy_state = policy_state(policy_table, policy_source)

    def gate_status() -> dict[str, Any]:
        devices = {source.name: source.state() for source in sources}
        if finger is not None:
            devices["fingerprint module"] = finger.state()  # a sensor that failed mid-run shows as a fault
        return {"devices": devices, **extra_status()}

    connect_kiosk(outputs, gate_status)
    board = None
    if cfg.desk.enabled:
        from agent.desk.board import DeskBoard
        from agent.desk.events import DeskEvents
        from agent.desk.server import DeskServer, DeskSource
        from agent.desk.users import Users

        d = cfg.desk
        board = DeskBoard()
        desk = DeskServer(d.bind, d.port, Users(d.users_file), board, DeskEvents(queue, factory, uplink),
                          session_minutes=d.session_minutes, entry_wait=d.entry_wait,
                          tls=(Path(d.tls_cert), Path(d.tls_key)) if d.tls_cert else None)  # fmt: skip
        sources.append(DeskSource(desk))
        flow.output = MultiOutput([*outputs.outputs, attendant, board])

    def reconfigure(fresh: Config) -> None:
        nonlocal outputs
        commands.cfg = fresh  # the next hub push lays itself over the reloaded [policy], not the one of the start
        fresh_policy, table, source = policy_in_force(fresh)  # a pushed policy stays in force
        flow.policy = fresh_policy
        commands.policy_state = policy_state(table, source)
        ft = fresh.timeouts
        flow.timeouts = FlowTimeouts(keys=ft.keys, card=ft.card, read=ft.read, finger=ft.finger,
                                     card_removal=ft.card_removal)  # fmt: skip
        reader.read_timeout = ft.read
        outputs = build_outputs(fresh, outputs)  # the kiosk page keeps running when its address is unchanged
        connect_kiosk(outputs, gate_status)
        flow.output = MultiOutput([*outputs.outputs, attendant, *([] if board is None else [board])])
        reader.reload_trust()
        reader.reload_credentials()

    closers: list[Callable[[], None]] = [queue.close, lambda: close_outputs(outputs)]
    if finger is not None:
        closers.append(finger.close)
    if uplink is not None:
        uplink.on_command = commands
        uplink.start()
        closers.append(lambda: uplink.stop(5.0))
    return Runtime(flow, sources, uplink, extra_status, closers, reconfigure)
