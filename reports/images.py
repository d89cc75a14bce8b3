"""Gallery images: re-render a run's scenes from their vectors (rendering is
deterministic), draw ground-truth and predicted skeletons, encode small data: URIs.

Predictions drawn here come from the evaluation record, when the evaluator stored them:

    record["prediction"] = {"coco17_xy": [[x, y] | null, ...]}   # pixels in the render
    record["joint_errors"] = {"joints": [name, ...], "mm": [...], "px": [...]}  # optional

(any ``<convention>_xy`` of ``simulator.overlay.EDGES`` works; null marks a joint the
model did not predict). Both are also read from ``record["extra"]`` (where
``Outcome.extra`` may be logged). Without them the gallery shows the ground truth only.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from simulator.overlay import EDGES, draw_skeleton

GT_COLOUR = (40, 220, 60)
PRED_COLOUR = (235, 50, 50)


def data_uri(image: Image.Image, fmt: str = "JPEG", quality: int = 72, max_side: int | None = None) -> str:
    """Encode a PIL image as a data: URI (JPEG or WEBP, lossy; PNG lossless)."""
    im = image.convert("RGB")
    if max_side and max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    fmt = fmt.upper()
    if fmt == "PNG":
        im.save(buf, "PNG", optimize=True)
    else:
        im.save(buf, fmt, quality=quality, **({"optimize": True, "progressive": True} if fmt == "JPEG" else {"method": 4}))
    mime = {"JPEG": "jpeg", "WEBP": "webp", "PNG": "png"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def record_field(record: dict | None, name: str) -> Any:
    """record[name], else record["extra"][name], else None."""
    record = record or {}
    value = record.get(name)
    if value is None and isinstance(record.get("extra"), dict):
        value = record["extra"].get(name)
    return value


def prediction_xy(record: dict | None) -> tuple[str, np.ndarray] | None:
    """(convention, (J, 2) pixels with NaN for missing joints) from a record, or None."""
    pred = record_field(record, "prediction") or {}
    for conv in EDGES:
        xy = pred.get(f"{conv}_xy")
        if xy is None:
            continue
        arr = np.array([[np.nan, np.nan] if p is None else p for p in xy], dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] == 2 and len(arr) > 0:
            return conv, arr
    return None


def joint_errors(record: dict | None) -> dict[str, dict[str, float]]:
    """{"mm": {joint: value}, "px": {joint: value}} from a record (finite values only)."""
    je = record_field(record, "joint_errors") or {}
    names = je.get("joints") or []
    out: dict[str, dict[str, float]] = {}
    for unit in ("mm", "px"):
        vals = je.get(unit)
        if not vals or len(vals) != len(names):
            continue
        out[unit] = {str(n): float(v) for n, v in zip(names, vals) if v is not None and math.isfinite(float(v))}
    return out


@dataclass
class GalleryItem:
    """raw / overlay: data URIs; errors: top joints (name, value, unit), worst first;
    has_prediction: whether a predicted skeleton is drawn."""

    raw: str
    overlay: str
    has_prediction: bool
    errors: list[tuple[str, float, str]] = field(default_factory=list)


def person_crop(sample: Any, margin: float = 0.15, min_side: int = 48) -> tuple[int, int, int]:
    """Square crop (x0, y0, side) in pixels around the person: the union of the visible
    mask's box and the in-frame ground-truth keypoints, grown by `margin`, clipped to the
    image where possible."""
    H, W = sample.rgb.shape[:2]
    kp = sample.keypoints["coco17"]
    xy = np.asarray(kp.xy, float)[np.asarray(kp.visibility) > 0]
    boxes = []
    if len(xy):
        boxes.append([*xy.min(0), *xy.max(0)])
    bb = np.asarray(sample.bbox, float)
    if bb[2] > bb[0] and bb[3] > bb[1]:
        boxes.append(list(bb))
    if not boxes:
        return 0, 0, max(W, H)
    b = np.array(boxes)
    x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = int(round(min(max(side, min_side), max(W, H))))
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    x = int(round(min(max(cx - side / 2, 0), max(W - side, 0))))
    y = int(round(min(max(cy - side / 2, 0), max(H - side, 0))))
    return x, y, side


def overlay_image(sample: Any, record: dict | None, convention: str = "coco17", size: int = 192,
                  crop: bool = True) -> tuple[Image.Image, bool]:
    """The render zoomed on the person (`person_crop`) at `size` pixels, with the
    ground-truth skeleton (green) and, when the record has one, the predicted skeleton
    (red) drawn at that scale; joints with a per-joint error get a yellow ring scaled by
    it. Returns (image, whether a prediction was drawn)."""
    x0, y0, side = person_crop(sample) if crop else (0, 0, max(sample.rgb.shape[:2]))
    im = Image.fromarray(sample.rgb).convert("RGB").crop((x0, y0, x0 + side, y0 + side))
    im = im.resize((size, size), Image.Resampling.LANCZOS)
    scale = size / side

    def to_crop(xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, float) - [x0, y0]) * scale

    kp = sample.keypoints[convention]
    gt_xy = to_crop(kp.xy)
    draw_skeleton(im, gt_xy, EDGES[convention], kp.visibility, color=GT_COLOUR, width=2)
    pred = prediction_xy(record)
    drawn = False
    if pred is not None:
        conv, xy = pred
        if conv in sample.keypoints and len(xy) == len(sample.keypoints[conv].names):
            vis = np.where(np.isfinite(xy).all(1), 2, 0)
            draw_skeleton(im, np.nan_to_num(to_crop(xy)), EDGES[conv], vis, color=PRED_COLOUR, width=2)
            drawn = True
    errs = joint_errors(record)
    unit = "px" if "px" in errs else ("mm" if "mm" in errs else None)
    if unit:
        names = list(kp.names)
        vals = errs[unit]
        top = max(vals.values(), default=1.0) or 1.0
        d = ImageDraw.Draw(im)
        for name, v in vals.items():
            if name in names:
                x, y = gt_xy[names.index(name)]
                r = 3 + 9 * v / top
                d.ellipse([x - r, y - r, x + r, y + r], outline=(255, 200, 0), width=1)
    return im, drawn


def gallery_items(samples: Sequence[Any], records: Sequence[dict | None], quality: int = 72,
                  size: int = 192) -> list[GalleryItem]:
    """Per sample: the whole render and the zoomed skeleton overlay, `size` pixels each."""
    out = []
    for s, rec in zip(samples, records):
        over, drawn = overlay_image(s, rec, size=size)
        errs = joint_errors(rec)
        unit = "mm" if "mm" in errs else ("px" if "px" in errs else None)
        top = sorted(errs.get(unit, {}).items(), key=lambda kv: -kv[1])[:4] if unit else []
        out.append(GalleryItem(
            raw=data_uri(Image.fromarray(s.rgb), quality=quality, max_side=size),
            overlay=data_uri(over, quality=quality),
            has_prediction=drawn,
            errors=[(n, v, unit or "") for n, v in top],
        ))
    return out


def render_scenes(params_list: Sequence[Any], size: int = 256) -> list[Any]:
    """Render scenes at `size` x `size` pixels (aspect kept from the scene's camera) in
    one batch. Raises the simulator's RenderError when no GL backend works."""
    from simulator.renderer import render_batch

    scenes = []
    for p in params_list:
        cam = p.camera
        s = size / max(cam.width, cam.height)
        scenes.append(p.replace(camera=type(cam)(**{**cam.__dict__, "width": max(8, round(cam.width * s)),
                                                     "height": max(8, round(cam.height * s))})))
    return render_batch(scenes) if scenes else []


def scale_prediction(record: dict | None, from_size: tuple[int, int], to_size: tuple[int, int]) -> dict | None:
    """A copy of the record with predicted pixel coordinates rescaled from the original
    render size to the thumbnail size (same aspect, the principal point at the centre)."""
    pred = record_field(record, "prediction")
    if not pred or from_size == to_size:
        return record
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    scaled = {}
    for k, v in pred.items():
        if k.endswith("_xy") and isinstance(v, list):
            scaled[k] = [None if p is None else [p[0] * sx, p[1] * sy] for p in v]
        else:
            scaled[k] = v
    return {**record, "prediction": scaled}  # type: ignore[dict-item]
