"""Writing samples to disk: PNGs plus a ground-truth JSON per sample."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from simulator.errors import ParamError
from simulator.params import SceneParams
from simulator.parts import DENSEPOSE_PARTS

# A fixed palette so part maps are readable as images.
_PALETTE = (np.array(
    [[0, 0, 0]] + [[int(c) for c in np.array([
        (37 * i) % 256, (97 * i + 60) % 256, (151 * i + 120) % 256])] for i in range(1, 25)]
)).astype(np.uint8)


def load_params(path: str | os.PathLike) -> SceneParams:
    p = Path(path)
    if not p.is_file():
        raise ParamError(f"scene file {p} does not exist; write one with `examiner sample --out DIR` or see README")
    return SceneParams.from_json(p.read_text())


def write_sample(sample, out_dir: str | os.PathLike, stem: str) -> dict[str, str]:
    """Write rgb / mask / parts / depth PNGs and ground truth JSON; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "rgb": out / f"{stem}_rgb.png",
        "mask": out / f"{stem}_mask.png",
        "parts": out / f"{stem}_parts.png",
        "parts_color": out / f"{stem}_parts_color.png",
        "depth": out / f"{stem}_depth.png",
        "gt": out / f"{stem}_gt.json",
    }
    Image.fromarray(sample.rgb).save(paths["rgb"])
    Image.fromarray((sample.mask * 255).astype(np.uint8)).save(paths["mask"])
    Image.fromarray(sample.parts).save(paths["parts"])
    Image.fromarray(_PALETTE[sample.parts]).save(paths["parts_color"])
    if getattr(sample, "clothing_mask", None) is not None and sample.clothing_mask.any():
        paths["clothing"] = out / f"{stem}_clothing.png"
        Image.fromarray((sample.clothing_mask * 255).astype(np.uint8)).save(paths["clothing"])
    # Depth as 16-bit millimetres (0 = no surface).
    Image.fromarray(np.clip(sample.depth * 1000.0, 0, 65535).astype(np.uint16)).save(paths["depth"])
    gt = sample.ground_truth()
    gt["files"] = {k: v.name for k, v in paths.items() if k != "gt"}
    gt["depth_png_units"] = "millimetres, uint16, 0 = no surface"
    gt["parts_names"] = list(DENSEPOSE_PARTS)
    tmp = paths["gt"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(gt, indent=1))
    tmp.replace(paths["gt"])
    return {k: str(v) for k, v in paths.items()}
