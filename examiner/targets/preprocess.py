"""Image preprocessing shared by adapters: person crops and their inverse mapping.

Pixel convention (as in ``simulator.sample``): continuous coordinates with the top-left
corner of the image at (0, 0), so pixel (i, j) has its centre at (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import numpy as np


def crop_region(box: np.ndarray, out_hw: tuple[int, int], scale: float = 1.2) -> np.ndarray:
    """box (4,) xyxy px -> region (4,) xyxy px centred on the box, ``scale`` times larger,
    widened or heightened to the output aspect ratio (so nothing is stretched)."""
    x1, y1, x2, y2 = [float(v) for v in box]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = max(x2 - x1, 1.0) * scale, max(y2 - y1, 1.0) * scale
    aspect = out_hw[1] / out_hw[0]
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


def crop_and_resize(image: np.ndarray, region: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """image (H, W, 3) uint8, region (4,) xyxy px -> (h, w, 3) float32 in [0, 255], bilinear,
    zeros outside the image."""
    h_out, w_out = out_hw
    h, w = image.shape[:2]
    x0, y0, x1, y1 = region
    xs = x0 + (np.arange(w_out) + 0.5) * (x1 - x0) / w_out - 0.5  # array index coordinates
    ys = y0 + (np.arange(h_out) + 0.5) * (y1 - y0) / h_out - 0.5
    img = image.astype(np.float32)
    xi0 = np.floor(xs).astype(int)
    yi0 = np.floor(ys).astype(int)
    fx = (xs - xi0).astype(np.float32)
    fy = (ys - yi0).astype(np.float32)
    out = np.zeros((h_out, w_out, 3), np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        yy = yi0 + dy
        vy = (yy >= 0) & (yy < h)
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xx = xi0 + dx
            vx = (xx >= 0) & (xx < w)
            patch = img[np.clip(yy, 0, h - 1)][:, np.clip(xx, 0, w - 1)]
            weight = (wy * vy)[:, None] * (wx * vx)[None, :]
            out += patch * weight[..., None]
    return out


def crop_to_image(points: np.ndarray, region: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """points (..., 2) in crop pixels -> image pixels."""
    x0, y0, x1, y1 = region
    sx, sy = (x1 - x0) / out_hw[1], (y1 - y0) / out_hw[0]
    pts = np.asarray(points, dtype=np.float64)
    return np.stack([x0 + pts[..., 0] * sx, y0 + pts[..., 1] * sy], axis=-1)


def crop_intrinsics(K: np.ndarray, region: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """K (3, 3) of the image -> K of the crop (what a camera-aware model should be given)."""
    x0, y0, x1, y1 = region
    sx, sy = out_hw[1] / (x1 - x0), out_hw[0] / (y1 - y0)
    A = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy], [0, 0, 1]])
    return (A @ np.asarray(K, dtype=np.float64)).astype(np.float32)
