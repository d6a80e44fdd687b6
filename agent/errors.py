"""The root of every error the agent raises on purpose.

Each layer subclasses :class:`GateAgentError` in its own package (card protocol
errors in ``agent.card``, fingerprint module errors in ``agent.bio`` ...).  Raw
``SerialException``, ``CardConnectionException`` or ``OSError`` never escape a
layer: they are wrapped in the layer's own error with the original as
``__cause__``.

The transport errors live here because both the real transports and the
simulator's in-process transports raise them.
"""

from __future__ import annotations


class GateAgentError(Exception):
    """Anything the agent reports to an operator as a clean error."""

    #: process exit status the CLI uses when this error ends a command
    exit_code: int = 1


class ConfigError(GateAgentError):
    """A configuration or profile file is wrong; the message names the file and key."""

    exit_code = 2


class TransportError(GateAgentError):
    """Bytes could not be exchanged with a device."""

    exit_code = 3


class CardTransportError(TransportError):
    """The contactless reader or the card link failed."""


class PcscUnavailableError(CardTransportError):
    """pcscd is not running or cannot be reached."""


class ReaderNotFoundError(CardTransportError):
    """No PC/SC reader matches the requested name."""


class NoCardError(CardTransportError):
    """The reader is there but holds no card."""


class CardRemovedError(CardTransportError):
    """The card left the field (or the RF link broke) during an exchange."""


class SerialTransportError(TransportError):
    """A serial device could not be opened, read or written."""


class TransportTimeoutError(TransportError):
    """A device did not answer within its deadline."""
