"""Dressing a posed body: template + style + shape -> canonical garment -> learned
displacement -> skinning -> push-out. This is the fast path the renderer uses."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.garments.collision import BodyCollider
from simulator.garments.model import GarmentPredictor, PredictorWeights
from simulator.garments.rig import BodyRig, PosedRig, get_rig
from simulator.garments.spec import check_style, get_spec
from simulator.garments.geometry import GarmentGeometry

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "garments"


def weights_path(name: str, weights_dir: str | Path | None = None) -> Path:
    return Path(weights_dir or WEIGHTS_DIR) / f"{name}.npz"


@dataclass
class DressedGarment:
    """vertices (B, N, 3) float32 metres, simulator world frame (pelvis at the origin);
    faces (F, 3) int32; face_parts (F,) uint8 DensePose part of the body under each face
    (style dependent, so one row per batch item: (B, F)); uv (N, 2) float32 fabric
    texture coordinates (metres / 0.25, fixed per template vertex); inside_fraction (B,)
    of vertices that were inside the body before the push-out; seconds spent."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    face_parts: np.ndarray
    uv: np.ndarray
    inside_fraction: np.ndarray
    seconds: float


class Wardrobe:
    """All garment types on one body rig; loads each type's geometry and weights lazily."""

    def __init__(self, rig: BodyRig | None = None, weights_dir: str | Path | None = None) -> None:
        self.rig = rig or get_rig()
        self.weights_dir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
        self._geometry: dict[str, GarmentGeometry] = {}
        self._predictor: dict[str, GarmentPredictor] = {}
        self._uv: dict[str, np.ndarray] = {}
        self.collider = BodyCollider(self.rig)
        self._colliders: dict[str, BodyCollider] = {}

    def collider_for(self, name: str) -> BodyCollider:
        """The body vertices a garment type can touch (cheaper than the whole body)."""
        if name not in self._colliders:
            self._colliders[name] = BodyCollider(self.rig, ids=self.geometry(name).collider_ids)
        return self._colliders[name]

    def body(self, pose: np.ndarray, shape: np.ndarray) -> PosedRig:
        """The posed rig garments need (bone transforms, rest surface), without skinning
        the body mesh: pose (B, 34) radians, shape (B, 6) phenotypes or (B, 10) with the local
        changes (``ALL_SHAPE_NAMES``, what the renderer passes)."""
        import torch

        pose = np.atleast_2d(np.asarray(pose, dtype=np.float64))
        # Many tiny tensor ops: extra intra-op threads only add synchronisation (and stall
        # badly on a loaded machine), so run them on one thread.
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.rig.pose(self.rig.pose_deltas(pose), np.atleast_2d(shape), vertices=False)
        finally:
            torch.set_num_threads(n)

    def geometry(self, name: str) -> GarmentGeometry:
        get_spec(name)
        if name not in self._geometry:
            self._geometry[name] = GarmentGeometry(name, self.rig)
        return self._geometry[name]

    def predictor(self, name: str) -> GarmentPredictor:
        if name not in self._predictor:
            w = PredictorWeights.load(weights_path(name, self.weights_dir))
            geom = self.geometry(name)
            if w.n_vertices != geom.n_vertices:
                from simulator.garments.spec import GarmentError

                raise GarmentError(
                    f"{name} weights were trained for {w.n_vertices} template vertices, this body model's "
                    f"template has {geom.n_vertices}; retrain with scripts/train_garments.py"
                )
            self._predictor[name] = GarmentPredictor(w)
        return self._predictor[name]

    def uv(self, name: str) -> np.ndarray:
        """(N, 2) texture coordinates: the template's front projection (x, z) in the mean
        rest body, 0.25 m per texture tile (the skirt: around x height)."""
        if name not in self._uv:
            geom = self.geometry(name)
            T = geom.template
            if geom.spec.kind == "skirt":
                uv = np.stack([(T.theta + np.pi) * 0.25 / 0.25, -T.s * 0.6 / 0.25], 1)
            else:
                p = self.rig.mean_rest_vertices[T.body_ids]
                uv = np.stack([p[:, 0] / 0.25, p[:, 2] / 0.25], 1)
            self._uv[name] = uv.astype(np.float32)
        return self._uv[name]

    def dress(self, name: str, style, pose: np.ndarray, shape: np.ndarray, push_out: bool = True,
              use_model: bool = True, body: PosedRig | None = None) -> DressedGarment:
        """Garment `name` with style (4,) or (B, 4) on bodies pose (B, 34) radians and
        shape (B, 6) phenotypes or (B, 10) with the local changes. use_model=False skips the learned displacement (the
        canonical rest garment, skinned). `body` (from `Wardrobe.body`) shares one body
        evaluation between several garments; `seconds` excludes it."""
        if body is None:
            body = self.body(pose, shape)
        t0 = time.perf_counter()
        pose = np.atleast_2d(np.asarray(pose, dtype=np.float64))
        shape = np.atleast_2d(np.asarray(shape, dtype=np.float64))
        B = max(len(pose), len(shape))
        if len(shape) == 1 and B > 1:
            shape = np.repeat(shape, B, 0)
        style = check_style(style, B)
        geom = self.geometry(name)
        posed = body
        collider = self.collider_for(name)
        anchors = [geom.anchors(s, checked=True) for s in style]
        canon = geom.rest_shapes(anchors, posed.rest_vertices, posed.rest_heads)
        if use_model:
            canon = canon + self.predictor(name).displacement(pose, shape, style, canon)
        pts, nrm, t_near = collider.pose_surface(posed.rest_vertices, posed.transforms, return_transforms=True)
        near = collider.near_index
        verts = np.empty_like(canon)
        inside = np.zeros(B)
        for b, a in enumerate(anchors):
            T = geom.skin_transforms(a, t_near[b], near, posed.transforms[b])
            x = np.einsum("nij,nj->ni", T[:, :3, :3], canon[b]) + T[:, :3, 3]
            if push_out:
                x, inside[b] = collider.push_out_posed(x, pts[b], nrm[b])
            else:
                inside[b] = collider.inside_fraction_posed(x, pts[b], nrm[b])
            verts[b] = x - posed.offset[b]
        parts = np.stack([geom.style_parts(s, checked=True) for s in style])
        return DressedGarment(
            name=name, vertices=verts.astype(np.float32), faces=geom.faces, face_parts=parts,
            uv=self.uv(name), inside_fraction=inside, seconds=time.perf_counter() - t0,
        )


@functools.lru_cache(maxsize=2)
def get_wardrobe(weights_dir: str | None = None) -> Wardrobe:
    return Wardrobe(weights_dir=weights_dir)


def dress_scene(clothing, pose: np.ndarray, shape: np.ndarray, wardrobe: Wardrobe | None = None,
                body: PosedRig | None = None) -> list:
    """Garments of `ClothingParams` on one body: pose (34,) radians, shape (6,); `body`:
    that body's PosedRig when the caller has it (e.g. `BodyRig.from_body_output`).

    Returns [(name, vertices (N, 3) float32 world frame, face_parts (F,) uint8, rgb (3,),
    pattern)], lower garment first; an upper garment is pushed outside the lower one
    where they overlap (tops are worn untucked)."""
    from simulator.appearance import hsv
    from simulator.garments.layer import push_outside

    wardrobe = wardrobe or get_wardrobe()
    if body is None:
        body = wardrobe.body(pose[None], shape[None])
    items = []
    lower_v = lower_f = None
    if clothing.lower != "none":
        g = wardrobe.dress(clothing.lower, clothing.lower_style(), pose[None], shape[None], body=body)
        lower_v, lower_f = g.vertices[0], g.faces
        items.append((clothing.lower, lower_v, g.face_parts[0],
                      hsv(clothing.lower_hue, 0.55, clothing.lower_value), clothing.lower_pattern))
    if clothing.upper != "none":
        g = wardrobe.dress(clothing.upper, clothing.upper_style(), pose[None], shape[None], body=body)
        v = g.vertices[0]
        if lower_v is not None:
            v = push_outside(lower_v, lower_f, v).astype(np.float32)
        items.append((clothing.upper, v, g.face_parts[0],
                      hsv(clothing.upper_hue, 0.55, clothing.upper_value), clothing.upper_pattern))
    return items
