"""The host matcher: NBIS minutiae extraction (mindtct) and 1:1 comparison (Bozorth3), compiled C.

The C code is not ours: it is the ``afis`` package's ``libafis_lfs`` (NIST NBIS
mindtct + Bozorth3 behind a four-function C API), built from its source
distribution by ``./run setup``.  We bind the C API with ctypes and never import
the ``afis`` Python package, which would pull in scipy, scikit-image and an ONNX
runtime the gate does not need.

Why these choices (issue 13): mindtct takes 13–20 ms per 256×288 image and a
Bozorth3 comparison ~1 ms on this class of machine; a pure-Python port is ~100×
slower and deep-learning extractors weigh gigabytes.  Bozorth3's time grows with
the square of the minutiae count, so templates keep only the ``keep`` most
reliable minutiae (the worst genuine pair drops from ~0.5 s to well under 0.2 s).

Thread safety: mindtct is not re-entrant; the C wrapper serialises it with a
mutex and so do we (one lock per process, around extraction).  Bozorth3 works in
thread-local storage and runs concurrently.

Scores are Bozorth3's raw scores (higher is more similar, no upper bound in
principle).  The gate's threshold is calibrated on the synthetic corpus by
``bench/finger_match.py`` and documented in docs/fingerprint.md.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.bio.image import GrayImage
from agent.bio.protocol import BioError

log = logging.getLogger(__name__)

MAX_MINUTIAE = 200  # AFIS_MAX_MINUTIAE in afis_lfs.h
LIBRARY = "libafis_lfs.so"
ENV_LIBRARY = "GATE_AGENT_NBIS_LIB"  # a path that overrides the installed library (another build of the same C API)
DEFAULT_KEEP = 25
DEFAULT_THRESHOLD = 30  # calibrated by bench/finger_match.py (docs/fingerprint.md); the config can raise it
MIN_SIDE, MAX_SIDE = 64, 2000  # pixels: smaller is not a fingerprint, larger is not one finger at 500 ppi


class MatcherError(BioError):
    """Root of the host matcher's errors."""


class MatcherUnavailable(MatcherError):
    """The compiled matcher is not installed or does not load (fail closed: no match is decided)."""


class ExtractionError(MatcherError):
    """The image gave no usable template (mindtct failed, or too few minutiae)."""


@dataclass(frozen=True)
class Minutia:
    x: int
    y: int
    direction: int  # mindtct units: 0..31, 11.25° each
    reliability: float  # 0..1
    kind: int  # 0 bifurcation, 1 ridge ending


@dataclass(frozen=True)
class Template:
    """Minutiae of one image (held in memory only; never written anywhere)."""

    width: int
    height: int
    minutiae: tuple[Minutia, ...]

    def __repr__(self) -> str:  # no coordinates in logs or tracebacks
        return f"Template({self.width}x{self.height}, {len(self.minutiae)} minutiae)"


class Matcher(Protocol):
    name: str

    def extract(self, image: GrayImage) -> Template: ...

    def compare(self, probe: Template, reference: Template) -> int: ...


class _CMinutia(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_int32),
        ("y", ctypes.c_int32),
        ("direction", ctypes.c_int32),
        ("reliability", ctypes.c_double),
        ("type", ctypes.c_int32),
    ]


class _CTemplate(ctypes.Structure):
    _fields_ = [
        ("n", ctypes.c_int32),
        ("width", ctypes.c_int32),
        ("height", ctypes.c_int32),
        ("minutiae", _CMinutia * MAX_MINUTIAE),
    ]


def library_path() -> Path:
    """Where the compiled library is: the override, else the one installed with the ``afis`` distribution."""
    override = os.environ.get(ENV_LIBRARY)
    if override:
        return Path(override)
    try:
        dist = importlib.metadata.distribution("afis")
    except importlib.metadata.PackageNotFoundError as exc:
        raise MatcherUnavailable("the NBIS matcher (package afis) is not installed: run ./run setup") from exc
    for file in dist.files or ():
        if file.name == LIBRARY:
            return Path(str(dist.locate_file(file)))
    raise MatcherUnavailable(f"package afis is installed without its compiled {LIBRARY}: run ./run setup")


_LIBS: dict[Path, ctypes.CDLL] = {}
_LIB_LOCK = threading.Lock()
_EXTRACT_LOCK = threading.Lock()


def _library() -> ctypes.CDLL:
    path = library_path()
    with _LIB_LOCK:
        if path not in _LIBS:
            if not path.is_file():
                raise MatcherUnavailable(f"the NBIS matcher library {path.name} is missing: run ./run setup")
            try:
                lib = ctypes.CDLL(str(path))  # RTLD_LOCAL: NBIS's generic global names stay private
                extract = lib.afis_mindtct_extract
                match = lib.afis_bozorth3_match
            except (OSError, AttributeError) as exc:
                raise MatcherUnavailable(f"the NBIS matcher library does not load: {exc}") from exc
            extract.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_double,
                                ctypes.POINTER(_CTemplate)]  # fmt: skip
            extract.restype = ctypes.c_int
            match.argtypes = [ctypes.POINTER(_CTemplate), ctypes.POINTER(_CTemplate)]
            match.restype = ctypes.c_int
            _LIBS[path] = lib
        return _LIBS[path]


def _to_c(template: Template) -> _CTemplate:
    c = _CTemplate()
    c.width, c.height = template.width, template.height
    c.n = min(len(template.minutiae), MAX_MINUTIAE)
    for i, m in enumerate(template.minutiae[: c.n]):
        c.minutiae[i] = _CMinutia(m.x, m.y, m.direction, m.reliability, m.kind)
    return c


class NbisMatcher:
    """mindtct + Bozorth3; ``keep`` most reliable minutiae per template, ``min_minutiae`` to be usable."""

    name = "nbis"

    def __init__(self, keep: int = DEFAULT_KEEP, min_minutiae: int = 8) -> None:
        if not 10 <= keep <= MAX_MINUTIAE:
            raise ValueError(f"keep must be 10..{MAX_MINUTIAE}, not {keep}")
        self.keep = keep
        self.min_minutiae = min_minutiae
        self._lib = _library()

    def extract(self, image: GrayImage) -> Template:
        if not (MIN_SIDE <= image.width <= MAX_SIDE and MIN_SIDE <= image.height <= MAX_SIDE):
            raise ExtractionError(f"image of {image.width}x{image.height} pixels is not one fingerprint")
        if abs(image.ppi - 500) > 10:
            raise ExtractionError(f"image at {image.ppi} ppi: resample to 500 ppi first")
        out = _CTemplate()
        with _EXTRACT_LOCK:
            rc = self._lib.afis_mindtct_extract(image.pixels, image.width, image.height, float(image.ppi),
                                                ctypes.byref(out))  # fmt: skip
        if rc != 0:
            raise ExtractionError(f"mindtct failed (code {rc})")
        found = [out.minutiae[i] for i in range(min(out.n, MAX_MINUTIAE))]
        best = sorted(found, key=lambda m: -m.reliability)[: self.keep]
        if len(best) < self.min_minutiae:
            raise ExtractionError(f"{len(best)} minutiae found, at least {self.min_minutiae} needed")
        minutiae = tuple(
            Minutia(int(m.x), int(m.y), int(m.direction), float(m.reliability), int(m.type))
            for m in sorted(best, key=lambda m: (m.x, m.y))
        )
        return Template(image.width, image.height, minutiae)

    def compare(self, probe: Template, reference: Template) -> int:
        a, b = _to_c(probe), _to_c(reference)
        return int(self._lib.afis_bozorth3_match(ctypes.byref(a), ctypes.byref(b)))


def available() -> str | None:
    """None when the matcher loads, else why not (for doctor)."""
    try:
        _library()
    except MatcherUnavailable as exc:
        return str(exc)
    return None


__all__ = ["DEFAULT_THRESHOLD", "ExtractionError", "Matcher", "MatcherError", "MatcherUnavailable", "Minutia",
           "NbisMatcher", "Template", "available", "library_path"]  # fmt: skip
