"""Fingerprint sensors behind one small interface: wait for a finger, give its image.

Two kinds here (a ZhianTec module on a serial URL matches on the module itself:
:class:`agent.app.finger.ModuleFinger`):

* ``fprint://`` (first device) or ``fprint://DRIVER`` — a USB image sensor through
  libfprint (Debian ``libfprint-2-2`` and ``gir1.2-fprint-2.0``), used only to
  capture: matching is ours (:mod:`agent.bio.matcher`).  ``fprint://virtual_image?socket=PATH``
  is libfprint's own ``virtual_image`` driver listening on PATH: the simulator
  (``sim.finger.usb``) plays the sensor there, so tests run the real library.
* :class:`MemorySensor` — images from memory, for tests.

libfprint is GLib code: every call into it happens on one thread of ours, which
is the only one iterating GLib's default main context.  A capture can be
cancelled (the patient left, the card was pulled) and has a deadline.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from agent.bio.image import TARGET_PPI, GrayImage, resample
from agent.bio.protocol import BioError

log = logging.getLogger(__name__)
T = TypeVar("T")
MM_PER_INCH = 25.4
FPRINT_SCHEME = "fprint"
VIRTUAL_IMAGE_ENV = "FP_VIRTUAL_IMAGE"  # libfprint's virtual_image driver: the socket it listens on


class SensorError(BioError):
    """The sensor failed (not found, does not open, capture error): fail closed, nothing is matched."""


class Sensor(Protocol):
    name: str

    def capture(self, cancel: threading.Event, timeout: float) -> GrayImage | None:
        """Wait for a finger and return its image; None when ``cancel`` is set or ``timeout`` passes first."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SensorUrl:
    kind: str  # "fprint" or "serial"
    target: str  # libfprint driver id ("" = the first device), or the serial URL
    socket: str = ""  # virtual_image: the socket libfprint listens on


def parse_url(url: str) -> SensorUrl:
    if not url:
        raise SensorError("no sensor URL")
    parts = urlsplit(url)
    if parts.scheme != FPRINT_SCHEME:
        return SensorUrl("serial", url)
    query = parse_qs(parts.query)
    unknown = set(query) - {"socket"}
    if unknown:
        raise SensorError(f"{url}: unknown parameter {sorted(unknown)[0]!r} (fprint:// takes socket=PATH)")
    socket = query.get("socket", [""])[0]
    driver = parts.netloc or parts.path.strip("/")
    if socket and driver not in ("", "virtual_image"):
        raise SensorError(f"{url}: socket= is for the virtual_image driver only")
    return SensorUrl("fprint", "virtual_image" if socket else driver, socket)


class MemorySensor:
    """Serves queued images (None = nobody puts a finger on); for tests of the layers above."""

    name = "memory"

    def __init__(self, images: list[GrayImage | None] | None = None) -> None:
        self.images: queue.Queue[GrayImage | None] = queue.Queue()
        for image in images or []:
            self.images.put(image)
        self.captures = 0

    def capture(self, cancel: threading.Event, timeout: float) -> GrayImage | None:
        try:
            image = self.images.get(timeout=timeout)
        except queue.Empty:
            return None
        self.captures += 1
        return None if cancel.is_set() else image

    def close(self) -> None:
        pass


class _GLibThread:
    """One thread that owns libfprint: jobs run there, one at a time, in order."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="fprint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def call(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        done = threading.Event()
        box: dict[str, Any] = {}

        def job() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        self._jobs.put(job)
        if not done.wait(timeout):
            raise SensorError("libfprint did not answer in time")
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]



_GLIB: _GLibThread | None = None
_GLIB_LOCK = threading.Lock()


def _glib_thread() -> _GLibThread:
    """The process's one libfprint thread (GLib's default main context must have a single owner)."""
    global _GLIB
    with _GLIB_LOCK:
        if _GLIB is None:
            _GLIB = _GLibThread()
        return _GLIB


class FprintSensor:
    """A USB image sensor through libfprint (capture only).  ``open()`` finds and opens the device."""

    def __init__(self, driver: str = "", socket: str = "", open_timeout: float = 10.0) -> None:
        self.driver = driver
        self.socket = socket
        self.name = f"libfprint {driver or 'first device'}"
        self._open_timeout = open_timeout
        self._glib = _glib_thread()
        self._device: Any = None
        self._capture_lock = threading.Lock()
        self._glib.call(self._open, open_timeout)

    def _open(self) -> None:
        if self.socket:
            # the virtual_image driver is enabled by, and listens on, this variable's path
            os.environ[VIRTUAL_IMAGE_ENV] = self.socket
        try:
            import gi

            gi.require_version("FPrint", "2.0")
            from gi.repository import FPrint, GLib
        except (ImportError, ValueError) as exc:
            raise SensorError(f"libfprint is not available through GObject introspection: {exc}") from exc
        self._GLib = GLib
        context = FPrint.Context()
        devices = list(context.get_devices())
        chosen = [d for d in devices if not self.driver or d.get_driver() == self.driver]
        if not chosen:
            found = ", ".join(d.get_driver() for d in devices) or "none"
            raise SensorError(f"no libfprint device {self.driver or ''} (found: {found})".replace("  ", " "))
        device = chosen[0]
        if not device.has_feature(FPrint.DeviceFeature.CAPTURE):
            raise SensorError(f"libfprint device {device.get_driver()} cannot capture images")
        try:
            device.open_sync(None)
        except GLib.Error as exc:
            raise SensorError(f"libfprint device {device.get_driver()} does not open: {exc.message}") from exc
        self._context = context
        self._device = device
        self.name = f"libfprint {device.get_driver()} ({device.get_name()})"

    def capture(self, cancel: threading.Event, timeout: float) -> GrayImage | None:
        from gi.repository import Gio

        with self._capture_lock:
            if self._device is None:
                raise SensorError("the sensor is closed")
            cancellable = Gio.Cancellable()
            stop = threading.Event()

            def watch() -> None:  # the deadline and the flow's cancel both end the capture
                deadline = time.monotonic() + timeout
                while not stop.wait(0.02):
                    if cancel.is_set() or time.monotonic() >= deadline:
                        cancellable.cancel()
                        return

            watcher = threading.Thread(target=watch, name="fprint-deadline", daemon=True)
            watcher.start()
            try:
                return self._glib.call(lambda: self._capture(cancellable), timeout + 5.0)
            finally:
                stop.set()
                watcher.join()

    def _capture(self, cancellable: Any) -> GrayImage | None:
        GLib = self._GLib
        try:
            image = self._device.capture_sync(True, cancellable)
        except GLib.Error as exc:
            if cancellable.is_cancelled():
                return None
            raise SensorError(f"libfprint capture failed: {exc.message}") from exc
        width, height, ppmm = image.get_width(), image.get_height(), image.get_ppmm()
        gray = GrayImage(width, height, bytes(image.get_data()))
        if ppmm > 0:  # a resolution the driver knows; 0 means the usual 500 ppi
            ppi = round(ppmm * MM_PER_INCH)
            if abs(ppi - TARGET_PPI) > 10:
                gray = resample(gray, (ppi, ppi))
        return gray

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                self._glib.call(lambda: device.close_sync(None), self._open_timeout)
            except Exception as exc:  # closing is best effort
                log.warning("libfprint close: %s", exc)


__all__ = ["FprintSensor", "MemorySensor", "Sensor", "SensorError", "SensorUrl", "parse_url"]
