"""Image sensors: libfprint's real library driven by the simulated USB sensor (virtual_image), URLs, HostFinger."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.app.finger import HostFinger
from agent.bio.image import GrayImage
from agent.bio.matcher import DEFAULT_THRESHOLD, NbisMatcher
from agent.bio.sensor import FprintSensor, MemorySensor, SensorError, SensorUrl, parse_url
from agent.card.dg3 import parse_dg3
from agent.model import FingerStatus
from sim.card import eac as sim_eac
from sim.finger import synth
from sim.finger.usb import VirtualImageSensor


@pytest.fixture
def usb(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "fprint.sock"
    sensor = FprintSensor("virtual_image", str(path))
    device = VirtualImageSensor(path, speed=0).connect()
    yield sensor, device
    device.close()
    sensor.close()


def later(seconds: float, fn, *args) -> threading.Thread:  # type: ignore[no-untyped-def]
    t = threading.Timer(seconds, fn, args)
    t.start()
    return t


def test_urls() -> None:
    assert parse_url("fprint://") == SensorUrl("fprint", "")
    assert parse_url("fprint://elanmoc") == SensorUrl("fprint", "elanmoc")
    assert parse_url("fprint://virtual_image?socket=/run/x.sock") == SensorUrl("fprint", "virtual_image", "/run/x.sock")
    assert parse_url("/dev/ttyUSB0") == SensorUrl("serial", "/dev/ttyUSB0")
    assert parse_url("socket://127.0.0.1:7000") == SensorUrl("serial", "socket://127.0.0.1:7000")
    with pytest.raises(SensorError, match="unknown parameter"):
        parse_url("fprint://?speed=2")
    with pytest.raises(SensorError, match="virtual_image driver only"):
        parse_url("fprint://elanmoc?socket=/x")


def test_libfprint_captures_the_image_the_sensor_sent(usb) -> None:  # type: ignore[no-untyped-def]
    sensor, device = usb
    live = synth.live_for("alice:2", 0)
    later(0.2, device.present, live.width, live.height, live.pixels)
    image = sensor.capture(threading.Event(), 10)
    assert image is not None
    assert (image.width, image.height, image.ppi) == (256, 288, 500)
    assert image.pixels == live.pixels  # through the real library, byte for byte
    assert "virtual_image" in sensor.name


def test_capture_ends_at_its_deadline_or_when_cancelled(usb) -> None:  # type: ignore[no-untyped-def]
    sensor, _ = usb
    start = time.monotonic()
    assert sensor.capture(threading.Event(), 0.5) is None
    assert 0.45 <= time.monotonic() - start < 3
    cancel = threading.Event()
    later(0.3, cancel.set)
    start = time.monotonic()
    assert sensor.capture(cancel, 30) is None
    assert time.monotonic() - start < 3


def test_sensor_errors_are_typed(usb) -> None:  # type: ignore[no-untyped-def]
    sensor, device = usb
    later(0.2, device.command, -2, 5)  # the device reports a protocol error
    with pytest.raises(SensorError, match="capture failed"):
        sensor.capture(threading.Event(), 10)
    with pytest.raises(SensorError, match="no libfprint device"):
        FprintSensor("no_such_driver")


def test_genuine_finger_matches_the_chips_dg3_and_an_impostor_does_not(usb) -> None:  # type: ignore[no-untyped-def]
    sensor, device = usb
    finger = HostFinger(sensor, NbisMatcher(), DEFAULT_THRESHOLD)
    view = parse_dg3(sim_eac.dg3("079123456789")).fingers[0]  # WSQ, as the simulated chip holds it
    for key, expected in (("079123456789:2", FingerStatus.MATCH), ("someone else:2", FingerStatus.NO_MATCH)):
        later(0.2, device.present_finger, key)
        assert finger.capture(threading.Event(), 10)
        facts = finger.match(view)
        assert facts.status is expected, (key, facts)
    # the live template is used once: a second match without a capture is an error, not a stale match
    assert finger.match(view).status is FingerStatus.ERROR


@pytest.mark.parametrize("fmt", ["packed4", "jp2", "raw"])
def test_every_dg3_format_matches(fmt: str) -> None:
    view = parse_dg3(sim_eac.dg3("079123456789", fmt=fmt)).fingers[0]
    live = synth.live_for("079123456789:2", 1)
    finger = HostFinger(MemorySensor([GrayImage(live.width, live.height, live.pixels)]), NbisMatcher(),
                        DEFAULT_THRESHOLD)  # fmt: skip
    assert finger.capture(threading.Event(), 1)
    assert finger.match(view).status is FingerStatus.MATCH


def test_a_broken_reference_image_is_an_error_not_a_match() -> None:
    import dataclasses

    view = parse_dg3(sim_eac.dg3("079123456789")).fingers[0]
    broken = dataclasses.replace(view, image=view.image[:200])
    live = synth.live_for("079123456789:2", 1)
    finger = HostFinger(MemorySensor([GrayImage(live.width, live.height, live.pixels)]), NbisMatcher(),
                        DEFAULT_THRESHOLD)  # fmt: skip
    assert finger.capture(threading.Event(), 1)
    facts = finger.match(broken)
    assert facts.status is FingerStatus.ERROR and "WSQ" in facts.detail


def test_doctor_covers_the_usb_sensor_and_the_matcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.app import doctor
    from agent.bio import matcher
    from agent.config import parse_config

    def cfg(url: str):  # type: ignore[no-untyped-def]
        return parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1", "state_dir": str(tmp_path)},
                             "finger": {"enabled": True, "url": url}})  # fmt: skip

    checks = {c.name: c for c in doctor.check_serial_devices(cfg(f"fprint://virtual_image?socket={tmp_path}/s"))}
    assert checks["fingerprint matcher"].status == doctor.OK and "threshold 30" in checks["fingerprint matcher"].detail
    assert checks["fingerprint sensor"].status == doctor.OK and "virtual_image" in checks["fingerprint sensor"].detail
    checks = {c.name: c for c in doctor.run_checks(cfg("fprint://no_such_driver"), [doctor.check_serial_devices])}
    assert checks["fingerprint sensor"].status == doctor.FAIL and "lsusb" in checks["fingerprint sensor"].fix
    loaded = cfg("fprint://no_such_driver")  # a config that was valid, then the matcher library went missing
    monkeypatch.setenv(matcher.ENV_LIBRARY, str(tmp_path / "missing.so"))  # (config check now refuses it too)
    checks = {c.name: c for c in doctor.run_checks(loaded, [doctor.check_serial_devices])}
    assert checks["fingerprint matcher"].status == doctor.FAIL and "./run setup" in checks["fingerprint matcher"].fix


def test_finger_command_verifies_a_usb_finger_against_an_image_file(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from PIL import Image

    ref = synth.reference_for("079123456789:2")
    Image.frombytes("L", (ref.width, ref.height), ref.pixels).save(tmp_path / "ref.png", dpi=(500, 500))
    sock = tmp_path / "fprint.sock"
    results = []
    for key in ("079123456789:2", "someone else:2"):
        cmd = [sys.executable, "-m", "agent", "finger", "verify", "--port", f"fprint://virtual_image?socket={sock}",
               "--reference", str(tmp_path / "ref.png"), "--json", "--timeout", "20"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        device = VirtualImageSensor(sock, speed=0).connect(20)
        time.sleep(0.3)
        device.present_finger(key)
        out, _ = proc.communicate(timeout=60)
        device.close()
        results.append((proc.returncode, json.loads(out)))
    (ok_code, ok), (bad_code, bad) = results
    assert ok_code == 0 and ok["matched"] is True and ok["threshold"] == DEFAULT_THRESHOLD and ok["minutiae"] > 10
    assert bad_code == 1 and bad["matched"] is False
    assert not [p for p in tmp_path.iterdir() if p.name not in ("ref.png", "fprint.sock")]  # nothing written


def test_config_takes_fprint_urls_and_names_the_key_of_a_bad_one() -> None:
    from agent.config import parse_config
    from agent.errors import ConfigError

    def finger(url: str):  # type: ignore[no-untyped-def]
        return parse_config({"terminal": {"facility_id": "01001", "terminal_id": "gate-1"},
                             "finger": {"enabled": True, "url": url}})  # fmt: skip

    assert finger("fprint://").finger.host_threshold == DEFAULT_THRESHOLD
    assert finger("fprint://virtual_image?socket=/run/gate/fprint.sock").finger.url.startswith("fprint:")
    with pytest.raises(ConfigError, match=r"finger\.url: .*unknown parameter"):
        finger("fprint://?speed=3")


def test_host_finger_forgets_the_live_template() -> None:
    live = synth.live_for("079123456789:2", 1)
    finger = HostFinger(MemorySensor([GrayImage(live.width, live.height, live.pixels)]), NbisMatcher(),
                        DEFAULT_THRESHOLD)  # fmt: skip
    assert finger.capture(threading.Event(), 1)
    finger.forget()
    view = parse_dg3(sim_eac.dg3("079123456789")).fingers[0]
    assert finger.match(view).status is FingerStatus.ERROR  # nothing left to match: never a stale match


def test_an_unusable_image_is_taken_again_and_a_finger_never_usable_is_an_error() -> None:
    from agent.bio.matcher import ExtractionError

    blank = GrayImage(256, 288, b"\xf0" * (256 * 288))  # nothing on the glass but light
    live = synth.live_for("079123456789:2", 1)
    sensor = MemorySensor([blank, GrayImage(live.width, live.height, live.pixels)])
    finger = HostFinger(sensor, NbisMatcher(), DEFAULT_THRESHOLD)
    assert finger.capture(threading.Event(), 2)
    assert sensor.captures == 2
    view = parse_dg3(sim_eac.dg3("079123456789")).fingers[0]
    assert finger.match(view).status is FingerStatus.MATCH
    never = HostFinger(MemorySensor([blank, blank]), NbisMatcher(), DEFAULT_THRESHOLD)
    with pytest.raises(ExtractionError):
        never.capture(threading.Event(), 0.5)


def test_sim_usb_sensor_command_plays_the_sensor(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    sock = tmp_path / "fprint.sock"
    sensor = FprintSensor("virtual_image", str(sock))
    cmd = [sys.executable, "-m", "sim", "usb-sensor", "--socket", str(sock), "--speed", "0"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert json.loads(proc.stdout.readline())["event"] == "ready"
        proc.stdin.write("place 079123456789:2\n")
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        assert answer == {"ok": True, "finger": "079123456789:2", "images_sent": 1}
        image = sensor.capture(threading.Event(), 10)
        assert image is not None and image.pixels == synth.live_for("079123456789:2", 0).pixels
        proc.stdin.write("dance\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["ok"] is False
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sensor.close()


def test_a_sensor_that_fails_mid_run_shows_as_a_fault_until_it_works_again(usb) -> None:  # type: ignore[no-untyped-def]
    """The kiosk and the status read the finger path's state: a device error is a fault, a good capture clears it."""
    from agent.kiosk.screen import faults_from_status

    sensor, device = usb
    finger = HostFinger(sensor, NbisMatcher(), DEFAULT_THRESHOLD)
    assert finger.state() == "ok"
    later(0.2, device.command, -2, 5)  # libfprint reports a protocol error from the device
    with pytest.raises(SensorError):
        finger.capture(threading.Event(), 10)
    assert finger.state() == "error: SensorError"
    status = {"devices": {"card reader": "ok", "fingerprint module": finger.state()}, "uplink": {"connected": True}}
    assert [f.code for f in faults_from_status(status)] == ["finger"]
    live = synth.live_for("alice:2", 0)
    later(0.2, device.present, live.width, live.height, live.pixels)
    assert finger.capture(threading.Event(), 10)
    assert finger.state() == "ok"
    finger.forget()
