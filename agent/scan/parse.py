"""A complete scan -> access keys.

An MRZ reader sends the 2 or 3 MRZ lines of a document; a QR scanner sends the CCCD
front QR code (``ID|old ID|name|...``) or a plain 12-digit ID number (typed on the
scanner's keypad or scanned from a barcode).  A plain ID number gives the CAN (its
last 6 digits), which opens a CCCD with PACE; a chip without PACE needs the MRZ keys,
hence the date of birth, and the read then fails as "wrong keys" for the attendant
to enter it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.card.cccd import PersonalId, parse_card_qr
from agent.card.keys import AccessKeys
from agent.card.mrz import parse_mrz


@dataclass(frozen=True)
class ScannedKeys:
    """Access keys from one scan (the flow receives them as :class:`agent.app.ports.KeysEntered`)."""

    keys: AccessKeys = field(repr=False)
    source: str  # "mrz" | "qr"
    id_number: str | None = field(default=None, repr=False)  # known before the read when it came from a QR


def parse_scan(text: str, kind: str) -> ScannedKeys | None:
    """A complete scan -> keys; None when more lines are needed; InputError when it is wrong."""
    text = text.strip()
    if kind == "qr" and re.fullmatch(r"[0-9]{12}", text):
        pid = PersonalId(text)  # province code checked: a wrong scan is an InputError
        return ScannedKeys(AccessKeys(can=pid.can), "qr", pid.number)
    if kind == "qr" or "|" in text:
        qr = parse_card_qr(text)
        return ScannedKeys(qr.access_keys(), "qr", qr.id_number)
    mrz = parse_mrz(text)
    return ScannedKeys(AccessKeys(mrz_keys=(mrz.key,)), "mrz", None)
