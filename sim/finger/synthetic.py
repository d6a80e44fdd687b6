"""Synthetic fingers: each identity has stable features; every capture adds some noise.

The same identity's captures agree on most feature bytes (high match score), two
identities agree on about 1 in 256 (near zero).  The reference the simulated chip
card would store for a person (DG3) comes from the same identity, so a card and a
finger of one simulated person match.
"""

from __future__ import annotations

import hashlib
import random

TEMPLATE_HEADER = b"SFT1"
IMAGE_HEADER = b"SIMG"
IMAGE_SIZE = 256 * 288 // 2  # a 4-bit 256x288 image, as R30x modules upload


def identity_key(identity: int | str) -> bytes:
    return hashlib.sha256(f"finger:{identity}".encode()).digest()[:16]


def features(
    identity: int | str | bytes, *, noise_seed: int | None = None, size: int = 512, noise: float = 0.08
) -> bytes:
    """A template of ``size`` bytes; ``noise_seed`` None gives the clean reference."""
    key = identity if isinstance(identity, bytes) else identity_key(identity)
    base = bytearray(random.Random(key).randbytes(size - len(TEMPLATE_HEADER) - 16))
    if noise_seed is not None:
        rng = random.Random(noise_seed)
        for i in range(len(base)):
            if rng.random() < noise:
                base[i] = rng.randrange(256)
    return TEMPLATE_HEADER + key + bytes(base)


def reference_image(identity: int | str) -> bytes:
    """An image the module can turn into this identity's features."""
    key = identity_key(identity)
    return IMAGE_HEADER + key + random.Random(key + b"img").randbytes(IMAGE_SIZE - 20)


def score(a: bytes, b: bytes) -> int:
    """The module's match score: agreeing feature bytes, scaled to 0..300 or so."""
    n = min(len(a), len(b)) - 20
    if n <= 0 or a[:4] != TEMPLATE_HEADER or b[:4] != TEMPLATE_HEADER:
        return 0
    same = sum(1 for x, y in zip(a[20 : 20 + n], b[20 : 20 + n], strict=True) if x == y)
    return same * 300 // n
