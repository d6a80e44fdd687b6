"""Errors of the card protocol layer (one root, subclassed per concern)."""

from __future__ import annotations

from agent.errors import GateAgentError


class CardError(GateAgentError):
    """Root of the errors raised by :mod:`agent.card`."""


class InputError(CardError):
    """Operator- or scanner-supplied input (MRZ, ID number, dates, QR text) is invalid.

    ``field`` names the offending field so a CLI or a display can point at it.
    """

    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MrzError(InputError):
    """A machine readable zone is malformed or fails a check digit."""


class KeyDerivationError(InputError):
    """CCCD access keys cannot be derived from the given ID number, dates or QR text."""


class ParseError(CardError):
    """Bytes read from a chip (TLV, ASN.1, LDS file, SOD) are malformed.

    ``where`` names the structure being parsed (``"DG13"``, ``"EF.SOD"`` ...).
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
