"""Errors of the card protocol layer (one root, subclassed per concern)."""

from __future__ import annotations

from agent.errors import GateAgentError


class CardError(GateAgentError):
    """Root of the errors raised by :mod:`agent.card`.

    Exit status 3 (a reader or card error): only a failed authenticity check exits 1.
    """

    exit_code = 3


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


class StatusError(CardError):
    """The card answered a command with an error status word (ISO/IEC 7816-4, 5.6)."""

    meaning = "error"

    def __init__(self, sw: int, command: str = "") -> None:
        self.sw = sw
        self.command = command
        where = f" to {command}" if command else ""
        super().__init__(f"card answered {sw:04X} ({self.meaning}){where}")


class SecurityStatusError(StatusError):
    meaning = "security status not satisfied"  # 6982: e.g. DG3 without Terminal Authentication


class FileNotFoundOnCard(StatusError):
    meaning = "file or application not found"  # 6A82


class WrongLengthError(StatusError):
    meaning = "wrong length"  # 6700 (e.g. extended length refused)


class AuthenticationFailed(StatusError):
    meaning = "authentication failed"  # 6300 / 63Cx


class SmObjectsError(StatusError):
    meaning = "secure messaging data objects missing or incorrect"  # 6987 / 6988


class OffsetError(StatusError):
    meaning = "offset outside the file"  # 6B00


class UnsupportedCommand(StatusError):
    meaning = "instruction or class not supported"  # 6D00 / 6E00


class WrongParameters(StatusError):
    meaning = "wrong parameters"  # 6A80 / 6A86 / 6B00 family


class SecureMessagingError(CardError):
    """A protected response failed its MAC or could not be decrypted: the session is over."""


class AccessDenied(CardError):
    """No access key opened the chip (BAC and PACE both failed); the keys are wrong for this card.

    Exit status 2, as for any other bad input: the keys given do not belong to this card.
    """

    wrong_keys = True
    exit_code = 2


class HostileCardError(CardError):
    """The chip behaves in a way no genuine chip does (endless chaining, a file larger than its data group allows)."""


class ChainingError(HostileCardError):
    """Response chaining (61xx, more data) went on past the longest response ISO/IEC 7816-4 allows."""


class FileTooLarge(HostileCardError):
    """A file announces a length larger than its data group may have: refused before reading it."""


class UnexpectedCardData(HostileCardError):
    """The chip's answers drove the reader into a state it does not handle (an overflow, a bad length ...)."""


class ReadDeadlineError(CardError):
    """The check-in read passed its absolute deadline (``[timeouts] read``)."""
