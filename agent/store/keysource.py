"""Where the key that seals the queue and the eligibility cache comes from: never from beside them, if we can help it.

In order:

1. a systemd credential ``queue-key`` (``LoadCredentialEncrypted=queue-key:/etc/gate-agent/queue-key.cred``,
   made with ``systemd-creds encrypt --with-key=auto``: sealed to the TPM where there is one),
   read from ``$CREDENTIALS_DIRECTORY`` — an SD card pulled from a powered-off gate does not
   reveal the key;
2. ``[terminal] queue_key``: a key file outside the state directory (e.g. on another medium);
3. the old place, ``STATE_DIR/queue/key``, beside the data it protects — still works, and
   ``gate-agent doctor`` warns about it.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.store.errors import KeyFileError

CREDENTIAL = "queue-key"


def queue_key_file(state_dir: Path, configured: str = "") -> tuple[Path, bool]:
    """The key file to use and whether it may be created (not a credential, which systemd provides)."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL).is_file():
        return Path(credentials) / CREDENTIAL, False
    if configured:
        path = Path(configured)
        if beside_state(path, state_dir):
            raise KeyFileError(f"terminal.queue_key: {path} is inside the state directory {state_dir}; "
                               "keep the key apart from the data it protects")  # fmt: skip
        return path, True
    return Path(state_dir) / "queue" / "key", True


def beside_state(path: Path, state_dir: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(state_dir).resolve())
    except ValueError:
        return False
    return True
