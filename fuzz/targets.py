"""The fuzz targets: every parser that takes bytes from outside the terminal, with seeds from the simulator.

Each target is a function of the raw input that calls the parser and lets only the parser's typed error
(a :class:`~agent.errors.GateAgentError` subclass, listed per target) pass; anything else escapes and is a
crash.  Seeds are made at run time from the simulator (a card's files, an EAC PKI's certificates, a sealed
check-in event, the example config), so the corpus always matches today's formats.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import GateAgentError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], Any]
    seeds: Callable[[], list[bytes]]
    allowed: tuple[type[BaseException], ...] = (GateAgentError,)
    about: str = ""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# --- seeds -------------------------------------------------------------------------------------------------


@functools.cache
def _cards() -> tuple[Any, ...]:
    from sim.card import build_card

    return (
        build_card("cccd", seed=1, dg2_size=600),
        build_card("passport", seed=2, dg2_size=600, aa_algorithm="rsa"),
        build_card("cccd", seed=3, dg2_size=600, ca_kind="DH"),
    )


def _files(*names: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        return [card.files.files[n] for card in _cards() for n in names if n in card.files.files]

    return seeds


def _any_files() -> list[bytes]:
    return [data for card in _cards() for name, data in card.files.files.items() if len(data) < 4096]


def _mrz_seeds() -> list[bytes]:
    from sim.population import make_person

    people = [make_person(seed) for seed in range(3)]
    return [("\n".join(p.td1())).encode() for p in people] + [("\n".join(p.td3())).encode() for p in people]


def _qr_seeds() -> list[bytes]:
    from sim.population import make_person

    return [make_person(seed).qr().encode() for seed in range(3)] + [make_person(9).id_number.encode()]


def _cvc_seeds() -> list[bytes]:
    from sim.card import eac

    return list(eac.eac_pki(0).certificates.values())


def _packet_seeds() -> list[bytes]:
    from agent.bio.protocol import PID_ACK, PID_DATA, Packet, command_packet

    return [command_packet("verify_pwd", 0).to_bytes(), command_packet("gen_img").to_bytes(),
            Packet(PID_ACK, b"\x00", 0xFFFFFFFF).to_bytes(),
            Packet(PID_DATA, bytes(range(64)), 0xFFFFFFFF).to_bytes()]  # fmt: skip


def _event_seeds() -> list[bytes]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from agent.app.policy import Decision, Finding, Outcome
    from agent.app.ports import CheckinRecord
    from agent.model import Assurance, Eligibility, EligibilitySource, FingerFacts, FingerStatus, Identity
    from agent.uplink.events import EventFactory, checkin_body, error_body

    factory = EventFactory("01001", "gate-1", ed25519.Ed25519PrivateKey.generate())
    record = CheckinRecord(Identity("001090012345"), Assurance.MANUAL.value, None,
                           FingerFacts(FingerStatus.NOT_CHECKED), Eligibility(None, EligibilitySource.NONE, False),
                           Decision(Outcome.ADMITTED_PROVISIONAL, "MANUAL_ENTRY", (Finding.MANUAL_ENTRY,)))  # fmt: skip
    checkin = factory.envelope("checkin", 1, checkin_body(record))
    error = factory.envelope("error", 2, error_body("read", "RuntimeError"))
    sealed = [factory.seal(checkin), factory.seal(error)]
    return [*sealed, factory.seal_batch(sealed)]


def _command_seeds() -> list[bytes]:
    import cbor2

    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).isoformat()
    record = {"id_number": "001090012345", "card_number": "DN4010112345678", "valid_from": "2026-01-01",
              "valid_to": "2026-12-31", "facility_code": "01001", "benefit_level": 4, "category": "pupils"}  # fmt: skip
    return [
        cbor2.dumps({"id": "c1", "type": "eligibility_snapshot", "as_of": now, "records": [record]}),
        cbor2.dumps({"id": "c2", "type": "eligibility_delta", "as_of": now, "upserts": [record], "deletes": []}),
        cbor2.dumps({"id": "c3", "type": "policy", "policy": {"finger_no_match": "refuse"}}),
    ]


def _config_seeds() -> list[bytes]:
    return [(ROOT / "docs" / "agent.example.toml").read_bytes(),
            b'[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\n[timeouts]\nread = 20\n']  # fmt: skip


# --- targets -----------------------------------------------------------------------------------------------


def _tlv(data: bytes) -> None:
    from agent.card import tlv

    for item in tlv.parse_all(data, "fuzz"):
        if item.constructed:
            item.children("fuzz")


def _mrz(data: bytes) -> None:
    from agent.card.mrz import parse_mrz

    parse_mrz(_text(data))


def _lds(name: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from agent.card import lds
        from agent.card.dg3 import parse_dg3

        parser = {"com": lds.parse_com, "dg1": lds.parse_dg1, "dg2": lds.parse_dg2, "dg3": parse_dg3,
                  "dg13": lds.parse_dg13, "dg15": lds.parse_dg15}[name]  # fmt: skip
        parser(data)

    return run


def _dg15_key(data: bytes) -> None:
    from agent.card.aa import parse_dg15
    from agent.card.trust import load_public_key

    load_public_key(parse_dg15(data))


def _security_infos(where: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from agent.card import ca
        from agent.card.secinfo import parse_security_infos

        infos = parse_security_infos(data, where)
        infos.preferred_pace()
        ca.choose(infos)

    return run


def _sod(data: bytes) -> None:
    from agent.card.pa import passive_authentication
    from agent.card.sod import parse_sod

    sod = parse_sod(data)
    sod.signer_certificates  # noqa: B018 - lazily decoded: the access is the test
    sod.signed_attributes  # noqa: B018
    sod.signature_algorithm  # noqa: B018
    result = passive_authentication(data, {}, None)
    assert result.valid is False  # no trust anchors: never valid


def _cvc(data: bytes) -> None:
    from agent.card.cvc import parse_cvc

    parse_cvc(data)


def _packet(data: bytes) -> None:
    from agent.bio.protocol import Packet, parse_packet

    buffer = data
    for _ in range(64):
        packet, used = parse_packet(buffer)
        if packet is not None:
            Packet.from_bytes(packet.to_bytes())
        if not used:
            break
        buffer = buffer[used:]


def _scan(kind: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from agent.scan.parse import parse_scan

        parse_scan(_text(data), kind)

    return run


def _event(data: bytes) -> None:
    from agent.uplink.events import decode_event, open_message, open_sealed

    try:
        open_message(data, None)  # an event or a batch, as the hub reads its events topic
    except GateAgentError:
        pass
    try:
        open_sealed(data, None)
    except GateAgentError:
        decode_event(data)


@functools.cache
def _command_handler() -> Any:
    from agent.app.chip import PcscChipReader
    from agent.app.eligibility import EligibilityCache
    from agent.app.hub_commands import HubCommands
    from agent.config import load_config
    state = Path(tempfile.mkdtemp(prefix="fuzz-hub-"))
    atexit.register(shutil.rmtree, state, True)
    config = state / "agent.toml"
    config.write_text(f'[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\nstate_dir = "{state}"\n'
                      f'[reader]\ntrust_dir = "{state / "trust"}"\n')  # fmt: skip
    cfg = load_config(config)
    reader = PcscChipReader(lambda: None, ["dg1"], None)  # type: ignore[arg-type, return-value]

    class Flow:
        policy: object = None

    return HubCommands(cfg, EligibilityCache(dt.timedelta(hours=24)), reader, Flow())  # type: ignore[arg-type]


def _hub_command(data: bytes) -> None:
    from collections.abc import Mapping

    from agent.codec.cbor import decode_cbor

    body = decode_cbor(data, 8 * 1024 * 1024)
    if isinstance(body, Mapping):
        ok, reason = _command_handler()(body)
        assert isinstance(ok, bool) and isinstance(reason, str)


_CONFIG_FILE = Path(tempfile.gettempdir()) / f"fuzz-config-{os.getpid()}.toml"
atexit.register(lambda: _CONFIG_FILE.unlink(missing_ok=True))


def _config(data: bytes) -> None:
    from agent.config import load_config

    _CONFIG_FILE.write_bytes(data)
    load_config(_CONFIG_FILE)


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("tlv", _tlv, _any_files, about="BER-TLV (agent.card.tlv)"),
    Target("mrz", _mrz, _mrz_seeds, about="TD1/TD3 machine readable zones"),
    Target("com", _lds("com"), _files("com"), about="EF.COM"),
    Target("dg1", _lds("dg1"), _files("dg1"), about="DG1 (MRZ in TLV)"),
    Target("dg2", _lds("dg2"), _files("dg2"), about="DG2 face biometric template"),
    Target("dg3", _lds("dg3"), _files("dg3"), about="DG3 fingerprint records (ISO/IEC 19794-4)"),
    Target("dg13", _lds("dg13"), _files("dg13"), about="DG13 Vietnamese personal data"),
    Target("dg14", _security_infos("DG14"), _files("dg14"), about="DG14 SecurityInfos + CA choice"),
    Target("dg15", _dg15_key, _files("dg15"), about="DG15 public key"),
    Target("cardaccess", _security_infos("EF.CardAccess"), _files("cardaccess"), about="EF.CardAccess"),
    Target("sod", _sod, _files("sod"), about="EF.SOD (CMS SignedData) + Passive Authentication"),
    Target("cvc", _cvc, _cvc_seeds, about="CV certificates (BSI TR-03110)"),
    Target("finger_packet", _packet, _packet_seeds, about="fingerprint module packet codec"),
    Target("scan_qr", _scan("qr"), _qr_seeds, about="QR scanner text (CCCD front QR, ID number)"),
    Target("scan_mrz", _scan("mrz"), _mrz_seeds, about="MRZ scanner text"),
    Target("event", _event, _event_seeds, about="sealed check-in events and batches at the hub (COSE + CBOR)"),
    Target("hub_command", _hub_command, _command_seeds, about="hub command payloads (CBOR) into the handler"),
    Target("config", _config, _config_seeds, about="the config TOML"),
)}  # fmt: skip


def one_input(target: Target, data: bytes) -> None:
    """Run one input: the target's typed errors are fine, anything else propagates (a crash)."""
    try:
        target.run(data)
    except target.allowed:
        pass
