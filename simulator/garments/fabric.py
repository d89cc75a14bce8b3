"""Fabric textures: small tileable grey-level patterns, tinted by the garment colour
(the material's base colour multiplies the texture). Pure functions of the pattern name."""

from __future__ import annotations

import functools

import numpy as np

from simulator.garments.spec import GarmentError

PATTERNS = ("plain", "stripes", "plaid")
TEXTURE_SIZE = 128


@functools.lru_cache(maxsize=8)
def pattern_image(name: str, size: int = TEXTURE_SIZE) -> np.ndarray:
    """(size, size, 3) uint8 grey pattern, tileable; one tile spans 0.25 m of cloth."""
    if name not in PATTERNS:
        raise GarmentError(f"unknown fabric pattern {name!r}; available: {', '.join(PATTERNS)}")
    yy, xx = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(PATTERNS.index(name) + 7)
    # A fine plain weave: alternating thread brightness plus slub noise, in every pattern.
    threads = 0.5 + 0.5 * np.sin(2 * np.pi * 32 * xx) * np.sin(2 * np.pi * 32 * yy)
    slub = rng.normal(0, 1, (size, size))
    slub = (slub + np.roll(slub, 1, 0) + np.roll(slub, 1, 1)) / 3
    g = 0.9 + 0.05 * threads + 0.03 * slub
    if name == "stripes":
        band = (np.floor(yy * 6) % 2 == 0).astype(float)
        g = g * (0.55 + 0.45 * band)
    elif name == "plaid":
        a = (np.floor(xx * 4) % 2 == 0).astype(float)
        b = (np.floor(yy * 4) % 2 == 0).astype(float)
        thin = ((np.abs((xx * 8) % 1 - 0.5) < 0.06) | (np.abs((yy * 8) % 1 - 0.5) < 0.06)).astype(float)
        g = g * (0.5 + 0.25 * a + 0.25 * b) * (1 - 0.25 * thin)
    return np.clip(g * 255, 0, 255).astype(np.uint8)[..., None].repeat(3, -1)
