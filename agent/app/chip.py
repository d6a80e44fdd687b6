"""The check-in flow's chip reader: a PC/SC reader, the read flow, and only the facts a decision needs."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.app.ports import ChipRead
from agent.card.cvc import CvcError, TerminalCredentials, load_credentials
from agent.card.keys import AccessKeys
from agent.card.mrz import holder_from_mrz
from agent.card.read import ReadResult, read_document
from agent.card.trust import TrustStore
from agent.errors import GateAgentError
from agent.model import ChipFacts, Identity
from agent.transport.base import CardTransport

log = logging.getLogger(__name__)


def chip_read_from(result: ReadResult, *, credentials: bool = False) -> ChipRead:
    """Identity and verification facts from a read; the raw files stay behind.

    ``credentials``: terminal credentials are configured (usable or not), so a chip listing DG3 owes its
    fingerprint reference.
    """
    dg13, dg1 = result.dg13, result.dg1
    if dg13 is not None and dg13.id_number:
        identity = Identity(dg13.id_number, dg13.full_name, dg13.birth, dg13.sex)
        expiry = dg13.expiry
    elif dg1 is not None:
        holder = holder_from_mrz(dg1.mrz)
        identity = Identity(holder.id_number, holder.full_name, holder.birth, holder.sex)
        expiry = holder.expiry
    else:
        raise GateAgentError("the chip gave neither DG13 nor DG1: no identity to check in")
    pa = result.passive_auth
    reference = result.dg3.fingers[0] if result.dg3 is not None and result.dg3.fingers else None
    facts = ChipFacts(
        access=result.access,
        passive_auth=None if pa is None else pa.valid,
        passive_auth_failed_step=None if pa is None else pa.failed_step,
        chip_auth=None if result.chip_auth is None else result.chip_auth.valid,
        active_auth=None if result.active_auth is None else result.active_auth.valid,
        card_expiry=expiry,
        finger_reference=reference,
        finger_position=reference.position if reference is not None else None,
        rules=tuple(hit.rule for hit in result.rules),
        finger_expected=credentials and "dg3" in result.listed,
    )
    return ChipRead(identity, facts, result.apdus, result.seconds)


TransportFactory = Callable[[], CardTransport]


class PcscChipReader:
    """Reads the card on the configured reader; the trust store can be replaced while running."""

    def __init__(
        self,
        open_transport: TransportFactory,
        files: list[str],
        trust_dir: Path | None,
        *,
        chunk_size: int = 0,
        extended_length: bool = True,
        credentials_dir: Path | None = None,
        read_timeout: float | None = None,
    ) -> None:
        self.open_transport = open_transport
        self.read_timeout = read_timeout  # [timeouts] read: the absolute deadline of one chip read
        self.files = files
        self.trust_dir = trust_dir
        self.credentials_dir = credentials_dir
        self._credentials: TerminalCredentials | None = None
        self.credentials_status = "not configured"
        self.chunk_size = chunk_size
        self.extended_length = extended_length
        self._trust: TrustStore | None = None
        self._lock = threading.Lock()
        self.reload_trust()
        self.reload_credentials()

    def reload_credentials(self) -> None:
        """(Re)load the Terminal Authentication chain; a missing or expired one leaves DG3 closed, nothing else."""
        if self.credentials_dir is None:
            return
        try:
            credentials: TerminalCredentials | None = load_credentials(self.credentials_dir)
        except CvcError as exc:
            log.error("terminal credentials unusable, fingerprints on chips cannot be read: %s", exc)
            credentials, status = None, f"unusable: {exc}"
        else:
            assert credentials is not None
            term = credentials.terminal
            status = f"{term.chr} valid until {term.expiration}" + ("" if credentials.grants_dg3 else " (no DG3 right)")
            log.info("terminal credentials: %s", status)
        with self._lock:
            self._credentials, self.credentials_status = credentials, status

    @property
    def credentials(self) -> TerminalCredentials | None:
        with self._lock:
            creds = self._credentials
        if creds is not None and not creds.terminal.valid_on(dt.date.today()):
            self.credentials_status = f"expired on {creds.terminal.expiration}"
            return None
        return creds

    def reload_trust(self) -> None:
        if self.trust_dir is None:
            return
        try:
            trust = TrustStore.from_directory(self.trust_dir)
        except GateAgentError as exc:
            log.error("trust anchors not loaded, passive authentication will fail: %s", exc)
            trust = None
        with self._lock:
            self._trust = trust

    @property
    def trust(self) -> TrustStore | None:
        with self._lock:
            return self._trust

    def read(self, keys: AccessKeys) -> ChipRead:
        deadline = None if self.read_timeout is None else time.monotonic() + self.read_timeout
        transport = self.open_transport()
        terminal = self.credentials
        try:
            trust = self.trust or (TrustStore() if self.trust_dir is not None else None)
            result = read_document(transport, keys, self.files, chunk_size=self.chunk_size,
                                   extended_length=self.extended_length, trust=trust,
                                   terminal=terminal, deadline=deadline)  # fmt: skip
        finally:
            transport.close()
        # configured credentials make the reference due even when they are expired or unusable: the finger then
        # cannot be checked, and the patient goes to the desk instead of through the gate
        return chip_read_from(result, credentials=self.credentials_dir is not None)
