"""A simulated chip ID card (CCCD) or passport: people, files, issuer PKI, card OS, faults.

``build_card(profile, seed)`` gives a :class:`SimulatedCard`; :class:`InProcessReader`
serves it to the agent's code as a card transport without pcscd, and
:mod:`sim.card.vpcd` plugs it into a real pcscd.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.errors import CardRemovedError, NoCardError
from sim.card import eac
from sim.card.chip import Chip
from sim.card.dh import dh_key
from sim.card.eac_chip import ChipKeys
from sim.card.faults import Faults, parse_faults
from sim.card.files import CardFiles, build_files
from sim.card.pki import IssuerPki, issuer_pki
from sim.population import Person, make_person

#: ISO 14443-4 card through a PC/SC reader: 3B 8n 80 01 + historical bytes + TCK (PC/SC part 3, 3.1.3.2.3)
_HISTORICAL = bytes.fromhex("8031B8738401E0")


def _atr() -> bytes:
    body = bytes([0x80 | len(_HISTORICAL), 0x80, 0x01]) + _HISTORICAL
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


PROFILES = ("cccd", "passport")
CA_CURVE = ec.SECP256R1()
VARIANTS = (
    "altered-dg", "bad-signature", "unknown-csca", "expired-signer", "revoked-signer",  # Passive Authentication
    "clone", "stale-dg14", "wrong-dg14", "aa-unsupported",  # chip authenticity
)  # fmt: skip
#: what each variant should make a reader conclude (tests check every one)
VARIANT_EXPECT = {
    "altered-dg": "passive_auth",
    "bad-signature": "passive_auth",
    "unknown-csca": "passive_auth",
    "expired-signer": "passive_auth",
    "revoked-signer": "passive_auth",
    "clone": "chip_auth active_auth",  # the files of a genuine card on another chip: AA and CA fail
    "stale-dg14": "chip_auth",  # DG14 (signed) announces an old key the chip no longer has
    "wrong-dg14": "passive_auth chip_auth",  # DG14 swapped for the cloner's key: CA "passes", PA fails on DG14
    "aa-unsupported": "",  # DG14 announces an AA algorithm readers do not run: not judged, not a clone
}
_PKI_CACHE: dict[tuple[int, str], IssuerPki] = {}
_PKI_LOCK = threading.Lock()


def shared_pki(seed: int = 0, ds_algorithm: str = "ecdsa") -> IssuerPki:
    """One issuer PKI per (seed, algorithm) per process: every card of a clinic chains to the same CSCA."""
    with _PKI_LOCK:
        key = (seed, ds_algorithm)
        if key not in _PKI_CACHE:
            _PKI_CACHE[key] = issuer_pki(seed, ds_algorithm)
        return _PKI_CACHE[key]


@dataclass
class SimulatedCard:
    profile: str
    person: Person
    files: CardFiles
    chip: Chip
    pki: IssuerPki
    faults: Faults
    variant: str | None = None
    atr: bytes = field(default_factory=_atr)
    present: bool = True
    apdu_count: int = 0
    #: model the contactless link: sleep per APDU for its bytes at this rate (ISO 14443 framing ~20 %); None = off
    link_kbps: float | None = None
    link_seconds: float = 0.0  # modelled air time so far
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def keys(self) -> dict[str, Any]:
        return self.person.access_keys(self.profile)

    def power_on(self) -> None:
        with self._lock:
            self.chip.reset()
            self.apdu_count = 0

    def power_off(self) -> None:
        with self._lock:
            self.chip.reset()

    def process(self, apdu: bytes) -> bytes | None:
        """The response APDU, or None when a fault pulls the card (it then stays absent)."""
        with self._lock:
            if not self.present:
                return None
            self.apdu_count += 1
            action = self.faults.action(self.apdu_count)
            if action == "remove":
                self.present = False
                self.chip.reset()
                return None
            if action == "rf-error":
                return b"\x6f"  # a truncated answer: what a reader reports when the RF link broke mid-frame
            answer = self.chip.process(apdu)
        if self.link_kbps:
            seconds = (len(apdu) + len(answer)) * 8 * 1.2 / (self.link_kbps * 1000)
            self.link_seconds += seconds
            time.sleep(seconds)
        return answer

    def reinsert(self) -> None:
        with self._lock:
            self.present = True
            self.chip.reset()
            self.apdu_count = 0

    def write_trust(self, directory: str) -> None:
        self.pki.write_trust(directory)


def build_card(
    profile: str = "cccd",
    seed: int = 0,
    *,
    variant: str | None = None,
    faults: str | Faults | None = None,
    pki_seed: int = 0,
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
    ca_cipher: str = "AES-128",
    ca_kind: str = "ECDH",
    link_kbps: float | None = None,
) -> SimulatedCard:
    """A card of ``profile`` for the person of ``seed``.

    ``aa_algorithm`` "ecdsa" or "rsa" (ISO/IEC 9796-2 with ``aa_hash``); ``eac_seed``
    names the EAC PKI whose CVCA the chip trusts (:func:`sim.card.eac.eac_pki`).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    person = person or make_person(seed, today)
    fault_set = faults if isinstance(faults, Faults) else parse_faults(faults)
    pki = shared_pki(pki_seed, ds_algorithm)
    if profile == "cccd":
        mrz = person.td1()
        keys = person.access_keys("cccd")
        mrz_info = _mrz_information(str(keys["document_number"]), str(keys["birth"]), str(keys["expiry"]))
        can: str | None = person.can
    else:
        mrz = person.td3()
        keys = person.access_keys("passport")
        mrz_info = _mrz_information(str(keys["document_number"]), str(keys["birth"]), str(keys["expiry"]))
        can = None
    if ca_kind not in ("ECDH", "DH"):
        raise ValueError(f"unknown Chip Authentication kind {ca_kind!r} (ECDH or DH)")
    new_ca_key = dh_key if ca_kind == "DH" else (lambda: ec.generate_private_key(CA_CURVE))
    ca_key = new_ca_key()
    aa_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(65537, 2048) if aa_algorithm == "rsa" else ec.generate_private_key(CA_CURVE)
    )
    other_ca = new_ca_key()  # a stale key, or the cloner's
    files = build_files(
        person, mrz, pki, profile=profile, variant=variant, pace_cipher=pace_cipher, pace_curve=pace_curve,
        dg2_size=dg2_size, ca_public=ca_key.public_key(), aa_public=aa_key.public_key(),
        dg3=eac.dg3(person.id_number), stale_ca_public=other_ca.public_key(), ca_cipher=ca_cipher,
    )  # fmt: skip
    chip_ca, chip_aa = ca_key, aa_key
    if variant == "clone":
        chip_ca = other_ca
        chip_aa = rsa.generate_private_key(65537, 2048) if aa_algorithm == "rsa" else ec.generate_private_key(CA_CURVE)
    elif variant == "wrong-dg14":
        chip_ca = other_ca
    trust = eac.eac_pki(eac_seed, today=today).trust_point
    keys_on_chip = ChipKeys(chip_aa, aa_hash, chip_ca, trust, min(person.issued, today or dt.date.today()))
    chip = Chip(
        files.files, mrz_info, can, pace=pace, pace_refused=fault_set.pace_refused, extended_length=extended_length,
        eac=keys_on_chip,
    )
    return SimulatedCard(profile, person, files, chip, pki, fault_set, variant, link_kbps=link_kbps)


def _cd(data: str) -> str:
    values = {**{str(i): i for i in range(10)}, **{chr(65 + i): 10 + i for i in range(26)}, "<": 0}
    return str(sum(values[c] * (7, 3, 1)[i % 3] for i, c in enumerate(data)) % 10)


def _mrz_information(number: str, birth: str, expiry: str) -> str:
    number = number.ljust(9, "<")
    return number + _cd(number) + birth + _cd(birth) + expiry + _cd(expiry)


class InProcessReader:
    """The agent's CardTransport, served straight by a simulated card (no pcscd)."""

    def __init__(self, card: SimulatedCard, name: str = "Simulated reader") -> None:
        self.card = card
        self._name = name
        card.power_on()

    @property
    def name(self) -> str:
        return self._name

    def transmit(self, apdu: bytes) -> bytes:
        if not self.card.present:
            raise NoCardError(f"{self._name}: no card")
        answer = self.card.process(apdu)
        if answer is None:
            raise CardRemovedError(f"{self._name}: card removed")
        return answer

    def close(self) -> None:
        self.card.power_off()
