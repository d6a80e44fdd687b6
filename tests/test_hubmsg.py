"""Signed hub -> terminal messages: signature, binding to the terminal, freshness, durable replay protection."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.uplink import cose
from agent.uplink.hubmsg import (
    HighWaterMark,
    HubKeyError,
    HubMessageError,
    HubSigner,
    HubVerifier,
    decode_payload,
    fingerprint,
    key_id,
)

NOW = 1_800_000_000.0


def _pair(tmp_path: Path, now: float = NOW) -> tuple[HubSigner, HubVerifier, ed25519.Ed25519PrivateKey]:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = HubSigner(key, "01001", clock=lambda: now)
    verifier = HubVerifier(key.public_key(), "01001", "gate-1", HighWaterMark(tmp_path / "hub-counter.json"),
                           clock=lambda: now)  # fmt: skip
    return signer, verifier, key


def _reason(verifier: HubVerifier, data: bytes, kind: str = "cmd") -> str:
    with pytest.raises(HubMessageError) as info:
        verifier.open(data, kind)
    return info.value.reason


def test_a_signed_command_opens_once(tmp_path: Path) -> None:
    signer, verifier, _ = _pair(tmp_path)
    data = signer.seal("gate-1", "cmd", {"id": "c1", "type": "policy"})
    assert verifier.open(data, "cmd") == {"id": "c1", "type": "policy"}
    assert _reason(verifier, data) == "replayed or old counter"
    assert verifier.rejected == {"replayed or old counter": 1} and verifier.accepted == 1


def test_replay_is_refused_after_a_restart(tmp_path: Path) -> None:
    signer, verifier, key = _pair(tmp_path)
    old = signer.seal("gate-1", "cmd", {"id": "c1"})
    newer = signer.seal("gate-1", "cmd", {"id": "c2"})
    verifier.open(newer, "cmd")
    restarted = HubVerifier(key.public_key(), "01001", "gate-1", HighWaterMark(tmp_path / "hub-counter.json"),
                            clock=lambda: NOW)  # fmt: skip
    assert _reason(restarted, newer) == "replayed or old counter"
    assert _reason(restarted, old) == "replayed or old counter"  # an older counter, never seen, is still old
    assert restarted.open(signer.seal("gate-1", "cmd", {"id": "c3"}), "cmd") == {"id": "c3"}


def test_kinds_keep_their_own_marks(tmp_path: Path) -> None:
    signer, verifier, _ = _pair(tmp_path)
    ack = signer.seal("gate-1", "ack", {"ids": ["e1"]})
    cmd = signer.seal("gate-1", "cmd", {"id": "c"})
    assert verifier.open(cmd, "cmd") == {"id": "c"}
    assert verifier.open(ack, "ack") == {"ids": ["e1"]}  # sealed before the command, on another topic


def test_acks_from_two_hub_workers_open_in_any_order(tmp_path: Path) -> None:
    """Two workers of one hub sign acks with their own counters; an ack is idempotent (it names stored ids)."""
    signer, verifier, key = _pair(tmp_path)
    other_worker = HubSigner(key, "01001", clock=lambda: NOW)
    later = other_worker.seal("gate-1", "ack", {"ids": ["e2"]}, counter=2_000)
    earlier = signer.seal("gate-1", "ack", {"ids": ["e1"]}, counter=1_000)
    assert verifier.open(later, "ack") == {"ids": ["e2"]}
    assert verifier.open(earlier, "ack") == {"ids": ["e1"]}
    assert verifier.open(earlier, "ack") == {"ids": ["e1"]}  # a duplicate delivery by the broker
    # everything else about an ack is still checked
    assert _reason(verifier, signer.seal("gate-2", "ack", {"ids": []}), "ack") == "for another terminal"
    assert _reason(verifier, signer.seal("gate-1", "ack", {}, 60, issued=NOW - 61), "ack") == "expired"
    forged = HubSigner(ed25519.Ed25519PrivateKey.generate(), "01001", clock=lambda: NOW)
    assert _reason(verifier, forged.seal("gate-1", "ack", {"ids": ["e3"]}), "ack") == "bad signature"
    # replies too: two workers answer the terminal's queries with their own counters
    assert verifier.open(other_worker.seal("gate-1", "reply", {"corr": b"q2"}, counter=3_000), "reply")["corr"] == b"q2"
    assert verifier.open(signer.seal("gate-1", "reply", {"corr": b"q1"}, counter=1_500), "reply")["corr"] == b"q1"
    # commands keep their replay protection
    cmd = signer.seal("gate-1", "cmd", {"id": "c"})
    verifier.open(cmd, "cmd")
    assert _reason(verifier, cmd) == "replayed or old counter"


def test_messages_for_someone_else_are_refused(tmp_path: Path) -> None:
    signer, verifier, _ = _pair(tmp_path)
    assert _reason(verifier, signer.seal("gate-2", "cmd", {"id": "x"})) == "for another terminal"
    other_facility = HubSigner(signer.key, "09999", clock=lambda: NOW)
    assert _reason(verifier, other_facility.seal("gate-1", "cmd", {"id": "x"})) == "for another terminal"
    assert _reason(verifier, signer.seal("gate-1", "reply", {"record": None}), "cmd") == "wrong kind for this topic"


def test_freshness(tmp_path: Path) -> None:
    signer, verifier, _ = _pair(tmp_path)
    assert _reason(verifier, signer.seal("gate-1", "cmd", {}, 60, issued=NOW - 61)) == "expired"
    assert _reason(verifier, signer.seal("gate-1", "cmd", {}, 60, issued=NOW + 301)) == "issued in the future"
    assert _reason(verifier, signer.seal("gate-1", "cmd", {}, 10 * 86400)) == "lifetime too long"
    assert verifier.open(signer.seal("gate-1", "cmd", {"ok": 1}, 60, issued=NOW + 200), "cmd") == {"ok": 1}


def test_other_keys_and_tampering(tmp_path: Path) -> None:
    signer, verifier, _ = _pair(tmp_path)
    rogue = HubSigner(ed25519.Ed25519PrivateKey.generate(), "01001", clock=lambda: NOW)
    assert _reason(verifier, rogue.seal("gate-1", "cmd", {"id": "x"})) == "bad signature"
    good = cbor2.loads(signer.seal("gate-1", "cmd", {"id": "x"}))
    protected, unprotected, payload, signature = good.value
    doc = cbor2.loads(payload)
    doc["terminal"] = "gate-1"
    doc["body"] = {"id": "y"}
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(doc), signature]))
    assert _reason(verifier, forged) == "bad signature"
    assert _reason(verifier, cbor2.dumps({"id": "x", "type": "policy"})) == "not a signed hub message"
    assert _reason(verifier, b"\xff\x00") == "not a signed hub message"
    assert verifier.marks.get("cmd") == 0  # nothing rejected moved the mark


def test_es256_is_not_accepted_for_hub_messages(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    _, verifier, _ = _pair(tmp_path)
    data = cose.sign1(cbor2.dumps({"v": 1}), ec.generate_private_key(ec.SECP256R1()), b"k")
    assert _reason(verifier, data) == "wrong signature algorithm"


def test_payload_must_be_plain(tmp_path: Path) -> None:
    _, verifier, key = _pair(tmp_path)
    # a payload that refers to itself (shared references, tags 28/29) is refused, signed or not
    self_ref = bytes.fromhex("d81ca161 61d81d00".replace(" ", ""))
    with pytest.raises(HubMessageError, match="self-referencing"):
        decode_payload(self_ref)
    with pytest.raises(HubMessageError):
        decode_payload(cbor2.dumps({"when": cbor2.CBORTag(1, 5)}) + b"\x00")
    signed = cose.sign1(self_ref, key, key_id(key.public_key()))
    assert _reason(verifier, signed) == "malformed"
    odd = cose.sign1(cbor2.dumps({"v": 1, "extra": 1}), key, b"k")
    assert _reason(verifier, odd) == "malformed"


def test_counter_file_problems_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "hub-counter.json"
    path.write_text("{not json")
    with pytest.raises(HubKeyError, match=r"hub-counter\.json"):
        HighWaterMark(path)
    path.write_text('{"cmd": "7"}')
    with pytest.raises(HubKeyError, match="integers"):
        HighWaterMark(path)


def test_fingerprint_is_stable_and_grouped() -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    text = fingerprint(key)
    assert len(text.split()) == 16 and all(len(g) == 4 for g in text.split())
    assert text == fingerprint(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key())
