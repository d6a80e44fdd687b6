"""The interface every card transport implements.

The ICAO code above only ever calls :meth:`CardTransport.transmit`; whether the
bytes travel through pyscard and a real ``pcscd`` or straight into the
simulator's card OS in the same process is invisible to it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CardTransport(Protocol):
    """One card in one reader.

    ``transmit`` sends a complete command APDU and returns the complete
    response APDU, data followed by SW1 SW2.  It performs no ISO 7816-4 logic
    (no GET RESPONSE, no re-issue on 6Cxx): that belongs to the APDU layer.

    Errors are :class:`agent.errors.CardTransportError` subclasses, in
    particular :class:`agent.errors.CardRemovedError` when the card leaves the
    field mid-exchange.
    """

    @property
    def name(self) -> str:
        """Human-readable reader name (for logs and ``--json`` output)."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU and return the response APDU (data || SW1 SW2)."""
        ...

    def close(self) -> None:
        """Release the card; further ``transmit`` calls raise."""
        ...
