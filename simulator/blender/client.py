"""Main-process side of the Blender renderer: the worker process and `BlenderRenderer`."""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from simulator import appearance, camera as cam_math, envs
from simulator.blender import INSTALL_HINT, RECIPE
from simulator.errors import RenderError
from simulator.params import HDRI_BACKGROUND, HDRIS, SceneParams
from simulator.sample import Sample
from simulator.worker_protocol import WorkerFailure, WorkerProcess, WorkerSpec

WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"
# Sun strength (W/m^2 in Blender) per unit of pyrender's key-light intensity.
SUN_PER_INTENSITY = 0.25


def default_threads() -> int:
    """Cycles threads when RenderConfig.blender_threads is 0: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def blender_available() -> bool:
    return envs.is_installed(RECIPE.name)


def require_blender() -> Path:
    """The bpy environment's python, or a one-line RenderError naming the install command."""
    if not blender_available():
        raise RenderError(f"the Blender renderer is not installed ({envs.env_path(RECIPE.name)} is missing); "
                          f"run `{INSTALL_HINT}`")
    return envs.env_python(envs.env_path(RECIPE.name))


def scene_hash(params: SceneParams) -> int:
    return int.from_bytes(hashlib.sha256(params.to_json(sort_keys=True).encode()).digest()[:8], "little")


def resolve_hdri(params: SceneParams) -> str:
    """The scene's environment map: light.hdri, or for "auto" one picked from a hash of
    the scene (its own stream: no other parameter's sampling changes)."""
    if params.light.hdri != "auto":
        return params.light.hdri
    return HDRIS[scene_hash(params) % len(HDRIS)]


class BlenderClient:
    """One Blender worker process: starts it, sends render requests, restarts it once when
    it dies, and stops it. Meshes, UVs and textures are sent once per worker process."""

    def __init__(self, threads: int = 1, timeout_s: float = 300.0, startup_timeout_s: float = 120.0) -> None:
        python = require_blender()
        self.spec = WorkerSpec(
            name="blender",
            command=(str(python), str(WORKER_SCRIPT), "--threads", str(int(threads))),
            timeout_s=timeout_s,
            startup_timeout_s=startup_timeout_s,
            env={"OMP_NUM_THREADS": str(int(threads))},
        )
        self.restarts = 0
        self.mesh_messages = 0  # mesh (topology) messages sent, for tests and profiling
        self._worker = WorkerProcess(self.spec)
        self._sent: set[str] = set()
        self._meshes: dict[str, str] = {}
        self._start()

    def _kill(self) -> None:
        """Kill the worker and remove its scratch folder (a killed worker cannot)."""
        self._worker.kill()
        scratch = Path(str(getattr(self, "hello", {}).get("scratch", "")))
        if scratch.name.startswith("pe-blender-") and scratch.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(scratch, ignore_errors=True)

    def _start(self) -> None:
        self._sent = set()
        self._meshes = {}
        try:
            self.hello = self._worker.start()
        except WorkerFailure as e:
            self._kill()
            raise RenderError(f"the Blender worker failed to start ({e.kind}): {e.message}") from None

    @property
    def pid(self) -> int | None:
        return self._worker.pid

    def _request(self, meta: dict, arrays: dict, defs: dict, meshes: dict | None = None) -> tuple[dict, dict]:
        """Send one render; `defs` maps a definition key ("body", "g:NAME", "p:NAME") to
        the arrays that define it, sent only when this worker has not seen it yet.
        `meshes` maps a slot to (token, n_vertices, faces, labels): a mesh message goes
        first for each slot whose token (its topology) differs from what the worker holds."""
        for slot, (token, n_vertices, faces, labels) in (meshes or {}).items():
            if self._meshes.get(slot) == token:
                continue
            reply, _ = self._worker.request({"faces": faces, "labels": labels}, self.spec.timeout_s, op="mesh",
                                            meta={"slot": slot, "n_vertices": int(n_vertices)})
            if not reply.get("ok", False):
                raise RenderError(f"Blender mesh update failed: {reply.get('error', 'unknown error')}")
            self._meshes[slot] = token
            self.mesh_messages += 1
        full = dict(arrays)
        for key, extra in defs.items():
            if key not in self._sent:
                full.update(extra)
        reply, out = self._worker.request(full, self.spec.timeout_s, op="render", meta=meta)
        if not reply.get("ok", False):
            raise RenderError(f"Blender render failed: {reply.get('error', 'unknown error')}")
        self._sent.update(defs)
        return reply, out

    def render(self, meta: dict, arrays: dict, defs: dict, meshes: dict | None = None) -> tuple[dict, dict]:
        try:
            return self._request(meta, arrays, defs, meshes)
        except WorkerFailure as first:
            self._kill()
            self.restarts += 1
            self._start()
            try:
                return self._request(meta, arrays, defs, meshes)
            except WorkerFailure as e:
                self._kill()
                raise RenderError(f"the Blender worker failed twice ({first.kind}, then {e.kind}): {e.message}") from None

    def close(self) -> None:
        self._worker.close()


class BlenderRGB:
    """Redraws the RGB of a scene a pyrender `Renderer` has just rendered with Blender
    Cycles, from the geometry that renderer recorded (`Renderer.last_scene`): same posed
    meshes, same camera. Used by `BlenderRenderer` and by the dataset generators."""

    def __init__(self, config) -> None:
        self.config = config
        if self.config.blender_samples < 1:
            raise RenderError(f"blender_samples must be at least 1, got {self.config.blender_samples}")
        require_blender()
        self.client = BlenderClient(threads=self.config.blender_threads or default_threads())
        atexit.register(self.client.close)

    def close(self) -> None:
        self.client.close()

    def scene_request(self, renderer, params: SceneParams, geo: dict) -> tuple[dict, dict, dict]:
        cam = geo["camera"]
        light = params.light
        target = np.asarray(geo["target"], dtype=np.float64)
        sun_pose = cam_math.look_at_pose(target + 3.0 * np.asarray(geo["light_dir"]), target)
        meta: dict[str, Any] = {
            "width": int(cam.width), "height": int(cam.height),
            "K": np.asarray(geo["K"]).tolist(), "camera_pose": np.asarray(geo["camera_pose"]).tolist(),
            "samples": int(self.config.blender_samples), "seed": scene_hash(params) % (2**31 - 1),
            "hdri": resolve_hdri(params), "hdri_rotation": float(cam.azimuth + light.hdri_rotation),
            "hdri_strength": float(light.hdri_strength),
            "sun_pose": sun_pose.tolist(), "sun_strength": SUN_PER_INTENSITY * float(light.intensity),
            "skin_rgb": np.asarray(geo["skin_rgb"]).tolist(),
            "garments": [], "patterns": [],
            "floor": None, "occluder": None,
            "transparent": params.background.kind != HDRI_BACKGROUND,
        }
        arrays: dict[str, np.ndarray] = {"body_vertices": np.asarray(geo["vertices"], dtype=np.float32)}
        defs: dict[str, dict] = {"body": {"body_faces": np.asarray(geo["faces"], dtype=np.int32)}}
        if geo["garments"]:
            from simulator.garments.fabric import pattern_image

            wardrobe = renderer._garments.wardrobe
            for i, (name, v, _fparts, rgb, pattern) in enumerate(geo["garments"]):
                meta["garments"].append({"name": name, "rgb": np.asarray(rgb).tolist(), "pattern": pattern})
                arrays[f"g{i}_vertices"] = np.asarray(v, dtype=np.float32)
                # Keyed by name (the worker keeps garments by name), carried in this scene's slot.
                defs[f"g:{name}"] = {f"g{i}_faces": np.asarray(wardrobe.geometry(name).faces, dtype=np.int32),
                                     f"g{i}_uv": np.asarray(wardrobe.uv(name), dtype=np.float32)}
                if pattern not in meta["patterns"]:
                    meta["patterns"].append(pattern)
                    arrays[f"pattern_{pattern}"] = pattern_image(pattern)
        if geo["floor_z"] is not None:
            g = params.ground
            meta["floor"] = {"x": float(target[0]), "y": float(target[1]), "z": float(geo["floor_z"]),
                             "rgb": appearance.hsv(g.hue, g.saturation, g.value).tolist(),
                             "pattern": g.pattern, "tile_size": float(g.tile_size)}
        if geo["occluder_pose"] is not None:
            meta["occluder"] = {"matrix": np.asarray(geo["occluder_pose"]).tolist(),
                                "rgb": np.asarray(geo["occluder_rgb"]).tolist()}
        return meta, arrays, defs

    def apply(self, renderer, sample: Sample) -> Sample:
        """`sample` (just rendered by `renderer`) with Blender's RGB and person mask."""
        geo = renderer.last_scene
        if geo is None:
            raise RenderError("render a scene with the pyrender renderer before redrawing it with Blender")
        meta, arrays, defs = self.scene_request(renderer, sample.params, geo)
        _, res = self.client.render(meta, arrays, defs)
        rgb = composite_background(res, sample.params.background, renderer.config.background_dir)
        mask = np.ascontiguousarray(res["mask"]).astype(bool)
        rect = geo["rect"]
        if rect is not None:  # the flat image-space occluder, as pyrender paints it
            x0, y0, x1, y1 = rect
            rgb[y0:y1, x0:x1] = np.clip(np.round(np.asarray(geo["occluder_rgb"]) * 255.0), 0, 255).astype(np.uint8)
            mask[y0:y1, x0:x1] = False
        return dataclasses.replace(sample, rgb=rgb, renderer="blender", renderer_mask=mask)


def composite_background(res: dict, background, folder: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8: a worker reply's RGB over the scene's procedural background
    (`simulator.appearance.background_image`, the function pyrender draws it with) when the
    render was transparent (the reply has `alpha`), blended as pyrender blends its
    colour pass; the RGB as it is otherwise (background.kind "hdri")."""
    rgb = np.ascontiguousarray(res["rgb"])
    if "alpha" not in res:
        return rgb
    H, W = rgb.shape[:2]
    bg = appearance.background_image(background, W, H, folder)
    alpha = np.asarray(res["alpha"], dtype=np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) / 255.0 * alpha + bg * (1.0 - alpha)
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def topology_token(faces: np.ndarray, labels: np.ndarray, n_vertices: int) -> str:
    """What identifies a mesh's topology for the worker: vertex count, faces and labels."""
    h = hashlib.sha1(np.int64(n_vertices).tobytes())
    h.update(np.ascontiguousarray(faces, dtype=np.int32).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int32).tobytes())
    return h.hexdigest()


class BlenderFigures:
    """Redraws a `simulator.anomaly.CompositeRenderer` frame (edited figures, whose vertex
    count and faces change with the anomaly) with Blender Cycles. Each figure goes to a
    worker slot ("f0", "f1", ...) with its faces and per-face part-instance labels (the
    frame's global instance ids) when its topology differs from what the slot holds;
    otherwise only its vertices travel. The annotations stay the composite's."""

    def __init__(self, samples: int = 8, threads: int = 0) -> None:
        if samples < 1:
            raise RenderError(f"blender_samples must be at least 1, got {samples}")
        require_blender()
        self.samples = int(samples)
        self.client = BlenderClient(threads=threads or default_threads())
        atexit.register(self.client.close)

    def close(self) -> None:
        self.client.close()

    def request(self, figures, frame, camera, light, background, target) -> tuple[dict, dict, dict]:
        from simulator.anomaly import instance_offsets

        if frame.camera_pose is None or frame.light_dir is None:
            raise RenderError("the composite frame does not record its camera pose and light; render it again")
        target = np.asarray(target, dtype=np.float64)
        key = hashlib.sha256()
        for x in (frame.K, frame.camera_pose, target, np.array([light.azimuth, light.elevation, light.intensity,
                                                                   light.hdri_rotation, light.hdri_strength])):
            key.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
        for fig in figures:
            key.update(np.ascontiguousarray(fig.vertices, dtype=np.float64).tobytes())
        seed = int.from_bytes(key.digest()[:8], "little")
        hdri = light.hdri if light.hdri != "auto" else HDRIS[seed % len(HDRIS)]
        sun_pose = cam_math.look_at_pose(target + 3.0 * np.asarray(frame.light_dir), target)
        meta: dict[str, Any] = {
            "width": int(camera.width), "height": int(camera.height),
            "K": np.asarray(frame.K).tolist(), "camera_pose": np.asarray(frame.camera_pose).tolist(),
            "samples": self.samples, "seed": seed % (2**31 - 1),
            "hdri": hdri, "hdri_rotation": float(camera.azimuth + light.hdri_rotation),
            "hdri_strength": float(light.hdri_strength),
            "sun_pose": sun_pose.tolist(), "sun_strength": SUN_PER_INTENSITY * float(light.intensity),
            "garments": [], "patterns": [], "floor": None, "occluder": None, "figures": [],
            "transparent": background.kind != HDRI_BACKGROUND,
        }
        arrays: dict[str, np.ndarray] = {}
        meshes: dict[str, tuple] = {}
        for i, (fig, off) in enumerate(zip(figures, instance_offsets(figures))):
            slot = f"f{i}"
            faces = np.asarray(fig.faces, dtype=np.int32)
            labels = np.asarray(fig.face_instance, dtype=np.int32) + off
            n = len(fig.vertices)
            meshes[slot] = (topology_token(faces, labels, n), n, faces, labels)
            arrays[f"{slot}_vertices"] = np.asarray(fig.vertices, dtype=np.float32)
            meta["figures"].append({"slot": slot, "skin_rgb": np.asarray(fig.skin, dtype=np.float64).tolist()})
        return meta, arrays, meshes

    def redraw(self, figures, frame, camera, light, background, target,
               background_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) uint8, mask (H, W) bool, labels (H, W) int32 global instance id or
        -1) of the frame's figures drawn by Cycles at the frame's camera and key light,
        over `background` (BackgroundParams) as the composite draws it (kind "hdri": the
        environment map)."""
        meta, arrays, meshes = self.request(figures, frame, camera, light, background, target)
        _, res = self.client.render(meta, arrays, {}, meshes)
        return (composite_background(res, background, background_dir), np.ascontiguousarray(res["mask"]).astype(bool),
                np.ascontiguousarray(res["labels"]).astype(np.int32))


class BlenderRenderer(BlenderRGB):
    """Renders `SceneParams` to `Sample`s whose RGB comes from Blender Cycles and whose
    ground truth comes from pyrender at the same camera. One per process."""

    def __init__(self, config, make_ground_truth_renderer) -> None:
        """config: a `simulator.renderer.RenderConfig`; make_ground_truth_renderer(config)
        builds the pyrender `Renderer` for the ground truth (passed in by
        `simulator.renderer.get_renderer`, which owns the renderer registry)."""
        super().__init__(config)
        # The full mesh: the Blender body is always drawn at full detail.
        self.gt = make_ground_truth_renderer(dataclasses.replace(self.config, renderer="pyrender", detail="full"))
        self.gt.rgb_redrawn = True

    def close(self) -> None:
        self.client.close()
        self.gt.close()

    def render_batch(self, params_list: Sequence[SceneParams]) -> list[Sample]:
        return [self.apply(self.gt, self.gt.render(p)) for p in params_list]

    def render(self, params: SceneParams) -> Sample:
        return self.apply(self.gt, self.gt.render(params))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


__all__ = ["BlenderClient", "BlenderFigures", "BlenderRGB", "BlenderRenderer", "blender_available", "require_blender", "resolve_hdri", "mask_iou"]
