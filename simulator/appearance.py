"""Colours and backgrounds: pure functions of the scene parameters (deterministic)."""

from __future__ import annotations

import colorsys
import hashlib
from pathlib import Path

import numpy as np

from simulator.errors import ParamError
from simulator.params import BackgroundParams

# Skin albedo from light to dark (sRGB, 0..1), loosely following the Fitzpatrick scale.
_SKIN = np.array(
    [
        [0.97, 0.83, 0.74],
        [0.91, 0.72, 0.60],
        [0.80, 0.60, 0.46],
        [0.63, 0.44, 0.31],
        [0.45, 0.30, 0.20],
        [0.28, 0.18, 0.12],
    ]
)


def skin_rgb(tone: float) -> np.ndarray:
    """tone in [0, 1] -> (3,) sRGB albedo in [0, 1]."""
    t = float(np.clip(tone, 0.0, 1.0)) * (len(_SKIN) - 1)
    i = min(int(t), len(_SKIN) - 2)
    return _SKIN[i] * (1 - (t - i)) + _SKIN[i + 1] * (t - i)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(float(h) % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))))


def _seed(bg: BackgroundParams) -> int:
    key = f"{bg.kind}:{bg.hue:.6f}:{bg.saturation:.6f}:{bg.value:.6f}:{bg.texture_scale:.6f}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1], (h, w), `cells` lattice cells across."""
    grid = rng.random((cells + 2, cells + 2))
    ys = np.linspace(0, cells, h, endpoint=False)
    xs = np.linspace(0, cells, w, endpoint=False)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = ys - y0, xs - x0
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    top = a + (b - a) * fx[None]
    bot = c + (d - c) * fx[None]
    return top + (bot - top) * fy[:, None]


def _list_images(folder: Path) -> list[Path]:
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts)


def background_image(bg: BackgroundParams, width: int, height: int, folder: str | None = None,
                     hdri_placeholder: bool = False) -> np.ndarray:
    """(H, W, 3) float32 sRGB in [0, 1]. kind "hdri" is Blender's environment map: an
    error here, unless `hdri_placeholder` (a pass whose RGB Blender redraws), which gives
    the solid colour."""
    base = hsv(bg.hue, bg.saturation, bg.value)
    if bg.kind == "hdri":
        if not hdri_placeholder:
            raise ParamError("background.kind 'hdri' (the environment map) is drawn by the Blender renderer only; "
                             "use --renderer blender or a background kind pyrender draws (solid, noise, checker, image)")
        return np.broadcast_to(base.astype(np.float32), (height, width, 3)).copy()
    if bg.kind == "solid":
        return np.broadcast_to(base.astype(np.float32), (height, width, 3)).copy()
    if bg.kind == "noise":
        rng = np.random.default_rng(_seed(bg))
        cells = int(round(2 + (1.0 - bg.texture_scale) * 30))
        n = 0.6 * _value_noise(rng, height, width, cells) + 0.4 * _value_noise(rng, height, width, cells * 3)
        other = hsv(bg.hue + 0.08, bg.saturation * 0.7, bg.value * 0.45)
        return (base[None, None] * n[..., None] + other[None, None] * (1 - n[..., None])).astype(np.float32)
    if bg.kind == "checker":
        size = max(2, int(round(4 + bg.texture_scale * 60)))
        yy, xx = np.mgrid[0:height, 0:width]
        check = ((yy // size + xx // size) % 2).astype(np.float32)[..., None]
        other = hsv(bg.hue + 0.5, bg.saturation, 1.0 - 0.8 * bg.value)
        return (base * check + other * (1 - check)).astype(np.float32)
    if bg.kind == "image":
        if not folder:
            raise ParamError("background.kind 'image' needs a background folder; pass --backgrounds DIR")
        path = Path(folder)
        files = _list_images(path) if path.is_dir() else []
        if not files:
            raise ParamError(f"no images (png/jpg) in background folder {folder}; add some or use another kind")
        from PIL import Image

        f = files[min(int(bg.image_index * len(files)), len(files) - 1)]
        im = Image.open(f).convert("RGB")
        # Cover-crop to the target aspect ratio, then resize.
        sw, sh = im.size
        scale = max(width / sw, height / sh)
        im = im.resize((max(width, int(np.ceil(sw * scale))), max(height, int(np.ceil(sh * scale)))), Image.BILINEAR)
        left = (im.size[0] - width) // 2
        top = (im.size[1] - height) // 2
        im = im.crop((left, top, left + width, top + height))
        return np.asarray(im, dtype=np.float32) / 255.0
    raise ParamError(f"unknown background kind {bg.kind!r}")

