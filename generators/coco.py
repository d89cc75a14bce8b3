"""COCO / DensePose-COCO encoders: pure functions over arrays (tested alone)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from simulator.body import COCO17
from simulator.parts import COARSE_REGIONS, REGION_NAMES

COCO_SKELETON = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]
PERSON_CATEGORY = {
    "id": 1,
    "name": "person",
    "supercategory": "person",
    "keypoints": list(COCO17),
    "skeleton": COCO_SKELETON,
}
# DensePose's coarse segmentation (dp_masks) order: 1 torso, 2 right hand, 3 left hand,
# 4 left foot, 5 right foot, 6 upper leg right, 7 upper leg left, 8 lower leg right,
# 9 lower leg left, 10 upper arm left, 11 upper arm right, 12 lower arm left,
# 13 lower arm right, 14 head -- the order of simulator.parts.COARSE_REGIONS.
DP_MASK_SIZE = 256
FINE_TO_COARSE = np.zeros(25, dtype=np.uint8)
for _c, _name in enumerate(REGION_NAMES, start=1):
    for _p in set(COARSE_REGIONS[_name]):
        FINE_TO_COARSE[_p] = _c


def encode_rle(mask: np.ndarray) -> dict:
    """(H, W) bool -> COCO compressed RLE with `counts` as str (JSON-ready)."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_util

    r = {"size": rle["size"], "counts": rle["counts"].encode("ascii") if isinstance(rle["counts"], str) else rle["counts"]}
    return mask_util.decode(r).astype(bool)


def bbox_xywh(mask: np.ndarray) -> list[float]:
    """Tight integer box [x, y, w, h] of a non-empty mask (pixel edges)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)]


def coco_keypoints(xy: np.ndarray, visibility: np.ndarray) -> tuple[list[float], int]:
    """(17, 2) pixels + simulator visibility (0 out of frame, 1 occluded, 2 visible) ->
    COCO's flat [x, y, v] * 17 (v: 0 not labelled, 1 labelled but not visible, 2 visible;
    x = y = 0 when v = 0) and num_keypoints."""
    out: list[float] = []
    for (x, y), v in zip(np.asarray(xy, dtype=np.float64), np.asarray(visibility)):
        v = int(v)
        out += [round(float(x), 2), round(float(y), 2), v] if v > 0 else [0.0, 0.0, 0]
    return out, int(np.sum(np.asarray(visibility) > 0))


def box_grid(box: Sequence[float], size: int = DP_MASK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Image pixel (row, col) sampled by each cell of a size x size canvas laid over
    `box` ([x, y, w, h], integers): the pixel under each cell's centre."""
    x0, y0, w, h = (int(round(v)) for v in box)
    cols = x0 + np.floor((np.arange(size) + 0.5) * w / size).astype(np.int64)
    rows = y0 + np.floor((np.arange(size) + 0.5) * h / size).astype(np.int64)
    return rows, cols


def dp_masks(parts: np.ndarray, box: Sequence[float]) -> list:
    """DensePose's 14 coarse-part masks of one person on a 256 x 256 canvas over `box`.

    parts: (H, W) uint8 fine part labels 0..24 of this person. Each entry is a compressed
    RLE dict, or [] where the part does not appear (as in DensePose-COCO)."""
    rows, cols = box_grid(box)
    H, W = parts.shape
    canvas = FINE_TO_COARSE[parts[np.clip(rows, 0, H - 1)[:, None], np.clip(cols, 0, W - 1)[None, :]]]
    out: list = []
    for c in range(1, 15):
        m = canvas == c
        out.append(encode_rle(m) if m.any() else [])
    return out


def decode_dp_masks(masks: Sequence) -> np.ndarray:
    """The inverse of `dp_masks`: (256, 256) uint8 coarse labels 0..14 (as DensePose's
    GetDensePoseMask)."""
    canvas = np.zeros((DP_MASK_SIZE, DP_MASK_SIZE), dtype=np.uint8)
    for c, rle in enumerate(masks, start=1):
        if rle:
            canvas[decode_rle(rle)] = c
    return canvas


def dp_points(
    x: np.ndarray, y: np.ndarray, part: np.ndarray, uv: np.ndarray, box: Sequence[float]
) -> dict[str, list[float]]:
    """DensePose point annotations.

    x, y: (N,) image coordinates in pixels (top-left pixel centre at 0.5); part (N,) 1..24;
    uv (N, 2) in [0, 1]; box: [x, y, w, h]. dp_x, dp_y are in [0, 255] relative to the box
    (DensePose: x = box_x + dp_x / 255 * box_w)."""
    x0, y0, w, h = box
    return {
        "dp_I": np.asarray(part, dtype=np.float64).tolist(),
        "dp_U": np.round(uv[:, 0].astype(np.float64), 6).tolist(),
        "dp_V": np.round(uv[:, 1].astype(np.float64), 6).tolist(),
        "dp_x": np.round((np.asarray(x, dtype=np.float64) - x0) / w * 255.0, 4).tolist(),
        "dp_y": np.round((np.asarray(y, dtype=np.float64) - y0) / h * 255.0, 4).tolist(),
    }


def coco_dataset(images: list[dict], annotations: list[dict], categories: list[dict], info: dict[str, Any]) -> dict:
    """A COCO dataset dict; annotation ids are assigned here (1..N in order)."""
    anns = []
    for i, a in enumerate(annotations, start=1):
        anns.append({"id": i, **a})
    return {"info": info, "licenses": [], "images": images, "annotations": anns, "categories": categories}
