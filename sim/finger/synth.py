"""Synthetic fingerprints that a minutiae matcher can work on: masters, impressions, minutiae ground truth.

The method follows the SFinGe line of work (Cappelli, Maio, Maltoni):

1. **Orientation field** from singular points (Sherlock–Monro zero-pole model):
   θ(z) = θ₀ + ½ (Σ arg(z − core) − Σ arg(z − delta)), with the finger's class
   (left/right loop, whorl, tented arch, arch) choosing how many cores and deltas
   and where.
2. **Ridge frequency**: one ridge period per finger (8–10.5 px at 500 ppi, i.e.
   0.40–0.53 mm), slowly varying over the finger by a smooth random field.
3. **Ridge growth**: random seeds, then repeated oriented Gabor filtering: each
   pixel takes the response of the filter tuned to its local orientation and
   frequency, clipped; ridges grow from the seeds and minutiae appear where
   growing ridge fronts meet out of phase, as in real skin.
4. **Minutiae ground truth**: the master's ridges thinned to one-pixel lines
   (Zhang–Suen) and crossing numbers (1: ending, 3: bifurcation), with spurs and
   border artefacts dropped.
5. **Impressions** of one master: rotation, translation, a smooth elastic
   distortion field, partial contact (an off-centre elliptic contact area), dry
   (broken ridges) or wet (merged ridges) skin, blur and sensor noise.  Ground
   truth minutiae follow each impression's geometry.

Everything is a pure function of ``(seed, finger, impression)``: the same numbers
give the same image bytes on every run.  Images are 8-bit grey at 500 ppi, ridges
dark on a light background, like a sensor's.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import fft, ndimage

Array = npt.NDArray[np.float64]
PPI = 500
MASTER_SHAPE = (416, 352)  # rows, columns: 20.8 × 17.6 mm, a fingertip
ORIENTATIONS = 12
FREQUENCY_BANDS = 2
GROWTH_ITERATIONS = 8
CLASSES = ("left_loop", "right_loop", "whorl", "tented_arch", "arch")
CLASS_WEIGHTS = (0.33, 0.31, 0.27, 0.05, 0.04)  # approximate natural frequencies


@dataclass(frozen=True)
class Minutia:
    x: float
    y: float
    angle: float  # ridge orientation at the point, radians in [0, π)
    kind: str  # "ending" or "bifurcation"


@dataclass(frozen=True)
class Master:
    """One finger: its ridge pattern (-1 valley .. +1 ridge), the finger's area, its minutiae."""

    seed: int
    finger: int
    kind: str
    period: float
    ridges: Array = field(repr=False)
    mask: npt.NDArray[np.bool_] = field(repr=False)
    minutiae: tuple[Minutia, ...] = field(repr=False)


@dataclass(frozen=True)
class Impression:
    width: int
    height: int
    pixels: bytes = field(repr=False)
    minutiae: tuple[Minutia, ...] = field(repr=False)
    ppi: int = PPI
    params: dict[str, float] = field(default_factory=dict)


# --- 1. orientation field ---------------------------------------------------------------------------------


def singular_points(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> tuple[list[complex], list[complex]]:
    """Cores and deltas (x + iy, pixels) for a finger class, jittered."""
    h, w = shape
    cx, cy = w * rng.uniform(0.42, 0.58), h * rng.uniform(0.36, 0.50)

    def j(s: float = 0.04) -> complex:
        return complex(rng.normal(0, s * w), rng.normal(0, s * h))

    if kind == "left_loop":
        return [complex(cx, cy) + j()], [complex(cx - 0.33 * w, cy + 0.38 * h) + j()]
    if kind == "right_loop":
        return [complex(cx, cy) + j()], [complex(cx + 0.33 * w, cy + 0.38 * h) + j()]
    if kind == "whorl":
        d = complex(rng.uniform(-0.06, 0.06) * w, rng.uniform(0.03, 0.08) * h)
        core = complex(cx, cy)
        return ([core - d / 2, core + d / 2],
                [complex(cx - 0.36 * w, cy + 0.40 * h) + j(), complex(cx + 0.36 * w, cy + 0.40 * h) + j()])
    if kind == "tented_arch":
        return [complex(cx, cy) + j(0.02)], [complex(cx, cy + 0.22 * h) + j(0.02)]
    # arch: a core/delta pair below the finger bends the ridges into an arch without singular points in view
    return [complex(cx, h * 1.05)], [complex(cx, h * 1.35)]


def orientation_field(shape: tuple[int, int], cores: list[complex], deltas: list[complex], theta0: float) -> Array:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    z = x + 1j * y
    theta = np.full(shape, theta0)
    for c in cores:
        theta += 0.5 * np.angle(z - c)
    for d in deltas:
        theta -= 0.5 * np.angle(z - d)
    return np.mod(theta, np.pi)


# --- 2 and 3. frequency and ridge growth --------------------------------------------------------------------


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> Array:
    """Zero-mean, unit-peak smooth random field."""
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return np.asarray(n / (np.abs(n).max() + 1e-12), dtype=np.float64)


@lru_cache(maxsize=64)
def _gabor_bank(shape: tuple[int, int], periods: tuple[float, ...]) -> npt.NDArray[np.complex64]:
    """Frequency responses of Gabor filters, [period][orientation], for FFT convolution on ``shape``."""
    h, w = shape
    bank = np.empty((len(periods), ORIENTATIONS, h, w // 2 + 1), dtype=np.complex64)
    for pi, period in enumerate(periods):
        sigma = 0.5 * period
        r = math.ceil(3 * sigma)
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
        for k in range(ORIENTATIONS):
            theta = k * np.pi / ORIENTATIONS
            # across the ridge: the ridge runs along theta, its normal is theta + 90°
            across = -xx * np.sin(theta) + yy * np.cos(theta)
            kern = np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * np.cos(2 * np.pi * across / period)
            kern -= kern.mean()
            padded = np.zeros((h, w))
            padded[: 2 * r + 1, : 2 * r + 1] = kern
            padded = np.roll(padded, (-r, -r), axis=(0, 1))
            bank[pi, k] = fft.rfft2(padded.astype(np.float32))
    return bank


def grow_ridges(rng: np.random.Generator, theta: Array, period_map: Array, periods: tuple[float, ...]) -> Array:
    shape = (theta.shape[0], theta.shape[1])
    bank = _gabor_bank(shape, periods)
    o_idx = np.round(theta / np.pi * ORIENTATIONS).astype(np.int64) % ORIENTATIONS
    p_idx = np.abs(period_map[..., None] - np.asarray(periods)).argmin(axis=-1)
    img = np.zeros(shape, dtype=np.float32)
    seeds = rng.random(shape) < 1 / 500
    img[seeds] = rng.choice([-1.0, 1.0], size=int(seeds.sum()))
    # the pixels each filter serves, found once: (band, orientation, flat indices)
    bins = [(pi, k, idx) for pi in range(len(periods)) for k in range(ORIENTATIONS)
            if (idx := np.flatnonzero((p_idx == pi) & (o_idx == k))).size]  # fmt: skip
    for _ in range(GROWTH_ITERATIONS):
        spectrum = fft.rfft2(img)
        out = np.zeros(shape[0] * shape[1], dtype=np.float32)
        for pi, k, idx in bins:
            out[idx] = fft.irfft2(spectrum * bank[pi, k], s=shape).ravel()[idx]
        img = np.clip(out.reshape(shape) * 4.0, -1.0, 1.0)
    return img.astype(np.float64)


# --- 4. minutiae ground truth ------------------------------------------------------------------------------


def thin(binary: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Zhang–Suen thinning (vectorised); ``binary`` True on ridges."""
    img = np.pad(binary.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = img
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            b = sum(q.astype(np.int32) for q in n)
            seq = [*n, n[0]]
            a = sum(((seq[i] == 0) & (seq[i + 1] == 1)).astype(np.int32) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (p[1:-1, 1:-1] == 1) & (b >= 2) & (b <= 6) & (a == 1) & c
            if remove.any():
                img[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def find_minutiae(ridges: Array, mask: npt.NDArray[np.bool_], theta: Array, margin: int = 14) -> tuple[Minutia, ...]:
    skeleton = thin(ridges > 0)
    s = np.pad(skeleton.astype(np.int32), 1)
    ring = [s[:-2, 1:-1], s[:-2, 2:], s[1:-1, 2:], s[2:, 2:], s[2:, 1:-1], s[2:, :-2], s[1:-1, :-2], s[:-2, :-2]]
    crossing = sum(np.abs(ring[i] - ring[(i + 1) % 8]) for i in range(8)) // 2
    inner = ndimage.binary_erosion(mask, iterations=margin)
    found: list[tuple[int, int, str]] = []
    for kind, cn in (("ending", 1), ("bifurcation", 3)):
        ys, xs = np.nonzero(skeleton & inner & (crossing == cn))
        found += [(int(x), int(y), kind) for x, y in zip(xs, ys, strict=True)]
    # spurs, bridges and breaks give minutiae in close pairs: drop both of any pair closer than 6 px
    keep = []
    for i, (x, y, kind) in enumerate(found):
        if all((x - x2) ** 2 + (y - y2) ** 2 >= 36 for j, (x2, y2, _) in enumerate(found) if j != i):
            keep.append(Minutia(float(x), float(y), float(theta[y, x]), kind))
    return tuple(keep)


def finger_mask(shape: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """A fingertip: an ellipse, flatter at the bottom (the finger continues beyond the image)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = w / 2 + rng.normal(0, 4), h * 0.55
    ax, ay = w * rng.uniform(0.44, 0.49), h * rng.uniform(0.52, 0.58)
    inside = ((x - cx) / ax) ** 2 + (np.minimum(y - cy, 0) / ay) ** 2 + (np.maximum(y - cy, 0) / (2 * ay)) ** 2 <= 1
    return np.asarray(inside, dtype=bool)


def master(seed: int, finger: int) -> Master:
    """The master fingerprint ``finger`` of corpus ``seed``."""
    rng = np.random.default_rng([seed, finger, 0])
    shape = MASTER_SHAPE
    kind = str(rng.choice(CLASSES, p=CLASS_WEIGHTS))
    cores, deltas = singular_points(kind, rng, shape)
    theta = orientation_field(shape, cores, deltas, rng.normal(0, 0.08))
    period = float(rng.uniform(8.0, 10.5))
    period_map = period * (1 + 0.08 * smooth_noise(rng, shape, 60))
    periods = tuple(round(period * f, 2) for f in np.linspace(0.93, 1.07, FREQUENCY_BANDS))
    ridges = grow_ridges(rng, theta, period_map, periods)
    mask = finger_mask(shape, rng)
    return Master(seed, finger, kind, period, ridges, mask, find_minutiae(ridges, mask, theta))


# --- 5. impressions ----------------------------------------------------------------------------------------


def impression(m: Master, number: int, width: int = 256, height: int = 288, *, quality: float = 1.0) -> Impression:
    """Impression ``number`` of master ``m``: 0 is the cleanest (an enrolment), later ones vary more.

    ``quality`` below 1 makes the capture worse (more distortion, less contact, more noise).
    """
    rng = np.random.default_rng([m.seed, m.finger, number + 1])
    strength = (0.5 if number == 0 else 1.0) / max(quality, 0.2)
    rotation = math.radians(rng.normal(0, 7) * strength)
    shift = rng.normal(0, 12, size=2) * strength
    elastic = rng.uniform(1.0, 3.5) * strength
    moisture = float(np.clip(rng.normal(0, 0.35) * strength, -0.8, 0.8))  # < 0 dry, > 0 wet
    contact = float(np.clip(1 - abs(rng.normal(0, 0.12)) * strength, 0.6, 1.0))
    noise = rng.uniform(4, 10) * strength

    mh, mw = m.ridges.shape
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    cos, sin = math.cos(rotation), math.sin(rotation)
    du, dv = u - width / 2, v - height / 2
    disp_x = smooth_noise(rng, (height, width), 35) * elastic
    disp_y = smooth_noise(rng, (height, width), 35) * elastic
    src_x = cos * du - sin * dv + mw / 2 + shift[0] + disp_x
    src_y = sin * du + cos * dv + mh / 2 + shift[1] + disp_y
    ridges = ndimage.map_coordinates(m.ridges, [src_y, src_x], order=1, mode="constant", cval=-1.0)
    mask = ndimage.map_coordinates(m.mask.astype(np.float64), [src_y, src_x], order=1, mode="constant", cval=0.0)

    # partial contact: an elliptic contact area, off-centre and smaller when the finger is placed badly
    off = rng.normal(0, 0.10, size=2) * (1 - contact) * 4
    cx, cy = width * (0.5 + off[0]), height * (0.5 + off[1])
    ax, ay = width * (0.30 + 0.35 * contact), height * (0.32 + 0.35 * contact)
    touch = np.clip((1 - ((u - cx) / ax) ** 2 - ((v - cy) / ay) ** 2) * 4, 0, 1)
    area = np.clip(mask, 0, 1) * touch

    # skin: dry skin breaks ridges (blotches remove ink), wet skin thickens them into the valleys
    blotches = smooth_noise(rng, (height, width), 2.5)
    level = ridges + moisture * 0.9 + (0.9 * blotches if moisture < 0 else 0.25 * blotches) * abs(moisture)
    ink = 1 / (1 + np.exp(-6 * level))
    ink = ndimage.gaussian_filter(ink, 0.6 + 0.6 * max(moisture, 0))
    pressure = rng.uniform(0.75, 0.95)
    grey = 245 - 215 * pressure * ink * area + rng.normal(0, noise, size=(height, width))
    pixels = np.clip(np.round(grey), 0, 255).astype(np.uint8).tobytes()

    truth = []
    for mt in m.minutiae:
        # invert the mapping: start without distortion, then correct by the displacement at the estimate
        x, y = mt.x - mw / 2 - shift[0], mt.y - mh / 2 - shift[1]
        pu, pv = cos * x + sin * y + width / 2, -sin * x + cos * y + height / 2
        for _ in range(3):
            iu, iv = round(pu), round(pv)
            if not (0 <= iu < width and 0 <= iv < height):
                break
            x2, y2 = mt.x - mw / 2 - shift[0] - disp_x[iv, iu], mt.y - mh / 2 - shift[1] - disp_y[iv, iu]
            pu, pv = cos * x2 + sin * y2 + width / 2, -sin * x2 + cos * y2 + height / 2
        iu, iv = round(pu), round(pv)
        if 8 <= iu < width - 8 and 8 <= iv < height - 8 and area[iv, iu] > 0.9:
            truth.append(Minutia(pu, pv, (mt.angle - rotation) % math.pi, mt.kind))
    params = {"rotation_deg": math.degrees(rotation), "shift_x": float(shift[0]), "shift_y": float(shift[1]),
              "elastic_px": elastic, "moisture": moisture, "contact": contact, "noise": noise}  # fmt: skip
    return Impression(width, height, pixels, tuple(truth), PPI, params)




# --- people's fingers ---------------------------------------------------------------------------------------

#: the simulated population's fingers are corpus 2026's masters; ``key`` names a person's finger ("ID:position")
POPULATION_SEED = 2026


def finger_number(key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"finger:{key}".encode()).digest()[:4], "big")


@lru_cache(maxsize=256)
def master_for(key: str) -> Master:
    return master(POPULATION_SEED, finger_number(key))


@lru_cache(maxsize=256)
def reference_for(key: str) -> Impression:
    """The enrolment impression (what the chip's DG3 holds)."""
    return impression(master_for(key), 0)


def live_for(key: str, capture: int, width: int = 256, height: int = 288) -> Impression:
    """The ``capture``-th live impression of the finger (each placement differs)."""
    return impression(master_for(key), 1 + capture, width, height)


__all__ = ["CLASSES", "Impression", "Master", "Minutia", "impression", "live_for", "master", "master_for",
           "reference_for"]
