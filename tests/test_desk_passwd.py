"""``gate-agent desk passwd``: the users file the desk logs in against, readable by the daemon's user only."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from agent.desk.users import Users

ROOT = Path(__file__).resolve().parent.parent


def passwd(*args: str, password: str = "correct horse") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "desk", "passwd", *args], input=password + "\n",
                          capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another user needs root")
def test_passwd_hands_the_file_to_the_daemons_user(tmp_path: Path) -> None:
    users = tmp_path / "desk-users"
    nobody = pwd.getpwnam("nobody")
    done = passwd("alice", "--users", str(users), "--owner", "nobody")
    assert done.returncode == 0, done.stderr
    st = users.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (nobody.pw_uid, 0o600)
    assert Users(users).verify("alice", "correct horse") and not Users(users).verify("alice", "wrong")
    done = passwd("bob", "--users", str(users), "--owner", "")
    assert done.returncode == 0 and users.stat().st_uid == 0  # '' keeps the caller's ownership
    done = passwd("carol", "--users", str(users), "--owner", "no-such-user-here")
    assert done.returncode == 2 and "--owner" in done.stderr
    assert not Users(users).verify("carol", "correct horse")  # nothing was written
