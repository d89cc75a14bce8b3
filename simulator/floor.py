"""The floor the body rests on, with the body's shadow, drawn behind the body in image space.

The body lies above the floor plane (it passes through the body's lowest point), so from a
camera above the floor the body always hides the floor and never the other way round: the
floor is part of the background layer. Each background pixel's ray meets the plane z =
floor_z at one point (or none, above the horizon); there the floor's pattern is evaluated
and lit as the colour shader lights a surface facing up (Lambert: the key light's radiance
intensity / pi times the sine of its elevation, plus ambient, in linear space, then
gamma 2.2), and the key light's share is removed where the body casts its shadow:

- `shadow_map`: every body vertex projected along the light direction onto the floor,
  splatted into a grid and blurred into a soft occupancy; plus a contact term (vertices
  within CONTACT_M of the floor, projected straight down, blurred wider) that darkens the
  floor where feet, knees or a lying body touch it.
- `floor_layer`: the pattern (tiles with grout lines and a per-tile shade, concrete-like
  noise, or solid; fading to its mean where a pixel covers more than a tile's detail, so
  distant tiles do not alias), lighting, shadow and contact darkening, composited over the
  background image up to FLOOR_RANGE_M from the body.

Self-shadowing of the body and shadows of occluders are not drawn.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.appearance import hsv

# Grid cells per side of the shadow map, and its padding around the shadow (m).
SHADOW_RES = 96
SHADOW_PAD_M = 0.25
# Vertices this close to the floor (m) darken it by contact, with this blur radius (m).
CONTACT_M = 0.08
CONTACT_BLUR_M = 0.06
CONTACT_STRENGTH = 0.45
# The light counts as at least this high for the shadow (a grazing light's shadow would
# reach the horizon); the longest shadow (m) from the body's footprint.
MIN_LIGHT_ELEVATION = math.radians(15)
MAX_SHADOW_M = 6.0
# The floor is drawn up to this distance (m) from the body; beyond it, the background.
FLOOR_RANGE_M = 40.0
# Concrete-like noise: cell size as a share of the tile size.
NOISE_CELL = 0.6


def shadow_map(vertices: np.ndarray, floor_z: float, light_dir: np.ndarray, res: int = SHADOW_RES):
    """vertices (N, 3) world; light_dir (3,) unit vector towards the light.

    Returns (alpha (res, res) float32 in [0, 1] of cast shadow, contact (res, res) float32
    in [0, 1], origin (2,) world xy of cell [0, 0]'s corner, cell size (m))."""
    from scipy.ndimage import gaussian_filter

    ld = np.asarray(light_dir, dtype=np.float64)
    horiz = math.hypot(ld[0], ld[1])
    elev = max(math.atan2(ld[2], horiz), MIN_LIGHT_ELEVATION)
    if horiz > 1e-9:
        ld = np.array([ld[0] / horiz * math.cos(elev), ld[1] / horiz * math.cos(elev), math.sin(elev)])
    else:
        ld = np.array([0.0, 0.0, 1.0])
    # Coordinates in rows ((2, N) and (N,) arrays): reductions run along contiguous memory.
    v = np.asarray(vertices, dtype=np.float64).T
    h = v[2] - floor_z
    foot = v[:2]
    centre = foot.mean(1, keepdims=True)
    cast = centre + np.clip(foot - ld[:2, None] * (h / ld[2])[None, :] - centre, -MAX_SHADOW_M, MAX_SHADOW_M)
    lo = np.minimum(cast.min(1), foot.min(1)) - SHADOW_PAD_M
    hi = np.maximum(cast.max(1), foot.max(1)) + SHADOW_PAD_M
    cell = float(max(hi - lo) / res)

    def occupancy(xy: np.ndarray) -> np.ndarray:
        ij = np.clip(((xy - lo[:, None]) / cell).astype(np.int64), 0, res - 1)
        grid = np.zeros(res * res, dtype=np.float32)
        grid[ij[0] * res + ij[1]] = 1.0
        return grid.reshape(res, res)

    alpha = np.clip(gaussian_filter(occupancy(cast), sigma=1.2) * 1.6, 0.0, 1.0)
    contact = np.zeros((res, res), np.float32)
    near = h < CONTACT_M
    if near.any():
        contact = np.clip(gaussian_filter(occupancy(foot[:, near]), sigma=max(CONTACT_BLUR_M / cell, 0.5)) * 2.5, 0.0, 1.0)
    return alpha.astype(np.float32), contact.astype(np.float32), lo, cell


def _hash2(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random value in [0, 1) per integer cell."""
    h = (i.astype(np.int32) * np.int32(73856093)) ^ (j.astype(np.int32) * np.int32(19349663))
    h = (h ^ (h >> 13)) * np.int32(1274126177)
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float32) * np.float32(1.0 / 65536.0)


def _pattern(kind: str, x: np.ndarray, y: np.ndarray, footprint: np.ndarray, tile: float) -> np.ndarray:
    """Grey level of the floor pattern at world (x, y) (float32 arrays); footprint: metres
    per pixel; tile: tile size (m)."""
    if kind == "solid":
        return np.ones_like(x)
    if kind == "tiles":
        u, v = x / tile, y / tile
        iu, iv = np.floor(u), np.floor(v)
        grout = np.minimum(u - iu, v - iv) < 0.035
        g = (0.9 + 0.1 * _hash2(iu, iv)) * np.where(grout, np.float32(0.6), np.float32(1.0))
        mean = 0.95 * (1.0 - 0.4 * 0.07)
    elif kind == "noise":
        u, v = x / (NOISE_CELL * tile), y / (NOISE_CELL * tile)
        i, j = np.floor(u), np.floor(v)
        fu, fv = u - i, v - j
        fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
        n = ((_hash2(i, j) * (1 - fu) + _hash2(i + 1, j) * fu) * (1 - fv)
             + (_hash2(i, j + 1) * (1 - fu) + _hash2(i + 1, j + 1) * fu) * fv)
        g = 0.72 + 0.28 * n
        mean = 0.86
    else:
        raise ValueError(f"unknown ground pattern {kind!r}")
    # Fade the pattern's detail where a pixel covers a large part of a tile (no aliasing).
    detail = np.clip(1.5 - 6.0 * footprint / tile, 0.0, 1.0)
    return (mean + (g - mean) * detail).astype(np.float32)


def _rays_down_rows(r: np.ndarray, K: np.ndarray, W: int, H: int) -> tuple[int, int] | None:
    """[first, last + 1) image rows holding a pixel whose ray points downwards (world z
    component r . K^-1 [x, y, 1] < 0), or None."""
    a, b = r[0] / K[0, 0], r[1] / K[1, 1]
    c0 = r[2] - a * K[0, 2] - b * K[1, 2]
    # dz(x, y) = a x + b y + c0 is linear: per row, the lowest value is at x = 0 or W.
    y = np.arange(H) + 0.5
    low = np.minimum(a * 0.5, a * (W - 0.5)) + b * y + c0
    rows = np.flatnonzero(low < 0)
    return (int(rows[0]), int(rows[-1]) + 1) if len(rows) else None


def light_grid(smap, light_share: tuple[float, float]) -> tuple[np.ndarray, float]:
    """The floor's light (gamma-encoded, as the colour is written) on the shadow map's grid,
    and its value where no shadow or contact reaches."""
    alpha, contact, _, _ = smap
    direct, ambient = light_share
    light = (ambient + direct * (1.0 - alpha)) * (1.0 - CONTACT_STRENGTH * contact)
    return (np.maximum(light, 0.0) ** (1.0 / 2.2)).astype(np.float32), float((ambient + direct) ** (1.0 / 2.2))


def floor_layer(background: np.ndarray, pixels: np.ndarray, ground, light_share: tuple[float, float],
                K: np.ndarray, cam_to_world_cv: np.ndarray, floor_z: float, centre: np.ndarray, smap) -> None:
    """Draw the floor into `background` (H, W, 3) float32 sRGB in place at `pixels` (H, W)
    bool (where the colour pass left the background visible).

    light_share: (direct, ambient) radiance on an upward surface; centre (2,): the body's
    world xy (the floor ends FLOOR_RANGE_M from it); smap: `shadow_map`'s result.

    A pixel's world ray is R K^-1 [x, y, 1]: each component is a function of the column
    plus a function of the row, so the rays of the image are outer sums of two short
    vectors (no per-pixel matrix product). The shadow and contact terms are lit on the
    shadow map's grid and interpolated bilinearly per pixel."""
    H, W = pixels.shape
    R = cam_to_world_cv[:3, :3].astype(np.float64)
    c = cam_to_world_cv[:3, 3]
    if c[2] <= floor_z:
        return
    # Rays that go down are a half-plane of the image (below the horizon): only its rows.
    rows = _rays_down_rows(R[2], K, W, H)
    if rows is None:
        return
    r0, r1 = rows
    xs = (np.arange(W, dtype=np.float64) + 0.5 - K[0, 2]) / K[0, 0]
    ys = (np.arange(r0, r1, dtype=np.float64) + 0.5 - K[1, 2]) / K[1, 1]
    col = (R[:, 0:1] * xs[None, :]).astype(np.float32)          # (3, W)
    row = (R[:, 1:2] * ys[None, :] + R[:, 2:3]).astype(np.float32)  # (3, rows)
    dz = row[2][:, None] + col[2][None, :]
    below = pixels[r0:r1] & (dz < 0)
    if not below.any():
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.float32(floor_z - c[2]) / dz
    dx = row[0][:, None] + col[0][None, :]
    dy = row[1][:, None] + col[1][None, :]
    x = np.float32(c[0]) + dx * t
    y = np.float32(c[1]) + dy * t
    below &= (np.abs(x - np.float32(centre[0])) < FLOOR_RANGE_M) & (np.abs(y - np.float32(centre[1])) < FLOOR_RANGE_M)
    if not below.any():
        return
    x, y, t, dx, dy, dz = (a[below] for a in (x, y, t, dx, dy, dz))
    norm2 = dx * dx + dy * dy + dz * dz
    # Metres of floor under one pixel: distance / focal length, stretched at grazing angles.
    footprint = t * norm2 / (np.float32(K[1, 1]) * np.maximum(-dz, np.float32(0.05) * np.sqrt(norm2)))
    grey = _pattern(ground.pattern, x, y, footprint, max(float(ground.tile_size), 0.05))
    from scipy.ndimage import map_coordinates

    grid, unshadowed = light_grid(smap, light_share)
    _, _, origin, cell = smap
    coords = np.stack([(x - np.float32(origin[0])) / np.float32(cell) - 0.5,
                       (y - np.float32(origin[1])) / np.float32(cell) - 0.5])
    lit = map_coordinates(grid, coords, order=1, mode="constant", cval=unshadowed, prefilter=False)
    base = hsv(ground.hue, ground.saturation, ground.value).astype(np.float32)
    background[r0:r1][below] = np.minimum(base[None, :] * (grey * lit)[:, None], 1.0)


def upward_light(intensity: float, light_elevation: float, ambient: float) -> tuple[float, float]:
    """(direct, ambient) radiance on a surface facing up, as the colour shader lights it."""
    return intensity / math.pi * max(math.sin(light_elevation), 0.0), float(ambient)
