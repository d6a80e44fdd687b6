"""Files that must be whole or absent after a power cut: write to a temporary file, fsync, rename, fsync the directory.

One implementation for every state file of the terminal (queue metadata and key,
the eligibility cache, the policy pushed by the hub, trust anchors and terminal
credentials, the signing key).  The temporary file lives in the target's
directory so the rename is atomic (same file system), and the directory is
fsync'd so the rename itself survives the power cut.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.store.errors import KeyFileError

log = logging.getLogger(__name__)

#: one writer at a time: two threads saving the same file must not share its temporary file
_WRITE_LOCK = threading.Lock()

_Key = TypeVar("_Key", bound=PrivateKeyTypes)


def fsync_dir(path: Path) -> None:
    """Make the directory's entries (a rename, a new or deleted file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_durably(path: Path) -> None:
    """Delete ``path`` and fsync its directory, so the deletion survives a power cut."""
    path.unlink()
    fsync_dir(path.parent)


def write_durable(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` (created or truncated, ``mode``) and fsync it; no rename, no directory fsync.

    For files that are renamed into place later (a staged set); everything else uses :func:`write_atomic`.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # a leftover file keeps its old mode through O_TRUNC
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``: after a crash the file holds the old bytes or the new, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    with _WRITE_LOCK:
        write_durable(tmp, data, mode)
        os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, doc: Any, mode: int = 0o600) -> None:
    """:func:`write_atomic` of a JSON document (UTF-8, non-ASCII kept)."""
    write_atomic(path, json.dumps(doc, ensure_ascii=False).encode(), mode)


def load_key(path: Path, create: bool = True) -> bytes:
    """The queue's AES-256 key; created (0600) when missing and ``create``; refused when others can read it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            raise KeyFileError(f"{path}: queue key file is missing") from None
        key = AESGCM.generate_key(256)
        write_atomic(path, key, 0o600)
        log.info("created queue key %s", path)
        return key
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: queue key file must be readable by its owner only (chmod 600)")
    key = path.read_bytes()
    if len(key) != 32:
        raise KeyFileError(f"{path}: queue key file must hold 32 bytes, not {len(key)}")
    return key


def public_pem(key: PublicKeyTypes) -> bytes:
    """A public key as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_or_create_private_key(
    path: Path,
    kind: type,
    generate: Callable[[], _Key],
    error: Callable[[str], Exception],
    cannot_load: str,
    wrong_kind: str,
    *,
    renew: bool = False,
    dir_mode: int = 0o777,
    write_public: bool = False,
) -> _Key:
    """A private key file (PKCS#8 PEM, 0600): loaded when present, else generated and written atomically.

    ``kind`` is the key class expected in the file, the one ``generate`` makes.  ``renew`` generates a new
    key even when one is present.  ``dir_mode`` is the mode of a directory made for it.  ``write_public``
    also writes the public half beside a new key (.pub, 0644).  A file that cannot be read or parsed raises
    ``error`` with "<path>: <cannot_load>: <reason>"; a key of another type, "<path>: <wrong_kind>".
    """
    if path.exists() and not renew:
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), None)
        except (OSError, ValueError) as exc:
            raise error(f"{path}: {cannot_load}: {exc}") from exc
        if not isinstance(loaded, kind):
            raise error(f"{path}: {wrong_kind}")
        return cast(_Key, loaded)  # ``kind`` is the class ``generate`` makes
    key = generate()
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_atomic(path, pem, 0o600)
    if write_public:
        write_atomic(path.with_suffix(".pub"), public_pem(key.public_key()), 0o644)
    return key
