"""Attendants' logins: one line per attendant, ``name:scrypt:N:r:p:salt:hash`` (base64), the file mode 0600.

scrypt (RFC 7914) from the standard library; parameters are stored per line so they
can be raised later without invalidating old hashes.  Verification takes the same
time for unknown names as for known ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from pathlib import Path

from agent.errors import ConfigError, GateAgentError

N, R, P = 2**14, 8, 1  # 16 MiB of memory per hash: a few tens of ms on the terminal
NAME = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
MIN_PASSWORD = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, salt: bytes | None = None, n: int = N, r: int = R, p: int = P) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt:{n}:{r}:{p}:{_b64(salt)}:{_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split(":")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=len(expected))  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_DUMMY = hash_password("not a password", b"\0" * 16)


class Users:
    """The users file, read at each login (an added attendant can log in without a restart)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GateAgentError(f"cannot read the desk users file {self.path}: {exc}") from exc
        users = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            name, sep, stored = line.partition(":")
            if not sep or not NAME.match(name):
                raise ConfigError(f"{self.path}:{number}: expected name:scrypt:N:r:p:salt:hash")
            users[name] = stored
        return users

    def verify(self, name: str, password: str) -> bool:
        stored = self.load().get(name)
        ok = check_password(password, stored or _DUMMY)
        return ok and stored is not None

    def set_password(self, name: str, password: str) -> None:
        if not NAME.match(name):
            raise ConfigError("an attendant's name is 1-32 letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"a password has at least {MIN_PASSWORD} characters")
        users = self.load() if self.path.exists() else {}
        users[name] = hash_password(password)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(f"{n}:{h}\n" for n, h in sorted(users.items())))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
