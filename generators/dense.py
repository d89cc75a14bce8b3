"""UltraPose-style dense correspondence datasets in the DensePose-COCO format.

Per image: the RGB image, a full-resolution IUV PNG (R = part 1..24, G = 255 U, B = 255 V,
0 on the background) and a vertex-index PNG (uint16, mesh vertex id + 1, 0 on the
background; continuous-surface-embedding style). Per person, a DensePose-COCO
annotation: bbox, 17 COCO keypoints, dp_I / dp_U / dp_V / dp_x / dp_y at `points` pixel
centres sampled uniformly without replacement from the visible body (all of them when
the body has fewer pixels, or when points = 0), and the 14 coarse-part dp_masks on a
256 x 256 canvas over the box. U / V are exact per pixel (simulator.iuv).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from generators import base, coco
from generators.base import CommonConfig, GeneratorSpec
from generators.errors import GeneratorError
from generators.scenes import SceneSampler, SceneSource

# Keep the person large enough for UltraPose-like density at 256 x 256 (only applied to
# dimensions that are in the sampled space).
DENSE_BOUNDS = (("camera.framing", 0.55, 0.9), ("camera.truncation", 0.0, 0.1), ("camera.offset_x", -0.1, 0.1),
                ("camera.offset_y", -0.1, 0.1))
MIN_PERSON_PIXELS = 64
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class DenseConfig(CommonConfig):
    """points: DensePose points per person (0 = every visible body pixel); space: groups
    sampled uniformly; from_run / mode_share: sample failure-mode boxes of a search run
    instead (mode_share of them, the rest from the run's whole space). Image format, JPEG
    quality and OpenGL backend: `CommonConfig`."""

    points: int = 2600
    space: str = "pose,shape,camera,light,background"
    from_run: str | None = None
    mode_share: float = 1.0
    schema_version: int = 1

    def check(self) -> None:
        super().check()
        if self.points < 0:
            raise GeneratorError(f"--points must be >= 0 (0 = every body pixel), got {self.points}")


def scene_source(config) -> SceneSource:
    from simulator.params import ParamSpace

    bounds = ()
    if not config.from_run:
        names = set(ParamSpace.from_groups(config.space).names)
        bounds = tuple(b for b in DENSE_BOUNDS if b[0] in names)
    return SceneSource(space=config.space, bounds=bounds, from_run=config.from_run,
                       mode_share=config.mode_share, size=config.size)


def encode_image(rgb: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpg":
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    else:
        Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def select_points(n_candidates: int, points: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `points` candidates drawn without replacement (all of them when
    points is 0 or exceeds the candidates)."""
    if points and points < n_candidates:
        return np.sort(rng.choice(n_candidates, size=points, replace=False))
    return np.arange(n_candidates)


def candidate_points(renderer, sample, points: int):
    """The body's visible pixel centres, plus exact sub-pixel samples from extra face-id
    passes (simulator.iuv.SUBPIXEL_OFFSETS) while there are fewer than `points`."""
    from simulator.iuv import SUBPIXEL_OFFSETS

    pts = renderer.last_maps.points
    xs, ys, part, uv = [pts.x], [pts.y], [pts.part], [pts.uv]
    n, extra = len(pts.x), 0
    if points and 0 < n < points:
        extra = min(len(SUBPIXEL_OFFSETS), int(np.ceil(points / n)) - 1)
        sub = renderer.subpixel_points(SUBPIXEL_OFFSETS[:extra])
        xs.append(sub.x), ys.append(sub.y), part.append(sub.part), uv.append(sub.uv)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(part), np.concatenate(uv), extra


class DenseWriter(base.SampleWriter):
    def __init__(self, config: DenseConfig) -> None:
        from simulator.iuv import get_dense_renderer
        from simulator.renderer import RenderConfig

        self.config = config
        self.sampler = SceneSampler(scene_source(config))
        self.renderer = get_dense_renderer(RenderConfig(gl_backend=config.gl))
        self.recolour = base.blender_recolour(config, self.renderer)

    batch_size = 16  # the body model runs batched over this many samples

    def write_batch(self, indices, rngs, shard_dir: Path, rel_dir: str) -> list[dict]:
        """Scenes are drawn first (each from its own rng), rendered with one batched body
        forward, then annotated; a sample whose person is not visible draws a new scene
        from its rng (the same sequence a batch of one would give)."""
        drawn = [self.sampler.sample(r, i) for i, r in zip(indices, rngs)]
        records: list[dict | None] = [None] * len(indices)

        def emit(k: int, sample, attempt: int):
            if sample.mask.sum() >= MIN_PERSON_PIXELS or attempt == MAX_ATTEMPTS:
                params, info = drawn[k]
                sample = self.recolour(sample)
                records[k] = self._emit(indices[k], rngs[k], sample, params, {**info, "attempts": attempt},
                                        shard_dir, rel_dir)

        self.renderer.render_each([p for p, _ in drawn], lambda k, s: emit(k, s, 1))
        for k in range(len(indices)):
            attempt = 1
            while records[k] is None:
                attempt += 1
                drawn[k] = self.sampler.sample(rngs[k], indices[k])
                self.renderer.render_each([drawn[k][0]], lambda _, s: emit(k, s, attempt))
        return records

    def _emit(self, index: int, rng, sample, params, info: dict, shard_dir: Path, rel_dir: str) -> dict:
        c = self.config
        stem = f"{index:09d}"
        ext = c.image_format
        files = {
            "image": f"images/{stem}.{ext}",
            "iuv": f"iuv/{stem}.png",
            "vertex_ids": f"vertex_ids/{stem}.png",
        }
        from simulator.iuv import iuv_to_png_array

        blobs = {
            "image": encode_image(sample.rgb, ext, c.jpeg_quality),
            "iuv": encode_png(iuv_to_png_array(sample.iuv)),
            "vertex_ids": encode_png((sample.vertex_ids + 1).astype(np.uint16)),
        }
        for key, rel in files.items():
            p = Path(shard_dir) / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(blobs[key])
        H, W = sample.mask.shape
        image_id = index + 1
        image = {
            "id": image_id,
            "file_name": f"{rel_dir}/{files['image']}",
            "width": int(W),
            "height": int(H),
            "iuv_file": f"{rel_dir}/{files['iuv']}",
            "vertex_ids_file": f"{rel_dir}/{files['vertex_ids']}",
        }
        annotations = []
        extra = 0
        if sample.mask.any():
            box = coco.bbox_xywh(sample.mask)
            x, y, part, uv, extra = candidate_points(self.renderer, sample, c.points)
            keep = select_points(len(x), c.points, rng)
            kp = sample.keypoints["coco17"]
            keypoints, num = coco.coco_keypoints(kp.xy, kp.visibility)
            ann = {
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": box,
                "area": float(sample.mask.sum()),
                "segmentation": coco.encode_rle(sample.mask),
                "keypoints": keypoints,
                "num_keypoints": num,
                **coco.dp_points(x[keep], y[keep], part[keep], uv[keep], box),
                "dp_masks": coco.dp_masks(sample.parts, box),
            }
            annotations.append(ann)
        return {
            "index": index,
            "image": image,
            "annotations": annotations,
            "scene": params.to_dict(),
            "source": info,
            "points": int(len(annotations[0]["dp_I"])) if annotations else 0,
            "foreground_pixels": int(sample.mask.sum()),
            "subpixel_passes": extra,
        }


def prepare(config: DenseConfig) -> None:
    config.check()
    SceneSampler(scene_source(config))


def merge_coco(config, out: Path, categories: list[dict], description: str) -> dict:
    """Merge all shards' records into annotations.json (COCO) and scenes.jsonl."""
    out = Path(out)
    images, annotations = [], []
    scenes = []
    for shard in base.iter_shards(out):
        for r in shard["records"]:
            images.append(r["image"])
            annotations += r["annotations"]
            scenes.append(base.dumps({"image_id": r["image"]["id"], "index": r["index"], "scene": r["scene"],
                                      "source": r["source"]}))
    info = {"description": description, "version": "1.0", "generator": "poseexaminer",
            "seed": config.seed, "n": config.n}
    data = coco.coco_dataset(images, annotations, categories, info)
    base.atomic_write_text(out / "annotations.json", base.dumps(data))
    base.atomic_write_text(out / "scenes.jsonl", "\n".join(scenes) + "\n")
    return {"annotations": "annotations.json", "scenes": "scenes.jsonl", "images": len(images),
            "annotations_count": len(annotations)}


def finalize(config: DenseConfig, out: Path) -> dict:
    merged = merge_coco(config, out, [coco.PERSON_CATEGORY], "PoseExaminer dense correspondence (DensePose-COCO format)")
    pts = [r["points"] for s in base.iter_shards(out) for r in s["records"] if r["annotations"]]
    merged["points_per_person"] = {"mean": float(np.mean(pts)) if pts else 0.0, "min": int(min(pts)) if pts else 0}
    return merged


LAYOUT = {
    "annotations.json": "DensePose-COCO: images, annotations (bbox, keypoints, dp_I/U/V/x/y, dp_masks), categories",
    "scenes.jsonl": "per image: SceneParams, scene source (base / failure mode), sample index",
    "shards/shard-NNNNN/images/": "RGB images (jpg or png)",
    "shards/shard-NNNNN/iuv/": "IUV PNG: R = part 1..24, G = round(255 U), B = round(255 V), 0 = background",
    "shards/shard-NNNNN/vertex_ids/": "uint16 PNG: mesh vertex index + 1 nearest the pixel's surface point, 0 = background",
    "shards/shard-NNNNN/shard.json": "the shard's records (the source of annotations.json)",
}

SPEC = GeneratorSpec(
    name="dense", config_class=DenseConfig, writer=DenseWriter, prepare=prepare, finalize=finalize, layout=LAYOUT
)


def load_annotations(out: str | Path) -> dict:
    return json.loads((Path(out) / "annotations.json").read_text())
