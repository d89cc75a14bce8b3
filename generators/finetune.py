"""Fine-tuning sets from a search run's failure regions.

Scenes are drawn uniformly inside the run's failure-mode boxes (in the run's own
normalised parameter space; each sample picks one mode uniformly), and a `base_share` of
them uniformly from the run's whole space so a fine-tuned model does not forget the rest.
Each sample carries what a pose / shape regressor trains on: COCO keypoints (2D, with
visibility), H36M-17 joints and the anatomical joint centres in the camera frame (metres),
the body parameters (anatomical pose angles and phenotypes), camera intrinsics and
extrinsics, the scene parameters and where the scene came from (mode id or base).

Outputs: `annotations.json` (COCO person keypoints; each annotation also has
`keypoints_3d`, `joints_3d` and `body`), `samples.jsonl` (one line per image with
everything) and `labels.npz` (the same as arrays, for training scripts; `load_finetune`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators import base, coco
from generators.dense import encode_image
from generators.base import CommonConfig, GeneratorSpec
from generators.errors import GeneratorError
from generators.scenes import SceneSampler, SceneSource, run_summary

MIN_PERSON_PIXELS = 64
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class FinetuneConfig(CommonConfig):
    """from_run: the search run directory; base_share: fraction of samples drawn from the
    run's whole space instead of its failure modes; mode_region: "box", "need" or
    "failures" (where the other samples are drawn: `generators.scenes.SceneSource`). Image format, JPEG quality and OpenGL
    backend: `CommonConfig`."""

    from_run: str = ""
    base_share: float = 0.2
    mode_region: str = "box"
    schema_version: int = 1

    def check(self) -> None:
        super().check()
        if not self.from_run:
            raise GeneratorError("finetune needs --from-run RUN_DIR (a search run with failure modes)")
        if not 0.0 <= self.base_share <= 1.0:
            raise GeneratorError(f"--base-share must be in [0, 1], got {self.base_share}")
        from generators.scenes import MODE_REGIONS

        if self.mode_region not in MODE_REGIONS:
            raise GeneratorError(f"--mode-region must be one of {', '.join(MODE_REGIONS)}, got {self.mode_region!r}")


def _source(config: FinetuneConfig) -> SceneSource:
    return SceneSource(from_run=config.from_run, mode_share=1.0 - config.base_share, size=config.size,
                       mode_region=config.mode_region)


class FinetuneWriter(base.SampleWriter):
    batch_size = 16

    def __init__(self, config: FinetuneConfig) -> None:
        from simulator.iuv import get_dense_renderer
        from simulator.renderer import RenderConfig

        self.config = config
        self.sampler = SceneSampler(_source(config))
        # The dense renderer batches the body model in fixed-size chunks, so a sample is
        # bitwise the same however samples are grouped (regeneration alone).
        self.renderer = get_dense_renderer(RenderConfig(gl_backend=config.gl))
        self.recolour = base.blender_recolour(config, self.renderer)

    def write_batch(self, indices, rngs, shard_dir: Path, rel_dir: str) -> list[dict]:
        drawn = [self.sampler.sample(r, i) for i, r in zip(indices, rngs)]
        samples: list = [None] * len(indices)

        def keep(k: int, sample, attempt: int) -> None:
            if sample.mask.sum() >= MIN_PERSON_PIXELS or attempt == MAX_ATTEMPTS:
                samples[k] = (self.recolour(sample), attempt)

        self.renderer.render_each([p for p, _ in drawn], lambda k, s: keep(k, s, 1))
        for k in range(len(indices)):
            attempt = 1
            while samples[k] is None:
                attempt += 1
                drawn[k] = self.sampler.sample(rngs[k], indices[k])
                self.renderer.render_each([drawn[k][0]], lambda _, s: keep(k, s, attempt))
        return [self._emit(i, drawn[k], *samples[k], shard_dir, rel_dir) for k, i in enumerate(indices)]

    def _emit(self, index: int, drawn, sample, attempt: int, shard_dir: Path, rel_dir: str) -> dict:
        from simulator.body import JOINT_NAMES
        from simulator.joints import POSE_DOFS
        from simulator.params import SHAPE_NAMES

        c = self.config
        params, info = drawn
        rel = f"images/{index:09d}.{c.image_format}"
        p = Path(shard_dir) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(encode_image(sample.rgb, c.image_format, c.jpeg_quality))
        H, W = sample.mask.shape
        image_id = index + 1
        kp = sample.keypoints["coco17"]
        keypoints, num = coco.coco_keypoints(kp.xy, kp.visibility)
        R, t = sample.extrinsics[:3, :3].astype(np.float64), sample.extrinsics[:3, 3].astype(np.float64)
        joints_cam = sample.joints_world.astype(np.float64) @ R.T + t
        body = {
            "pose_names": list(POSE_DOFS),
            "pose": [round(float(params.pose[k]), 6) for k in POSE_DOFS],
            "shape_names": list(SHAPE_NAMES),
            "shape": [round(float(params.shape[k]), 6) for k in SHAPE_NAMES],
        }
        ann = {
            "image_id": image_id,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": coco.bbox_xywh(sample.mask) if sample.mask.any() else [0.0, 0.0, 0.0, 0.0],
            "area": float(sample.mask.sum()),
            "segmentation": coco.encode_rle(sample.mask),
            "keypoints": keypoints,
            "num_keypoints": num,
            "keypoints_3d": {"convention": "h36m17", "names": list(sample.keypoints["h36m17"].names),
                             "xyz": np.round(sample.keypoints["h36m17"].xyz.astype(np.float64), 5).tolist()},
            "joints_3d": {"names": list(JOINT_NAMES), "xyz": np.round(joints_cam, 5).tolist()},
            "body": body,
        }
        image = {"id": image_id, "file_name": f"{rel_dir}/{rel}", "width": int(W), "height": int(H),
                 "K": np.round(sample.K.astype(np.float64), 6).tolist(),
                 "extrinsics": np.round(sample.extrinsics.astype(np.float64), 6).tolist()}
        return {"index": index, "image": image, "annotations": [ann] if sample.mask.any() else [],
                "scene": params.to_dict(), "source": {**info, "attempts": attempt}}


def prepare(config: FinetuneConfig) -> None:
    config.check()
    SceneSampler(_source(config))


def finalize(config: FinetuneConfig, out: Path) -> dict:
    out = Path(out)
    images, annotations, lines = [], [], []
    cols: dict[str, list] = {k: [] for k in ("image", "keypoints2d", "h36m17_cam", "joints_cam", "pose", "shape", "K",
                                             "extrinsics", "mode", "bbox", "u", "scene")}
    n_mode = 0
    for shard in base.iter_shards(out):
        for r in shard["records"]:
            images.append(r["image"])
            annotations += r["annotations"]
            lines.append(base.dumps(r))
            if not r["annotations"]:
                continue
            a = r["annotations"][0]
            cols["image"].append(r["image"]["file_name"])
            cols["keypoints2d"].append(np.array(a["keypoints"]).reshape(17, 3))
            cols["h36m17_cam"].append(a["keypoints_3d"]["xyz"])
            cols["joints_cam"].append(a["joints_3d"]["xyz"])
            cols["pose"].append(a["body"]["pose"])
            cols["shape"].append(a["body"]["shape"])
            cols["K"].append(r["image"]["K"])
            cols["extrinsics"].append(r["image"]["extrinsics"])
            cols["bbox"].append(a["bbox"])
            cols["u"].append(r["source"]["u"])
            cols["scene"].append(base.dumps(r["scene"]))
            mode = r["source"]["mode"]
            cols["mode"].append(-1 if mode is None else mode)
            n_mode += mode is not None
    info = {"description": "PoseExaminer fine-tuning set from failure regions", "version": "1.0",
            "generator": "poseexaminer", "seed": config.seed, "n": config.n, "run": config.from_run}
    base.atomic_write_text(out / "annotations.json",
                             base.dumps(coco.coco_dataset(images, annotations, [coco.PERSON_CATEGORY], info)))
    base.atomic_write_text(out / "samples.jsonl", "\n".join(lines) + "\n")
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v, dtype=np.float32 if k not in ("image", "mode", "scene") else None) for k, v in cols.items()})
    tmp = out / ".labels.npz.tmp"
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out / "labels.npz")
    return {"annotations": "annotations.json", "samples": "samples.jsonl", "labels": "labels.npz",
            "images": len(images), "from_modes": n_mode, "from_base": len(cols["mode"]) - n_mode,
            "run": run_summary(config.from_run)}


def load_finetune(out: str | Path) -> dict[str, np.ndarray]:
    """The arrays of labels.npz: image (N,) image paths relative to `out`; keypoints2d
    (N, 17, 3) COCO x, y (pixels), v; h36m17_cam (N, 17, 3) and joints_cam (N, J, 3) metres,
    camera frame; pose (N, P) radians (names in samples.jsonl); shape (N, 6); K (N, 3, 3);
    extrinsics (N, 4, 4); bbox (N, 4) xywh; mode (N,) failure-mode id, -1 = base;
    u (N, D) the scene in the run's normalised space; scene (N,) the SceneParams as JSON
    strings (`SceneParams.from_dict(json.loads(s))`)."""
    path = Path(out) / "labels.npz"
    if not path.is_file():
        raise GeneratorError(f"{path} does not exist; generate it with `examiner generate finetune --out {out}`")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


LAYOUT = {
    "annotations.json": "COCO person keypoints + keypoints_3d (H36M-17, camera frame, m), joints_3d, body (pose, shape)",
    "samples.jsonl": "one record per image: image (K, extrinsics), annotation, SceneParams, source (mode id / base, u)",
    "labels.npz": "arrays for training: image, keypoints2d, h36m17_cam, joints_cam, pose, shape, K, extrinsics, bbox, mode, "
                  "u, scene (SceneParams JSON)",
    "shards/shard-NNNNN/images/": "RGB images",
}

SPEC = GeneratorSpec(name="finetune", config_class=FinetuneConfig, writer=FinetuneWriter, prepare=prepare,
                     finalize=finalize, layout=LAYOUT)
