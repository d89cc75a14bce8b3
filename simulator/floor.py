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
- `floor_layer` (its per-pixel work is a warp kernel, `simulator.floor_kernel`): the pattern (tiles with grout lines and a per-tile shade, concrete-like
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


_KERNEL = None


def _kernel():
    """simulator.floor_kernel, imported (and warp initialised) on first use."""
    global _KERNEL
    if _KERNEL is None:
        from simulator import floor_kernel
        from simulator.body import _init_warp_quietly

        _init_warp_quietly(floor_kernel.wp)
        _KERNEL = floor_kernel
    return _KERNEL


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

    The shadow and contact terms are lit on the shadow map's grid (`light_grid`); the
    per-pixel work (ray, pattern, bilinear light lookup) is one warp kernel over the rows
    below the horizon (`simulator.floor_kernel`)."""
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
    kern = _kernel()
    kinds = {"solid": kern.SOLID, "tiles": kern.TILES, "noise": kern.NOISE}
    if ground.pattern not in kinds:
        raise ValueError(f"unknown ground pattern {ground.pattern!r}")
    wp = kern.wp
    grid, unshadowed = light_grid(smap, light_share)
    _, _, origin, cell = smap
    band = background[r0:r1]
    work = np.ascontiguousarray(band, dtype=np.float32)  # the kernel writes it in place
    mask = np.ascontiguousarray(pixels, dtype=bool).view(np.uint8)
    wp.launch(
        kern.floor_kernel, dim=(r1 - r0, W), device="cpu",
        inputs=[
            wp.array(work, dtype=wp.vec3, device="cpu", copy=False),
            wp.array(mask, dtype=wp.uint8, device="cpu", copy=False),
            r0, wp.vec2(K[0, 0], K[1, 1]), wp.vec2(K[0, 2], K[1, 2]), wp.mat33(*R.ravel()),
            wp.vec3(*c), float(floor_z), wp.vec2(*centre[:2]), FLOOR_RANGE_M,
            kinds[ground.pattern], max(float(ground.tile_size), 0.05),
            wp.array(grid, dtype=float, device="cpu", copy=False),
            wp.vec2(*origin), float(cell), unshadowed,
            wp.vec3(*hsv(ground.hue, ground.saturation, ground.value)),
        ],
    )
    if work is not band:
        band[...] = work


def upward_light(intensity: float, light_elevation: float, ambient: float) -> tuple[float, float]:
    """(direct, ambient) radiance on a surface facing up, as the colour shader lights it."""
    return intensity / math.pi * max(math.sin(light_elevation), 0.0), float(ambient)
