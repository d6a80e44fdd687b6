"""The check-in flow's fingerprint paths: match on the host (image sensors), or on the ZhianTec module.

Host path (:class:`HostFinger`): the sensor's image is turned into minutiae while
the chip is still being read; when DG3 arrives its image is decoded (WSQ, JPEG
2000, raw or bit-packed, at 500 ppi), its minutiae extracted and the two compared
— milliseconds, against seconds for the module's UART.

Module path (:class:`ModuleFinger`): the module captures and extracts on its own;
the chip's DG3 image is converted to the module's 4-bit 256×288 format and sent
down with DownImage, then the module compares.  UART speed is the limit.

Biometric data stays in memory: the live template and the reference image are
dropped as soon as the match is decided (or the check-in ends), and never reach
a log, the queue or the uplink (FingerFacts carries only status, score, detail).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from agent.bio.image import ImageError, decode_view, to_module_image
from agent.bio.matcher import ExtractionError, Matcher, Template
from agent.bio.module import FingerprintModule
from agent.bio.protocol import ImageError as ModuleImageError
from agent.bio.protocol import NoFinger
from agent.bio.sensor import Sensor
from agent.errors import GateAgentError
from agent.model import FingerFacts, FingerReference, FingerStatus

if TYPE_CHECKING:
    from agent.config import FingerConfig

log = logging.getLogger(__name__)

#: errors about one finger or one image, not about the device: the sensor still works
_NOT_THE_DEVICE = (ExtractionError, ImageError, NoFinger, ModuleImageError)


class _Health:
    """The device's state for the status and the kiosk: "ok" until a device error, "ok" again after a success."""

    def __init__(self) -> None:
        self._state = "ok"

    def state(self) -> str:
        return self._state

    @contextmanager
    def watch(self) -> Iterator[None]:
        try:
            yield
        except GateAgentError as exc:
            if not isinstance(exc, _NOT_THE_DEVICE):
                self._state = f"error: {type(exc).__name__}"  # the type only: messages may carry device detail
            raise
        self._state = "ok"


class HostFinger:
    """An image sensor and the host matcher; ``threshold`` in the matcher's scores (docs/fingerprint.md)."""

    def __init__(self, sensor: Sensor, matcher: Matcher, threshold: int) -> None:
        self.sensor = sensor
        self.matcher = matcher
        self.threshold = threshold
        self._lock = threading.Lock()
        self._live: Template | None = None
        self.timings: dict[str, float] = {}
        self._health = _Health()

    def state(self) -> str:
        """``ok``, or ``error: <type>`` after the sensor failed (until it works again)."""
        return self._health.state()

    @property
    def name(self) -> str:
        return f"{self.sensor.name} + {self.matcher.name} on the host"

    def capture(self, cancel: threading.Event, timeout: float) -> bool:
        """Wait for the finger, then extract its minutiae (the image is dropped right after).

        An image without enough minutiae (a smudge, a fingertip barely touching) is taken
        again until ``timeout``: the patient is still at the sensor.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._live = None
            last: ExtractionError | None = None
            while (remaining := deadline - time.monotonic()) > 0 and not cancel.is_set():
                start = time.monotonic()
                with self._health.watch():
                    image = self.sensor.capture(cancel, remaining)
                if image is None:
                    break
                captured = time.monotonic()
                try:
                    template = self.matcher.extract(image)
                except ExtractionError as exc:
                    log.info("finger image not usable (%s): capturing again", exc)
                    last = exc
                    continue
                finally:
                    del image
                self.timings = {"capture": captured - start, "extract": time.monotonic() - captured}
                if cancel.is_set():
                    return False
                self._live = template
                return True
            if last is not None:
                raise last  # the finger was there, but never usable: an error, not "no finger"
            return False

    def match(self, reference: FingerReference) -> FingerFacts:
        """The live finger against the chip's reference image (one DG3 finger view)."""
        with self._lock:
            live, self._live = self._live, None  # used once, then forgotten
            if live is None:
                return FingerFacts(FingerStatus.ERROR, detail="no live finger captured")
            start = time.monotonic()
            try:
                image = decode_view(reference)
                ref = self.matcher.extract(image)
                del image
            except ImageError as exc:
                return FingerFacts(FingerStatus.ERROR, detail=f"the chip's fingerprint image: {exc}")
            extracted = time.monotonic()
            score = self.matcher.compare(live, ref)
            self.timings.update(reference=extracted - start, compare=time.monotonic() - extracted)
            log.info("finger on the host: capture %.3f s, extract %.3f s, reference %.3f s, compare %.3f s",
                     *(self.timings.get(k, 0.0) for k in ("capture", "extract", "reference", "compare")))  # fmt: skip
        status = FingerStatus.MATCH if score >= self.threshold else FingerStatus.NO_MATCH
        return FingerFacts(status, score)

    def forget(self) -> None:
        self._live = None

    def close(self) -> None:
        self._live = None
        self.sensor.close()


class ModuleFinger:
    """The ZhianTec module: capture and features on the module, the reference image sent down to it."""

    def __init__(self, module: FingerprintModule, threshold: int) -> None:
        self.module = module
        self.threshold = threshold
        self._lock = threading.Lock()
        self._health = _Health()

    def state(self) -> str:
        """``ok``, or ``error: <type>`` after the module failed (until it answers again)."""
        return self._health.state()

    @property
    def name(self) -> str:
        p = self.module.profile
        return f"module {p.name} at {p.baud} baud, {p.packet_size}-byte packets"

    def capture(self, cancel: threading.Event, timeout: float) -> bool:
        with self._lock, self._health.watch():
            return self.module.capture_live(cancel, timeout)

    def match(self, reference: FingerReference) -> FingerFacts:
        """1:1 against the chip's DG3 image, converted to the module's own format, features made on the module."""
        try:
            image = to_module_image(decode_view(reference))
        except ImageError as exc:
            return FingerFacts(FingerStatus.ERROR, detail=f"the chip's fingerprint image: {exc}")
        with self._lock, self._health.watch():
            result = self.module.verify_reference(image, self.threshold, image=True)
        status = FingerStatus.MATCH if result.matched else FingerStatus.NO_MATCH
        return FingerFacts(status, result.score)

    def forget(self) -> None:
        """The module's buffers are overwritten by the next capture; a real module offers no command to clear them."""

    def close(self) -> None:
        self.module.close()


def open_finger(cfg: FingerConfig) -> HostFinger | ModuleFinger:
    """The finger path ``[finger] url`` names: ``fprint://...`` matches on the host, a serial URL on the module."""
    from agent import profiles
    from agent.bio.matcher import NbisMatcher
    from agent.bio.sensor import FprintSensor, parse_url

    url = parse_url(cfg.url)
    if url.kind == "fprint":
        matcher = NbisMatcher()  # before the sensor: a missing matcher fails the start, not a check-in
        host = HostFinger(FprintSensor(url.target, url.socket), matcher, cfg.host_threshold)
        log.info("fingerprint: %s, threshold %d", host.name, cfg.host_threshold)
        return host
    module = FingerprintModule.open(cfg.url, profiles.fingerprint_profile(cfg.profile))
    module.handshake()
    if cfg.negotiate:
        module.negotiate()
    finger = ModuleFinger(module, cfg.threshold)
    log.info("fingerprint: %s, threshold %d", finger.name, cfg.threshold)
    return finger
