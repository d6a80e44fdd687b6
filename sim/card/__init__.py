"""A simulated chip ID card (CCCD) or passport: people, files, issuer PKI, card OS, faults.

``build_card(profile, seed)`` (:mod:`sim.card.build`) gives a :class:`SimulatedCard`;
:class:`InProcessReader` serves it to the agent's code as a card transport without
pcscd, and :mod:`sim.card.vpcd` plugs it into a real pcscd.  Card variants (tampered,
cloned, hostile) are listed in :mod:`sim.card.variants`.

Layout, bottom up: :mod:`~sim.card.der` (TLV/DER), :mod:`~sim.card.apdu` (command
parsing, status words, response chaining), :mod:`~sim.card.cryptoutil` and
:mod:`~sim.card.sm` (the card's own crypto and secure messaging), :mod:`~sim.card.pace`
and :mod:`~sim.card.eac_chip` (objects the chip holds), :mod:`~sim.card.chip` (the card
OS), :mod:`~sim.card.files` and :mod:`~sim.card.pki` / :mod:`~sim.card.eac` (what the
issuer writes and signs), :mod:`~sim.card.variants`, :mod:`~sim.card.build`.
"""

from __future__ import annotations

from sim.card import eac
from sim.card.build import CA_CURVE, PROFILES, build_card, shared_pki
from sim.card.card import InProcessReader, SimulatedCard
from sim.card.variants import REGISTRY, VARIANT_EXPECT, VARIANTS

__all__ = [
    "CA_CURVE",
    "PROFILES",
    "REGISTRY",
    "VARIANTS",
    "VARIANT_EXPECT",
    "InProcessReader",
    "SimulatedCard",
    "build_card",
    "eac",
    "shared_pki",
]
