"""The floor layer's per-pixel work as one warp kernel on the CPU (see `simulator.floor`).

warp (NVIDIA's Python kernel compiler, already a dependency of the anny body model) compiles
this module to native code once per machine (about 2 s; cached under
$POSEEXAMINER_HOME/warp) and runs it over the image rows below the horizon: per pixel, the
ray through the pixel centre meets the floor plane, the pattern is evaluated there (faded
where a pixel covers more than a tile's detail), lit from the shadow grid (bilinear, the
unshadowed light outside it) and written over the background. Single precision, one
thread per pixel, no reductions: the same inputs give the same pixels on every run.
"""

from __future__ import annotations

from simulator.paths import configure_caches

configure_caches()

import warp as wp  # noqa: E402

wp.config.quiet = True

SOLID, TILES, NOISE = 0, 1, 2
# Tiles: grout line width (share of a tile), its darkness, the per-tile shade range.
GROUT = 0.035
# Concrete-like noise: cell size as a share of the tile size.
NOISE_CELL = 0.6


@wp.func
def _hash2(i: wp.int32, j: wp.int32) -> float:
    """A deterministic pseudo-random value in [0, 1) per integer cell (unsigned wrap-around)."""
    h = (wp.uint32(i) * wp.uint32(73856093)) ^ (wp.uint32(j) * wp.uint32(19349663))
    h = (h ^ (h >> wp.uint32(13))) * wp.uint32(1274126177)
    return float((h ^ (h >> wp.uint32(16))) & wp.uint32(65535)) * (1.0 / 65536.0)


@wp.func
def _pattern(kind: int, x: float, y: float, footprint: float, tile: float) -> float:
    if kind == SOLID:
        return 1.0
    g = float(1.0)
    mean = float(1.0)
    if kind == TILES:
        u = x / tile
        v = y / tile
        iu = wp.floor(u)
        iv = wp.floor(v)
        g = 0.9 + 0.1 * _hash2(wp.int32(iu), wp.int32(iv))
        if wp.min(u - iu, v - iv) < GROUT:
            g = g * 0.6
        mean = 0.95 * (1.0 - 0.4 * 0.07)
    else:
        u = x / (NOISE_CELL * tile)
        v = y / (NOISE_CELL * tile)
        fi = wp.floor(u)
        fj = wp.floor(v)
        i = wp.int32(fi)
        j = wp.int32(fj)
        fu = u - fi
        fv = v - fj
        fu = fu * fu * (3.0 - 2.0 * fu)
        fv = fv * fv * (3.0 - 2.0 * fv)
        n = ((_hash2(i, j) * (1.0 - fu) + _hash2(i + 1, j) * fu) * (1.0 - fv)
             + (_hash2(i, j + 1) * (1.0 - fu) + _hash2(i + 1, j + 1) * fu) * fv)
        g = 0.72 + 0.28 * n
        mean = 0.86
    # Fade the detail where a pixel covers a large part of a tile (no aliasing).
    detail = wp.clamp(1.5 - 6.0 * footprint / tile, 0.0, 1.0)
    return mean + (g - mean) * detail


@wp.func
def _grid_at(grid: wp.array2d(dtype=float), i: int, j: int, outside: float) -> float:
    if i < 0 or j < 0 or i >= grid.shape[0] or j >= grid.shape[1]:
        return outside
    return grid[i, j]


@wp.func
def _bilinear(grid: wp.array2d(dtype=float), gx: float, gy: float, outside: float) -> float:
    fx = wp.floor(gx)
    fy = wp.floor(gy)
    i = wp.int32(fx)
    j = wp.int32(fy)
    ax = gx - fx
    ay = gy - fy
    top = _grid_at(grid, i, j, outside) * (1.0 - ay) + _grid_at(grid, i, j + 1, outside) * ay
    bottom = _grid_at(grid, i + 1, j, outside) * (1.0 - ay) + _grid_at(grid, i + 1, j + 1, outside) * ay
    return top * (1.0 - ax) + bottom * ax


@wp.kernel
def floor_kernel(
    background: wp.array2d(dtype=wp.vec3),
    pixels: wp.array2d(dtype=wp.uint8),
    first_row: int,
    focal: wp.vec2,
    principal: wp.vec2,
    rotation: wp.mat33,
    eye: wp.vec3,
    floor_z: float,
    centre: wp.vec2,
    reach: float,
    kind: int,
    tile: float,
    light: wp.array2d(dtype=float),
    origin: wp.vec2,
    cell: float,
    unshadowed: float,
    base: wp.vec3,
):
    r, col = wp.tid()
    row = r + first_row
    if pixels[row, col] == wp.uint8(0):
        return
    ray = wp.vec3((float(col) + 0.5 - principal[0]) / focal[0], (float(row) + 0.5 - principal[1]) / focal[1], 1.0)
    d = rotation * ray
    if d[2] >= 0.0:
        return
    t = (floor_z - eye[2]) / d[2]
    x = eye[0] + d[0] * t
    y = eye[1] + d[1] * t
    if wp.abs(x - centre[0]) >= reach or wp.abs(y - centre[1]) >= reach:
        return
    norm2 = wp.dot(d, d)
    # Metres of floor under one pixel: distance / focal length, stretched at grazing angles.
    footprint = t * norm2 / (focal[1] * wp.max(-d[2], 0.05 * wp.sqrt(norm2)))
    grey = _pattern(kind, x, y, footprint, tile)
    lit = _bilinear(light, (x - origin[0]) / cell - 0.5, (y - origin[1]) / cell - 0.5, unshadowed)
    c = base * (grey * lit)
    background[r, col] = wp.vec3(wp.min(c[0], 1.0), wp.min(c[1], 1.0), wp.min(c[2], 1.0))
