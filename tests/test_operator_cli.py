"""Operator commands that say what happened: human units, headers, -v after the subcommand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.commands.queue import human_age, human_bytes
from agent.store.queue import EventQueue
from agent.uplink.events import EventFactory, load_signing_key


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60)


def test_human_units() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 1024**2, 3 * 1024**3)] == \
        ["0 B", "1023 B", "1.5 KiB", "5.0 MiB", "3.0 GiB"]  # fmt: skip
    assert [human_age(s) for s in (None, 5, 600, 3 * 3600, 3 * 86400)] == ["-", "5 s", "10 min", "3.0 h", "3.0 days"]


def test_queue_stats_and_list_read_as_text(tmp_path: Path) -> None:
    queue = EventQueue(tmp_path / "q", capacity=200)
    factory = EventFactory("01001", "gate-1", load_signing_key(tmp_path / "k.key"))
    for i in range(3):
        event = factory.envelope("checkin", queue.reserve(), {"id_number": f"00109001234{i}", "outcome": "admitted"})
        queue.append(event["id"], factory.seal(event), seq=event["seq"])
    queue.close()
    config = tmp_path / "agent.toml"
    config.write_text(f'[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\nstate_dir = "{tmp_path}"\n'
                      "queue_capacity = 200\n")  # fmt: skip
    (tmp_path / "q").rename(tmp_path / "queue")
    stats = gate("queue", "stats", "--config", str(config), "-v")  # -v after the subcommand
    assert stats.returncode == 0, stats.stderr
    lines = {line[:16].strip(): line[17:] for line in stats.stdout.splitlines()}
    assert lines["pending events"] == "3 of 200 (1.5 % full)"
    assert lines["oldest pending"].endswith(" s") and lines["on disk"].endswith("KiB in 1 segment(s)")
    listing = gate("queue", "list", "--dir", str(tmp_path / "queue"), "--limit", "2").stdout.splitlines()
    assert listing[0].split() == ["SEQ", "EVENT", "ID", "TYPE", "TIME", "(UTC)", "OUTCOME"]
    assert len(listing) == 4 and listing[1].split()[0] == "1" and listing[1].rstrip().endswith("admitted")
    assert listing[-1] == "2 of 3 pending events (--limit 2)"
    assert "001090012340" not in "\n".join(listing)  # no ID numbers in a listing
    raw = json.loads(gate("queue", "stats", "--dir", str(tmp_path / "queue"), "--json").stdout)
    assert raw["pending"] == 3 and isinstance(raw["bytes"], int)


def test_attendant_waits_for_the_outcome_and_prints_it(tmp_path: Path) -> None:
    import threading
    import time

    from agent.app.attendant import AttendantSocket, send
    from agent.app.ports import ManualEntry, Shown, Trigger

    config = tmp_path / "agent.toml"
    config.write_text(f'[terminal]\nfacility_id = "01001"\nterminal_id = "gate-1"\nstate_dir = "{tmp_path}"\n')
    got: list[Trigger] = []
    server = AttendantSocket(tmp_path / "attendant.sock")
    server.start(got.append)
    try:
        # the old protocol is unchanged: an answer at once
        assert send(tmp_path / "attendant.sock", {"id_number": "001090012345", "no_card": True}) == {"ok": True}
        # the command waits; the flow shows the outcome; the command prints it
        cmd = [sys.executable, "-m", "agent", "attendant", "--config", str(config), "--id-number", "001090012345",
               "--no-card"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [ManualEntry("001090012345")] * 2 and proc.poll() is None  # still waiting
        server.show(Shown("ev-1", "admitted_provisional", "MANUAL_ENTRY", "Mời vào.", "Please go in.", True))
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "waiting for the outcome" in err
        assert out.splitlines() == ["admitted_provisional (provisional): Please go in. / Mời vào.",
                                    "reason MANUAL_ENTRY, event ev-1"]  # fmt: skip
        # a check-in that ends without an outcome says so, with exit 1
        answers: list[dict[str, object]] = []
        client = threading.Thread(target=lambda: answers.append(send(
            tmp_path / "attendant.sock", {"id_number": "001090012345", "birth": "17051990", "wait": True}, 20)))
        client.start()
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.prompt("need_card", "", "Please place your ID card on the reader.")  # not the end
        time.sleep(0.2)
        assert not answers
        server.prompt("wrong_keys", "Không mở được thẻ.", "The scanned details do not open this card.")
        client.join(20)
        assert answers == [{"ok": False, "prompt": "wrong_keys", "message_vi": "Không mở được thẻ.",
                            "message_en": "The scanned details do not open this card."}]  # fmt: skip
    finally:
        server.stop()
