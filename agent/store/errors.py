"""Errors of the store layer."""

from __future__ import annotations

from agent.errors import GateAgentError


class StoreError(GateAgentError):
    """The queue or a document could not be read or written."""


class QueueFullError(StoreError):
    """The queue holds its configured capacity of unacknowledged events; new check-ins are refused."""


class KeyFileError(StoreError):
    """The queue's encryption key file is missing, unreadable, of the wrong size or readable by others."""

    exit_code = 2
