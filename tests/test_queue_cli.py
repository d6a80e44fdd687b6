"""gate-agent queue: stats, list (masked), export, purge-acked — beside a writer, with clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.store.queue import EventQueue
from agent.uplink.events import EventFactory, load_signing_key


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "queue", *args], capture_output=True, text=True, timeout=60)


def test_queue_commands(tmp_path: Path) -> None:
    queue = EventQueue(tmp_path / "q")
    factory = EventFactory("01001", "gate-1", load_signing_key(tmp_path / "k.key"))
    for i in range(5):
        event = factory.envelope("checkin", queue.reserve(), {"id_number": f"00109001234{i}", "outcome": "admitted"})
        queue.append(event["id"], factory.seal(event), seq=event["seq"])
    queue.ack([1, 2])
    # the daemon still holds the queue: read-only commands work beside it
    stats = json.loads(gate("stats", "--dir", str(tmp_path / "q"), "--json").stdout)
    assert stats["pending"] == 3 and stats["next_seq"] == 6
    rows = json.loads(gate("list", "--dir", str(tmp_path / "q"), "--json").stdout)
    assert [r["seq"] for r in rows] == [3, 4, 5] and rows[0]["id_number"] == "001*******42"
    out = tmp_path / "export.jsonl"
    assert gate("export", "--dir", str(tmp_path / "q"), "--out", str(out)).returncode == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["body"]["id_number"] for e in exported] == ["001*******42", "001*******43", "001*******44"]
    assert out.stat().st_mode & 0o777 == 0o600
    clear = tmp_path / "clear.jsonl"
    assert gate("export", "--dir", str(tmp_path / "q"), "--out", str(clear), "--unmasked").returncode == 0
    exported = [json.loads(line) for line in clear.read_text().splitlines()]
    assert [e["body"]["id_number"] for e in exported] == ["001090012342", "001090012343", "001090012344"]
    busy = gate("purge-acked", "--dir", str(tmp_path / "q"))
    assert busy.returncode == 1 and "in use by another process" in busy.stderr
    queue.close()
    done = gate("purge-acked", "--dir", str(tmp_path / "q"), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["pending"] == 3
    missing = gate("stats", "--dir", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no event queue here" in missing.stderr
