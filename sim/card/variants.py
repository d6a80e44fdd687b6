"""Every card variant, in one registry: what it is, what a reader must conclude, and how it is built.

``python -m sim card --variant``, the tests and the clinic all take their list
from :data:`REGISTRY`.  A variant is built in two steps around the signing of
EF.SOD: :attr:`Variant.issue` changes how the state issues the card (which
signer, what DG14 announces), :attr:`Variant.tamper` changes the card afterwards
(files altered or swapped, a chip with other keys or hostile manners).

Conclusions (what a fail-closed reader decides about the card):

* ``accepted``: a genuine card; a correct reader reads it and admits the holder.
* ``passive_auth_failed``: the signed data does not verify against the trust anchors.
* ``clone_suspected``: the files may be genuine, but the chip cannot prove it is the
  chip they were issued for (Active / Chip Authentication fail or are withheld).
* ``read_error``: the card misbehaves; the read must stop with a clear error and no
  identity may be taken from it.

``checks`` names, for the variants a reader reads to the end, which of
``passive_auth``, ``active_auth`` and ``chip_auth`` it reports failed (empty: none);
``None`` where the read must not get that far or the outcome is a single conclusion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.card.chip import Quirks
from sim.card.der import der_len, read_tlvs
from sim.card.files import ECDSA_RIPEMD160, ECDSA_SHA256

ACCEPTED, PASSIVE_AUTH_FAILED, CLONE_SUSPECTED, READ_ERROR = (
    "accepted", "passive_auth_failed", "clone_suspected", "read_error"
)  # fmt: skip
CONCLUSIONS = (ACCEPTED, PASSIVE_AUTH_FAILED, CLONE_SUSPECTED, READ_ERROR)
#: an ISO/IEC 9796-2 trailer naming hash identifier 0x99, which ISO/IEC 10118-3 does not assign
UNKNOWN_TRAILER = b"\x99\xcc"
#: what the "hostile-oversize" data groups announce: DG1 64 KB, DG2 16 MB
OVERSIZE = {"dg1": 0x10000, "dg2": 0x1000000}


@dataclass
class Issue:
    """How the state issues the card: the choices made before EF.SOD is signed."""

    signer: str = "signer"  # the IssuerPki signer: signer, expired_signer, revoked_signer, foreign
    corrupt_signature: bool = False
    announce_other_ca: bool = False  # DG14 announces a Chip Authentication key the chip does not hold
    aa_oid: str = ECDSA_SHA256  # the ECDSA AA algorithm DG14 names
    aa_algorithm: str | None = None  # force "rsa" or "ecdsa" Active Authentication


@dataclass
class Tamper:
    """The issued card, open to change: its files, what the chip serves, its keys and manners."""

    profile: str
    id_number: str
    files: dict[str, bytes]  # the card's files as a reader would see them (changed in place)
    ca_key: Any  # the chip's Chip Authentication key (None: the chip has none)
    aa_key: Any  # the chip's Active Authentication key (None: none)
    other_ca_key: Any  # a CA key the issuer never certified (stale, or the cloner's)
    new_aa_key: Callable[[], Any]  # a fresh AA key of the card's kind (the cloner's)
    dg14_for: Callable[[Any], bytes]  # DG14 as issued, but announcing another CA public key
    hidden: set[str] = field(default_factory=set)  # files the chip answers 6A82 for
    quirks: Quirks = field(default_factory=Quirks)
    aa_trailer: bytes | None = None
    pace: bool = True


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    conclusion: str
    checks: str | None = None
    issue: Callable[[Issue], None] | None = None
    tamper: Callable[[Tamper], None] | None = None


def _set(**values: Any) -> Callable[[Any], None]:
    def apply(target: Any) -> None:
        for key, value in values.items():
            setattr(target, key, value)

    return apply


def _altered(t: Tamper) -> None:
    """Data changed after the state signed it: the hash check of DG13 (CCCD) or DG1 (passport) fails."""
    if t.profile == "cccd":
        t.files["dg13"] = t.files["dg13"].replace(t.id_number[-3:].encode(), b"999", 1)
    else:
        t.files["dg1"] = t.files["dg1"].replace(b"<<", b"X<", 1)


def _clone(t: Tamper) -> None:
    t.ca_key, t.aa_key = t.other_ca_key, t.new_aa_key()


def _wrong_dg14(t: Tamper) -> None:
    t.files["dg14"] = t.dg14_for(t.other_ca_key.public_key())
    t.ca_key = t.other_ca_key


def _hide_dg14_dg15(t: Tamper) -> None:
    t.hidden |= {"dg14", "dg15"}
    t.ca_key = t.aa_key = None


def _announce(data: bytes, length: int) -> bytes:
    """The data group with its outer length replaced by ``length`` (and the real content after it)."""
    ((tag, value),) = read_tlvs(data)
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big") + der_len(length) + value


def _oversize(t: Tamper) -> None:
    for name, length in OVERSIZE.items():
        t.files[name] = _announce(t.files[name], length)
    t.quirks = Quirks(reads_past_end=True)


def _no_card_access(t: Tamper) -> None:
    t.hidden.add("cardaccess")
    t.pace = False


_ENTRIES = (
    # Passive Authentication
    Variant("altered-dg", "DG13 (CCCD) or DG1 (passport) changed after signing", PASSIVE_AUTH_FAILED,
            "passive_auth", tamper=_altered),
    Variant("bad-signature", "EF.SOD signature with one bit flipped", PASSIVE_AUTH_FAILED, "passive_auth",
            issue=_set(corrupt_signature=True)),
    Variant("unknown-csca", "document signer certified by a CSCA the terminal does not trust", PASSIVE_AUTH_FAILED,
            "passive_auth", issue=_set(signer="foreign")),
    Variant("expired-signer", "document signer certificate expired", PASSIVE_AUTH_FAILED, "passive_auth",
            issue=_set(signer="expired_signer")),
    Variant("revoked-signer", "document signer on the CSCA's CRL", PASSIVE_AUTH_FAILED, "passive_auth",
            issue=_set(signer="revoked_signer")),
    # chip authenticity
    Variant("clone", "a genuine card's files on another chip: its AA and CA keys are not the ones DG14/DG15 name",
            CLONE_SUSPECTED, "chip_auth active_auth", tamper=_clone),
    Variant("stale-dg14", "the signed DG14 announces an old CA key the chip no longer has", CLONE_SUSPECTED,
            "chip_auth", issue=_set(announce_other_ca=True)),
    Variant("wrong-dg14", "DG14 swapped for the cloner's CA key: CA 'passes', the DG14 hash fails",
            PASSIVE_AUTH_FAILED, "passive_auth chip_auth", tamper=_wrong_dg14),
    Variant("aa-unsupported", "DG14 names an AA algorithm readers do not run (ECDSA-RIPEMD160): AA not judged, "
            "CA proves the chip", ACCEPTED, "", issue=_set(aa_oid=ECDSA_RIPEMD160)),
    # adversarial cards
    Variant("clone-hiding-dg14-dg15", "a genuine card's signed files (EF.SOD lists DG14 and DG15) on a chip that "
            "answers 6A82 for DG14 and DG15 and has no chip keys", CLONE_SUSPECTED, tamper=_hide_dg14_dg15),
    Variant("no-sfi", "a genuine card whose OS refuses READ BINARY by short file identifier (6A86): files must be "
            "selected by identifier", ACCEPTED, tamper=_set(quirks=Quirks(no_sfi=True))),
    Variant("hostile-chaining", "every read under secure messaging answers 61xx, and GET RESPONSE 61xx again, "
            "forever", READ_ERROR, tamper=_set(quirks=Quirks(endless_chaining=True))),
    Variant("hostile-oversize", "DG1 announces 64 KB and DG2 16 MB, and the chip returns filler past every "
            "file's end", READ_ERROR, tamper=_oversize),
    Variant("aa-unknown-trailer", "RSA Active Authentication answering with an unknown ISO/IEC 9796-2 trailer "
            "(hash id 99) on a card whose EF.SOD covers DG15", CLONE_SUSPECTED,
            issue=_set(aa_algorithm="rsa"), tamper=_set(aa_trailer=UNKNOWN_TRAILER)),
    Variant("cardaccess-missing", "the signed DG14 announces PACE, but EF.CardAccess is absent and PACE refused "
            "(a downgrade to BAC)", CLONE_SUSPECTED, tamper=_no_card_access),
)  # fmt: skip

#: every card variant by name
REGISTRY: dict[str, Variant] = {v.name: v for v in _ENTRIES}
#: the authenticity corpus: variants a reader reads to the end, with the checks it must report failed
VARIANT_EXPECT: dict[str, str] = {v.name: v.checks for v in _ENTRIES if v.checks is not None}
VARIANTS: tuple[str, ...] = tuple(VARIANT_EXPECT)


def variant(name: str) -> Variant:
    """The variant called ``name``; ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r} (known: {', '.join(REGISTRY)})") from None


def describe() -> str:
    """One line per variant: name, conclusion, description (``--variant help``)."""
    width = max(map(len, REGISTRY))
    return "\n".join(f"{v.name:<{width}}  {v.conclusion:<19}  {v.description}" for v in _ENTRIES)
