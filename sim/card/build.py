"""Build a simulated card: the person, the issuer's files and signature, the chip and its keys, a variant.

:func:`build_card` is the one way in; :func:`shared_pki` keeps one issuer PKI per
seed in a process so every card of a clinic chains to the same CSCA.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sim.card import eac
from sim.card.card import SimulatedCard
from sim.card.chip import Chip, mrz_information
from sim.card.dh import dh_key
from sim.card.eac_chip import ChipKeys
from sim.card.faults import Faults, parse_faults
from sim.card.files import build_files, dg14_content
from sim.card.pki import IssuerPki, issuer_pki
from sim.card.variants import Issue, Tamper
from sim.card.variants import variant as find_variant
from sim.population import Person, make_person

PROFILES = ("cccd", "passport")
CA_CURVE = ec.SECP256R1()
_PKI_CACHE: dict[tuple[int, str], IssuerPki] = {}
_PKI_LOCK = threading.Lock()


def shared_pki(seed: int = 0, ds_algorithm: str = "ecdsa") -> IssuerPki:
    """One issuer PKI per (seed, algorithm) per process: every card of a clinic chains to the same CSCA."""
    with _PKI_LOCK:
        key = (seed, ds_algorithm)
        if key not in _PKI_CACHE:
            _PKI_CACHE[key] = issuer_pki(seed, ds_algorithm)
        return _PKI_CACHE[key]


def build_card(
    profile: str = "cccd",
    seed: int = 0,
    *,
    variant: str | None = None,
    faults: str | Faults | None = None,
    pki_seed: int = 0,
    pki: IssuerPki | None = None,
    today: dt.date | None = None,
    person: Person | None = None,
    pace: bool = True,
    pace_curve: str = "brainpoolP256r1",
    pace_cipher: str = "AES-128",
    extended_length: bool = True,
    dg2_size: int = 20_000,
    ds_algorithm: str = "ecdsa",
    aa_algorithm: str = "ecdsa",
    aa_hash: str = "sha256",
    eac_seed: int = 0,
    eac_trust: tuple[str, ec.EllipticCurvePublicKey] | None = None,
    ca_cipher: str = "AES-128",
    ca_kind: str = "ECDH",
    link_kbps: float | None = None,
) -> SimulatedCard:
    """A card of ``profile`` for the person of ``seed``.

    ``pki`` is the issuer PKI that signs it (default: :func:`shared_pki` of
    ``pki_seed``); ``aa_algorithm`` "ecdsa" or "rsa" (ISO/IEC 9796-2 with
    ``aa_hash``); the chip trusts the CVCA ``eac_trust`` (default: that of the EAC
    PKI of ``eac_seed``, :func:`sim.card.eac.eac_pki`).  ``variant`` is a name of
    :data:`sim.card.variants.REGISTRY`.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    if ca_kind not in ("ECDH", "DH"):
        raise ValueError(f"unknown Chip Authentication kind {ca_kind!r} (ECDH or DH)")
    spec = find_variant(variant) if variant is not None else None
    issue = Issue()
    if spec is not None and spec.issue is not None:
        spec.issue(issue)
    aa_algorithm = issue.aa_algorithm or aa_algorithm
    person = person or make_person(seed, today)
    fault_set = faults if isinstance(faults, Faults) else parse_faults(faults)
    pki = pki or shared_pki(pki_seed, ds_algorithm)
    keys = person.access_keys(profile)
    mrz = person.td1() if profile == "cccd" else person.td3()
    mrz_info = mrz_information(str(keys["document_number"]), str(keys["birth"]), str(keys["expiry"]))
    can = person.can if profile == "cccd" else None

    def new_ca_key() -> Any:
        return dh_key() if ca_kind == "DH" else ec.generate_private_key(CA_CURVE)

    def new_aa_key() -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        return rsa.generate_private_key(65537, 2048) if aa_algorithm == "rsa" else ec.generate_private_key(CA_CURVE)

    ca_key, aa_key, other_ca = new_ca_key(), new_aa_key(), new_ca_key()  # other_ca: a stale key, or the cloner's
    files = build_files(
        person, mrz, profile=profile, signer=getattr(pki, issue.signer), corrupt_signature=issue.corrupt_signature,
        pace_cipher=pace_cipher, pace_curve=pace_curve, dg2_size=dg2_size,
        ca_public=(other_ca if issue.announce_other_ca else ca_key).public_key(), aa_public=aa_key.public_key(),
        aa_oid=issue.aa_oid, dg3=eac.dg3(person.id_number), ca_cipher=ca_cipher,
    )  # fmt: skip
    announced_aa = None if aa_algorithm == "rsa" else issue.aa_oid
    tamper = Tamper(
        profile, person.id_number, files.files, ca_key, aa_key, other_ca, new_aa_key,
        lambda public: dg14_content(pace_cipher, pace_curve, public, announced_aa, ca_cipher), pace=pace,
    )  # fmt: skip
    if spec is not None and spec.tamper is not None:
        spec.tamper(tamper)
    trust = eac_trust or eac.eac_pki(eac_seed, today=today).trust_point
    chip_keys = ChipKeys(tamper.aa_key, aa_hash, tamper.ca_key, trust, min(person.issued, today or dt.date.today()),
                         aa_trailer=tamper.aa_trailer)  # fmt: skip
    # the chip serves the card's files (the same dict, so a test may still edit them), less those it hides
    served = {n: d for n, d in files.files.items() if n not in tamper.hidden} if tamper.hidden else files.files
    chip = Chip(
        served, mrz_info, can, pace=tamper.pace, pace_refused=fault_set.pace_refused,
        extended_length=extended_length, keys=chip_keys, quirks=tamper.quirks,
    )  # fmt: skip
    return SimulatedCard(profile, person, files, chip, pki, fault_set, variant, link_kbps=link_kbps)
