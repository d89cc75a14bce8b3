"""Skeleton overlays and contact sheets (PIL only)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from simulator.sample import OCCLUDED, VISIBLE

COCO_EDGES = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)
H36M_EDGES = (
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
    (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
)
EDGES = {"coco17": COCO_EDGES, "h36m17": H36M_EDGES}


def draw_skeleton(
    image: Image.Image,
    xy: np.ndarray,
    edges: Sequence[tuple[int, int]],
    visibility: np.ndarray | None = None,
    color: tuple[int, int, int] = (40, 220, 60),
    width: int = 2,
) -> Image.Image:
    """Draw joints (J, 2) pixels and edges on `image` in place. Occluded joints are drawn
    hollow; joints out of frame are skipped."""
    draw = ImageDraw.Draw(image)
    vis = np.full(len(xy), VISIBLE) if visibility is None else np.asarray(visibility)
    for a, b in edges:
        if vis[a] > 0 and vis[b] > 0:
            draw.line([tuple(xy[a]), tuple(xy[b])], fill=color, width=width)
    r = max(2, width + 1)
    for j, (x, y) in enumerate(xy):
        if vis[j] == VISIBLE:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
        elif vis[j] == OCCLUDED:
            draw.ellipse([x - r, y - r, x + r, y + r], outline=color, width=1)
    return image


def contact_sheet(images: Sequence[Image.Image], columns: int = 4, pad: int = 2) -> Image.Image:
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    w, h = images[0].size
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad) + pad), (20, 20, 20))
    for i, im in enumerate(images):
        sheet.paste(im, (pad + (i % columns) * (w + pad), pad + (i // columns) * (h + pad)))
    return sheet


def sample_overlay(sample, convention: str = "coco17") -> Image.Image:
    kp = sample.keypoints[convention]
    return draw_skeleton(Image.fromarray(sample.rgb), kp.xy, EDGES[convention], kp.visibility)
