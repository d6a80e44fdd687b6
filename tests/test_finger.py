"""Fingerprint module: datasheet frames, the driver against the simulated module on a real pty, every fault."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.bio import protocol as p
from agent.bio.image import GrayImage, to_module_image
from agent.bio.module import FingerprintModule, ModuleProfile
from agent.errors import TransportError
from sim.finger import synth
from sim.finger.module import (
    MODULE_PASS,
    TEMPLATE_TAG,
    PtyModule,
    SimModule,
    image_features,
    parse_sim_faults,
    sensor_image,
    template_score,
)

H = bytes.fromhex


@pytest.mark.parametrize(
    ("packet", "wire"),
    [
        (p.command_packet("gen_img"), "EF01FFFFFFFF010003010005"),
        (p.command_packet("verify_pwd", 0), "EF01FFFFFFFF0100071300000000001B"),
        (p.command_packet("img2tz", 1), "EF01FFFFFFFF0100040201 0008"),
        (p.command_packet("search", 1, 0, 1000), "EF01FFFFFFFF010008040100 0003E8 00F9"),
        (p.Packet(p.PID_ACK, b"\x00"), "EF01FFFFFFFF07000300000A"),
    ],
)
def test_datasheet_frames_both_ways(packet: p.Packet, wire: str) -> None:
    raw = H(wire.replace(" ", ""))
    assert packet.to_bytes() == raw
    assert p.Packet.from_bytes(raw) == packet


def test_parser_skips_noise_and_waits_for_more() -> None:
    raw = p.command_packet("gen_img").to_bytes()
    packet, used = p.parse_packet(b"\x55\x00\x12" + raw + b"\xef")
    assert packet == p.command_packet("gen_img") and used == 3 + len(raw)
    assert p.parse_packet(raw[:7]) == (None, 0)
    with pytest.raises(p.FrameError, match="checksum"):
        p.parse_packet(raw[:-1] + b"\x00")


@given(st.binary(max_size=64))
def test_any_bytes_give_a_packet_nothing_or_a_frame_error(data: bytes) -> None:
    try:
        p.parse_packet(data)
    except p.FrameError:
        pass


def test_every_confirmation_code_is_a_typed_error_with_its_meaning() -> None:
    for code, (cls, meaning) in p.CONFIRMATION.items():
        error = p.module_error(code, "cmd")
        assert isinstance(error, cls) and meaning in str(error) and error.code == code
    assert "undocumented" in str(p.module_error(0x42))


def module_image(key: str) -> bytes:
    """The enrolment impression of a synthetic finger in the module's 4-bit 256x288 format."""
    ref = synth.reference_for(key)
    return to_module_image(GrayImage(ref.width, ref.height, ref.pixels))


def module_template(key: str) -> bytes:
    template = image_features(module_image(key), 512)
    assert template is not None
    return template


def test_simulated_module_templates_match_their_own_finger_only() -> None:
    a1, a2 = image_features(sensor_image("alice", 1), 512), image_features(sensor_image("alice", 2), 512)
    b = image_features(sensor_image("bob", 1), 512)
    assert a1 is not None and a2 is not None and b is not None
    assert len(a1) == 512 and a1[:4] == TEMPLATE_TAG
    assert template_score(a1, a2) >= 2 * MODULE_PASS and template_score(a1, b) < MODULE_PASS
    assert template_score(a1, b"\x00" * 512) == 0  # not a template of this module


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimModule, FingerprintModule]]:
    module = SimModule(speed=0)
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(str(tmp_path / "finger"), ModuleProfile(command_timeout=0.3, slow_timeout=0.5))
    yield module, driver
    driver.close()
    served.stop()


@pytest.mark.pty
def test_probe_enroll_identify_verify(sim: tuple[SimModule, FingerprintModule]) -> None:
    module, driver = sim
    driver.handshake()
    params = driver.system_parameters()
    assert (params.capacity, params.packet_size, params.baud) == (1000, 128, 57600)
    module.place("alice")
    driver.enroll(5, threading.Event(), 2)
    assert driver.template_count() == 1 and driver.index() == [5]
    found = driver.identify(threading.Event(), 2)
    assert found is not None and found[0] == 5 and found[1] >= MODULE_PASS
    module.place("bob")
    assert driver.identify(threading.Event(), 2) is None
    # 1:1 against a reference from the host (the chip's DG3): features, then an image converted on the module
    assert driver.capture_live(threading.Event(), 2)
    assert driver.verify_reference(module_template("bob"), MODULE_PASS).matched
    assert not driver.verify_reference(module_template("alice"), MODULE_PASS).matched
    assert driver.capture_live(threading.Event(), 2)
    assert driver.verify_reference(module_image("bob"), MODULE_PASS, image=True).matched
    assert driver.capture_live(threading.Event(), 2)
    assert not driver.verify_reference(module_image("alice"), MODULE_PASS, image=True).matched
    template = driver.upload_template(1)
    assert len(template) == 512 and template[:4] == TEMPLATE_TAG
    assert driver.upload_image() == module_image("alice")  # the image buffer holds the last image sent down
    assert driver.capture_live(threading.Event(), 2)
    assert driver.upload_image() == sensor_image("bob", module._captures)  # the live finger, 4 bits a pixel
    driver.delete(5)
    assert driver.template_count() == 0


@pytest.mark.pty
def test_waiting_for_a_finger_is_bounded_and_cancellable(sim: tuple[SimModule, FingerprintModule]) -> None:
    _, driver = sim
    driver.handshake()
    start = time.monotonic()
    assert driver.wait_finger(threading.Event(), 0.5) is False
    assert time.monotonic() - start < 2
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    assert driver.wait_finger(cancel, 30) is False and time.monotonic() - start < 2


@pytest.mark.pty
@pytest.mark.parametrize("spec", ["garbage=0.5,seed=1", "power-up", "checksum=0.3,seed=2", "drop=0.3,seed=3"])
def test_faults_are_survived(tmp_path: Path, spec: str) -> None:
    module = SimModule(speed=0, faults=parse_sim_faults(spec))
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(
        str(tmp_path / "finger"), ModuleProfile(command_timeout=0.3, slow_timeout=0.3, retries=6)
    )
    try:
        driver.handshake()
        module.place("carol")
        for _ in range(5):
            assert driver.capture_live(threading.Event(), 3)
            assert driver.verify_reference(module_template("carol"), MODULE_PASS).matched
    finally:
        driver.close()
        served.stop()


@pytest.mark.pty
def test_a_hung_module_is_reset_and_a_dead_one_is_a_clean_timeout(tmp_path: Path) -> None:
    module = SimModule(speed=0, faults=parse_sim_faults("hang=2"))
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(
        str(tmp_path / "finger"), ModuleProfile(command_timeout=0.2, slow_timeout=0.2, retries=1)
    )
    try:
        driver.handshake()
        module.place("dave")
        assert driver.wait_finger(threading.Event(), 3)  # hangs at command 2; the poll loop re-handshakes
        assert driver.stats["resets"] >= 1
    finally:
        served.stop()
    start = time.monotonic()
    with pytest.raises(TransportError):
        driver.handshake()  # the module is gone: a clean transport error, quickly
    assert time.monotonic() - start < 3
    driver.close()


@pytest.mark.pty
def test_wrong_password_is_typed(tmp_path: Path) -> None:
    module = SimModule(speed=0, password=1234)
    served = PtyModule(module, tmp_path / "finger").start()
    driver = FingerprintModule.open(str(tmp_path / "finger"), ModuleProfile(command_timeout=0.3))
    try:
        with pytest.raises(p.WrongPassword):
            driver.handshake()
        with pytest.raises(p.WrongPassword, match="must be verified"):
            driver.capture()
    finally:
        driver.close()
        served.stop()


@pytest.mark.pty
def test_negotiates_the_fast_uart_where_the_module_allows(tmp_path: Path) -> None:
    module = SimModule(speed=0)
    served = PtyModule(module, tmp_path / "finger").start()
    fast = ModuleProfile(command_timeout=0.5, slow_timeout=1.0, fast_baud=115200, fast_packet_size=256)
    driver = FingerprintModule.open(str(tmp_path / "finger"), fast)
    try:
        driver.handshake()
        assert driver.negotiate() == (115200, 256)
        assert (module.profile.baud, module.profile.packet_size) == (115200, 256)
        params = driver.system_parameters()
        assert (params.baud, params.packet_size) == (115200, 256)
        module.place("gus")
        assert driver.capture_live(threading.Event(), 2)
        assert driver.verify_reference(module_image("gus"), MODULE_PASS, image=True).matched  # 256-byte packets
        assert len(driver.upload_image()) == 256 * 288 // 2
    finally:
        driver.close()
        served.stop()


@pytest.mark.pty
def test_a_module_that_refuses_the_speed_stays_where_it_was(tmp_path: Path) -> None:
    module = SimModule(speed=0)
    served = PtyModule(module, tmp_path / "finger").start()
    odd = ModuleProfile(command_timeout=0.5, slow_timeout=1.0, fast_baud=86400, fast_packet_size=256)  # N = 9
    driver = FingerprintModule.open(str(tmp_path / "finger"), odd)
    try:
        driver.handshake()
        assert driver.negotiate() == (57600, 256)
        assert module.profile.baud == 57600
        driver.handshake()  # still talking
    finally:
        driver.close()
        served.stop()
