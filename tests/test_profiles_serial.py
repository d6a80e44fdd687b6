"""Device profiles, the finger CLI against the simulated module, scanners over real ptys."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent import profiles
from agent.app.ports import KeysEntered, Trigger
from agent.app.sources import ScannerSource
from agent.bio.image import GrayImage, to_module_image
from agent.card.errors import InputError
from agent.card.read import read_document
from agent.config import parse_config
from agent.errors import ConfigError
from agent.scan.parse import ScannedKeys, parse_scan
from sim.card import InProcessReader, build_card
from sim.finger import synth
from sim.finger.module import image_features
from sim.population import make_person
from sim.scanner import PtyScanner, scan_text


def test_every_shipped_profile_is_valid() -> None:
    names = profiles.check_all()
    assert {"r307", "r503", "as608", "zfm20", "acr1252u", "omnikey5022", "vpcd", "mrz-ocr", "qr-scanner"} <= set(names)
    assert profiles.fingerprint_profile("r503").template_size == 1536


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kind = "fingerprint"\nmodel = "x"', "baud: required key is missing"),
        ('kind = "toaster"', "kind: must be one of"),
        ('kind = "reader"\nmodel = "x"\nextended_length = "yes"\nchunk_size = 1\ntimeout = 1', "extended_length"),
        (
            'kind = "reader"\nmodel = "x"\nextended_length = true\nchunk_size = 1\ntimeout = 1\nturbo = 1',
            "turbo: unknown key",
        ),
        ('kind = "scanner"\nmodel = "x"\ntype = "barcode"\nbaud = 9600\nline_timeout = 0.3', "type: must be mrz or qr"),
    ],
)
def test_bad_profiles_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        profiles.load_file(path)
    assert "bad.toml" in str(err.value)


def test_config_names_a_missing_profile() -> None:
    with pytest.raises(ConfigError, match=r"reader\.profile: no device profile named 'acme'"):
        parse_config({"terminal": {"facility_id": "1", "terminal_id": "g"}, "reader": {"profile": "acme"}})


def module_template(key: str) -> bytes:
    ref = synth.reference_for(key)
    template = image_features(to_module_image(GrayImage(ref.width, ref.height, ref.pixels)), 512)
    assert template is not None
    return template


@pytest.mark.pty
def test_finger_cli_against_the_simulated_module(tmp_path: Path) -> None:
    link = tmp_path / "finger"
    cmd = [sys.executable, "-m", "sim", "fingerprint", "--pty-link", str(link), "--finger", "erin",
           "--enrolled", "3", "--speed", "0"]  # fmt: skip
    sim = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None and json.loads(sim.stdout.readline())["event"] == "ready"

        def finger(*args: str) -> subprocess.CompletedProcess[str]:
            cmd = [sys.executable, "-m", "agent", "finger", *args, "--port", str(link), "--json", "--timeout", "3"]
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

        probe = json.loads(finger("probe").stdout)
        assert probe["capacity"] == 1000 and probe["templates"] == 3
        (tmp_path / "ref.tpl").write_bytes(module_template("erin"))
        ok = finger("verify", "--reference", str(tmp_path / "ref.tpl"))
        assert ok.returncode == 0 and json.loads(ok.stdout)["matched"] is True
        (tmp_path / "other.tpl").write_bytes(module_template("frank"))
        bad = finger("verify", "--reference", str(tmp_path / "other.tpl"))
        assert bad.returncode == 1 and json.loads(bad.stdout)["matched"] is False
        assert finger("enroll", "--page", "9").returncode == 0
        found = json.loads(finger("identify").stdout)
        assert found["found"] and found["page"] == 9
        assert sim.stdin is not None
        sim.stdin.write("remove\n")
        sim.stdin.flush()
        sim.stdout.readline()
        none = finger("capture", "--timeout", "0.5")
        assert none.returncode == 1 and "no finger" in json.loads(none.stdout)["error"]
    finally:
        sim.terminate()
        sim.wait(10)
    missing = subprocess.run([sys.executable, "-m", "agent", "finger", "probe", "--port", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 3 and "cannot open" in missing.stderr


def test_scan_parsing() -> None:
    person = make_person(3)
    keys = parse_scan(person.qr(), "qr")
    assert isinstance(keys, ScannedKeys) and keys.id_number == person.id_number and keys.keys.can == person.can
    mrz = parse_scan("\n".join(person.td1()), "mrz")
    assert isinstance(mrz, ScannedKeys) and mrz.keys.mrz_keys[0].document_number == person.id_number[3:]
    plain = parse_scan(f" {person.id_number}\r\n", "qr")
    assert isinstance(plain, ScannedKeys) and plain.id_number == person.id_number
    assert plain.keys.can == person.id_number[-6:] and plain.keys.mrz_keys == ()
    with pytest.raises(InputError, match="province code"):
        parse_scan("999" + person.id_number[3:], "qr")


def test_a_plain_id_number_opens_a_cccd_with_pace_can() -> None:
    card = build_card("cccd", seed=9)
    scan = parse_scan(card.person.id_number, "qr")
    assert scan is not None
    result = read_document(InProcessReader(card), scan.keys, ["dg1", "dg13"])
    assert result.access == "PACE" and result.dg13 is not None and result.dg13.id_number == card.person.id_number


@pytest.mark.pty
@pytest.mark.parametrize("kind", ["qr", "mrz"])
def test_scanner_source_over_a_pty(tmp_path: Path, kind: str) -> None:
    scanner = PtyScanner(tmp_path / "scan")
    source = ScannerSource(str(tmp_path / "scan"), kind)
    got: list[Trigger] = []
    arrived = threading.Event()

    def submit(trigger: Trigger) -> None:
        got.append(trigger)
        arrived.set()

    source.start(submit)
    try:
        assert source.ready.wait(5)  # the port is open: nothing sent from here on is lost
        scanner.emit("garbage that is no scan")
        person = make_person(8)
        scanner.emit(scan_text(person, kind))
        assert arrived.wait(5)
        assert len(got) == 1 and isinstance(got[0], KeysEntered) and got[0].source == kind
        assert source.state() == "ok"
    finally:
        source.stop()
        scanner.close()
