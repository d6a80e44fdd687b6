"""Logging set-up and the rules that keep personal data out of logs.

Logs go to stderr in a journald-friendly form: under systemd (``JOURNAL_STREAM``
set) each line carries a ``<N>`` syslog priority prefix and no timestamp, which
journald adds itself.  Interactive runs get a timestamp instead.

Personal data (name, ID number, date of birth, images, templates) is never
logged: the model types hide it from ``repr``, and a log line refers to a
check-in by its event id.  Wire-level hex (APDUs, serial frames) is
logged only at :data:`WIRE`, below DEBUG, and only after secure messaging has
been applied, i.e. ciphertext.
"""

from __future__ import annotations

import logging
import os
import sys

#: below DEBUG: raw wire traffic (``-vv``)
WIRE = 5
logging.addLevelName(WIRE, "WIRE")

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
    WIRE: 7,
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prio = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{prio}>{record.name}: {super().format(record)}"


def setup_logging(verbosity: int = 0) -> None:
    """Configure the root logger once; 0 = INFO for our packages, 1 = DEBUG, 2+ = WIRE."""
    level = {0: logging.INFO, 1: logging.DEBUG}.get(verbosity, WIRE)
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("agent", "sim"):
        logging.getLogger(name).setLevel(level)

