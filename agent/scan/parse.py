"""A complete scan -> access keys.

An MRZ reader sends the 2 or 3 MRZ lines of a document; a QR scanner sends the CCCD
front QR code (``ID|old ID|name|...``) or a plain 12-digit ID number (typed on the
scanner's keypad or scanned from a barcode).  A plain ID number gives the CAN (its
last 6 digits), which opens a CCCD with PACE; a chip without PACE needs the MRZ keys,
hence the date of birth, and the read then fails as "wrong keys" for the attendant
to enter it.

A phone showing the VNeID app's QR (the identity or "Thẻ BHYT" screen, after the
patient's passcode) sends a payload whose format and signature scheme are not
public.  The gate therefore never parses it: a scan is taken for such a token by
what it is *not* (not an ID number, not a CCCD QR with its ``|`` fields, not MRZ
lines) and by a bounded length and a URL-safe charset, and handed on as an opaque
:class:`ScannedToken` for the hub to verify with the national identity service.
The token is never logged and never stored (its ``repr`` hides it).
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


@dataclass(frozen=True)
class ScannedToken:
    """An identity app's QR (VNeID): opaque, for the hub to verify; never parsed, logged or stored."""

    token: str = field(repr=False)
    source: str = "vneid"


Scan = ScannedKeys | ScannedToken

#: bounds of an identity-app token: longer than any ID number, shorter than a framed line
TOKEN_MIN, TOKEN_MAX = 24, 2048
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=:-]+")  # URL-safe text and base64: no spaces, no '|', no '<'
_MRZ_ONLY = re.compile(r"[A-Z0-9<]+")


def is_app_token(text: str) -> bool:
    """An opaque identity-app token: bounded, one line, URL-safe charset, and neither a CCCD QR nor MRZ text."""
    return (
        TOKEN_MIN <= len(text) <= TOKEN_MAX
        and _TOKEN.fullmatch(text) is not None
        and _MRZ_ONLY.fullmatch(text) is None  # upper-case letters and digits only would be MRZ-like
        and not text.isdigit()
    )


def classify_scan(text: str, kind: str) -> str:
    """What a complete scan is: ``id_number``, ``cccd_qr``, ``mrz`` or ``vneid`` (no parsing of the content)."""
    text = text.strip()
    if "\n" in text:
        return "mrz"
    if re.fullmatch(r"[0-9]{12}", text):
        return "id_number"
    if "|" in text:
        return "cccd_qr"
    if is_app_token(text):
        return "vneid"
    return "cccd_qr" if kind == "qr" else "mrz"


def parse_scan(text: str, kind: str) -> Scan | None:
    """A complete scan -> keys or an opaque token; None when more lines are needed; InputError when it is wrong."""
    text = text.strip()
    what = classify_scan(text, kind)
    if what == "vneid":
        return ScannedToken(text)
    if kind == "qr" and what == "id_number":
        pid = PersonalId(text)  # province code checked: a wrong scan is an InputError
        return ScannedKeys(AccessKeys(can=pid.can), "qr", pid.number)
    if kind == "qr" or "|" in text:
        qr = parse_card_qr(text)
        return ScannedKeys(qr.access_keys(), "qr", qr.id_number)
    mrz = parse_mrz(text)
    return ScannedKeys(AccessKeys(mrz_keys=(mrz.key,)), "mrz", None)
