"""The body rig garments hang on: anny's rest surface per body shape, its bone
transforms per pose, and linear blend skinning of garment vertices with weights
borrowed from the body.

Garments live in anny's rest (A-) pose, the *canonical* space: a garment is a rest
shape there plus a displacement, carried to the posed body by the same linear blend
skinning anny applies to its own vertices (anny is pure LBS, so skinning the body's rest
vertices with these transforms reproduces its posed vertices exactly). Output vertices
are in the simulator's world frame (pelvis at the origin), like `BodyOutput.vertices`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from simulator.garments.spec import GarmentError
from simulator.parts import REGION_NAMES
from simulator.rotations import lazy_torch as _torch

# Limb chains (bone heads, root -> tip) used for the length coordinates of sleeves and legs.
CHAINS = {
    "arm_l": ("upperarm01.L", "lowerarm01.L", "wrist.L"),
    "arm_r": ("upperarm01.R", "lowerarm01.R", "wrist.R"),
    "leg_l": ("upperleg01.L", "lowerleg01.L", "foot.L"),
    "leg_r": ("upperleg01.R", "lowerleg01.R", "foot.R"),
}
CHAIN_REGIONS = {
    "arm_l": ("upper_arm_left", "lower_arm_left"),
    "arm_r": ("upper_arm_right", "lower_arm_right"),
    "leg_l": ("upper_leg_left", "lower_leg_left"),
    "leg_r": ("upper_leg_right", "lower_leg_right"),
    "torso": ("torso",),
}


@dataclass
class PosedRig:
    """One batch of posed bodies. vertices (B, V, 3) and transforms (B, nb, 4, 4) in anny's
    frame (metres); offset (B, 3) is what the simulator subtracts to put the pelvis at the
    origin."""

    vertices: np.ndarray
    transforms: np.ndarray
    offset: np.ndarray
    rest_vertices: np.ndarray
    rest_heads: np.ndarray


class _Incidence:
    """Sparse vertex <- face incidence for fast normals."""

    def __init__(self, faces: np.ndarray, n_vertices: int) -> None:
        from scipy.sparse import csr_matrix

        F = len(faces)
        self.faces = faces
        self.matrix = csr_matrix(
            (np.ones(3 * F), (faces.reshape(-1), np.repeat(np.arange(F), 3))), shape=(n_vertices, F)
        )

    def normals(self, v: np.ndarray) -> np.ndarray:
        tri = v[self.faces]
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        vn = self.matrix @ fn
        return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


class BodyRig:
    """Garment-side view of the anny body model (one per process, see `get_rig`)."""

    def __init__(self, body=None) -> None:
        torch = _torch()
        if body is None:
            from simulator.body_model import get_body_model

            body = get_body_model("anny")
        if getattr(body, "name", None) != "anny":
            raise GarmentError(
                f"garments are defined on the anny body model, not {getattr(body, 'name', body)!r}; "
                "render clothed scenes with body_model='anny'"
            )
        self.body = body
        model = body.model
        self.bone_labels = list(body.bone_labels)
        self.n_bones = len(self.bone_labels)
        self.faces = body.faces
        W = model.vertex_bone_weights.double().numpy()
        I = model.vertex_bone_indices.numpy()
        V = W.shape[0]
        self.n_vertices = V
        dense = np.zeros((V, self.n_bones))
        np.add.at(dense, (np.repeat(np.arange(V), W.shape[1]), I.reshape(-1)), W.reshape(-1))
        self.weights = dense  # (V, nb) skinning weights
        self.vertex_region = np.asarray(body.vertex_region)
        self.incidence = _Incidence(self.faces, V)
        self._dtype = torch.float64
        self._model = model
        self._l_hip = self.bone_labels.index("upperleg01.L")
        self._r_hip = self.bone_labels.index("upperleg01.R")
        rest = self.rest(np.full((1, 6), 0.5))
        self.mean_rest_vertices = rest["vertices"][0]
        self.mean_rest_heads = rest["heads"][0]

    def bone(self, name: str) -> int:
        return self.bone_labels.index(name)

    def _inputs(self, shape: np.ndarray):
        """shape (B, 6) phenotypes, or (B, 6 + k) with the body's local changes appended
        (simulator.params.ALL_SHAPE_NAMES order) -> anny phenotype and local-change tensors."""
        torch = _torch()
        dt = self._model.template_vertices.dtype
        ph = torch.as_tensor(shape[:, :6], dtype=dt)
        labels = getattr(self.body, "_local_labels", None)
        if not labels:
            return ph, None
        local = np.zeros((len(shape), len(labels)))
        if shape.shape[1] > 6:
            from simulator.params import LOCAL_SHAPE_NAMES

            for i, name in enumerate(LOCAL_SHAPE_NAMES[: shape.shape[1] - 6]):
                local[:, labels.index(self.body.LOCAL_CHANGES[name])] = 2.0 * (shape[:, 6 + i] - 0.5)
        return ph, torch.as_tensor(local, dtype=dt)

    def _call(self, deltas, shape: np.ndarray):
        ph, local = self._inputs(shape)
        if local is None:
            return self._model(deltas, ph)
        return self._model(deltas, ph, local_changes_kwargs=local)

    def region_ids(self, names) -> np.ndarray:
        ids = [REGION_NAMES.index(n) for n in names]
        return np.flatnonzero(np.isin(self.vertex_region, ids))

    # ---- anny ------------------------------------------------------------------------
    def rest(self, shape: np.ndarray) -> dict[str, np.ndarray]:
        """shape (B, 6) phenotypes (or (B, 10) with local changes) -> rest vertices
        (B, V, 3), bone heads (B, nb, 3), rest bone poses (B, nb, 4, 4), anny frame, float64."""
        torch = _torch()
        shape = np.atleast_2d(np.asarray(shape, dtype=np.float64))
        with torch.no_grad():
            out = self._call(None, shape)
        rp = out["rest_bone_poses"].double().numpy()
        rv = out["rest_vertices"].double().numpy()
        if len(rv) != len(shape):
            rv = np.repeat(rv, len(shape), 0)
            rp = np.repeat(rp, len(shape), 0)
        return {"vertices": rv, "bone_poses": rp, "heads": rp[:, :, :3, 3]}

    def pose(self, deltas, shape: np.ndarray, vertices: bool = True) -> PosedRig:
        """deltas (B, nb, 4, 4) anny local-ref bone deltas (see AnnyBody.pose_deltas);
        shape (B, 6) or (B, 10) with the local changes (B may be 1). vertices=False skips skinning the whole body mesh
        (`PosedRig.vertices` is then None); the transforms are the same."""
        torch = _torch()
        shape = np.atleast_2d(np.asarray(shape, dtype=np.float64))
        dt = self._model.template_vertices.dtype
        deltas = torch.as_tensor(np.asarray(deltas), dtype=dt)
        B = max(len(deltas), len(shape))
        if len(shape) == 1 and B > 1:
            shape = np.repeat(shape, B, 0)
        m = self._model
        with torch.no_grad():
            if vertices or not hasattr(m, "_get_phenotype_blendshape_coefficients"):
                out = self._call(deltas, shape)
                bp, rest_poses, rv = out["bone_poses"], out["rest_bone_poses"], out["rest_vertices"]
                posed_v = out["vertices"].double().numpy()
            else:
                ph, local = self._inputs(shape)
                pp, phen, lc, fa = m.get_tensor_inputs(deltas, ph, local, None)
                coeffs = m._get_phenotype_blendshape_coefficients(phen, lc, fa)
                rest = m.get_rest_model(coeffs)
                rest_poses, rv = rest["rest_bone_poses"], rest["rest_vertices"]
                _, bp = m.get_bone_transforms(pp, rest_poses)
                posed_v = None
        return self._posed(bp, rest_poses, rv, posed_v)

    def _posed(self, bp, rest_poses, rv, posed_v: np.ndarray | None) -> PosedRig:
        """PosedRig from anny's bone poses (B, nb, 4, 4), rest bone poses and rest
        vertices (torch; batch 1 or B)."""
        torch = _torch()
        bp = bp.double()
        rp = rest_poses.double().expand_as(bp)
        G = (bp @ torch.linalg.inv(rp)).numpy()
        heads = bp[:, :, :3, 3].numpy()
        offset = 0.5 * (heads[:, self._l_hip] + heads[:, self._r_hip])
        return PosedRig(
            vertices=posed_v, transforms=G, offset=offset,
            rest_vertices=rv.double().expand(len(bp), -1, -1).numpy(), rest_heads=rp[:, :, :3, 3].numpy(),
        )

    def from_body_output(self, rig_out: dict, index: int) -> PosedRig:
        """The PosedRig (batch 1, no body vertices) of row `index` of a forward pass of
        this rig's own body model (`BodyOutput.rig`): the renderer has already evaluated
        the body, so dressing it needs no second evaluation. Same values as
        `pose(pose_deltas(pose), shape, vertices=False)` for that row."""
        def row(t):
            return t[index:index + 1] if len(t) > 1 else t

        return self._posed(row(rig_out["bone_poses"]), row(rig_out["rest_bone_poses"]),
                           row(rig_out["rest_vertices"]), None)

    def pose_deltas(self, pose: np.ndarray) -> np.ndarray:
        """(B, 34) anatomical radians -> (B, nb, 4, 4) anny deltas."""
        return self.body.pose_deltas(np.atleast_2d(pose)).double().numpy()


def _blend(weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """weights (..., N, nb), transforms (..., nb, 4, 4) -> per-vertex (..., N, 4, 4)."""
    nb = transforms.shape[-3]
    T16 = transforms.reshape(transforms.shape[:-3] + (nb, 16))
    if hasattr(weights, "tocsr"):  # scipy sparse (N, nb): no BLAS threads for a small product
        out = np.stack([weights @ t for t in T16.reshape(-1, nb, 16)]).reshape(T16.shape[:-2] + (weights.shape[0], 16))
    else:
        out = weights @ T16
    return out.reshape(out.shape[:-1] + (4, 4))


def skin(rest: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning.

    rest (B, N, 3) or (N, 3) canonical positions; weights (N, nb) or (B, N, nb);
    transforms (B, nb, 4, 4) -> (B, N, 3)."""
    T = _blend(weights, transforms)
    r = np.broadcast_to(rest, T.shape[:-2] + (3,))
    return (T[..., :3, :3] @ r[..., None])[..., 0] + T[..., :3, 3]


def unskin(posed: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Inverse of `skin` per vertex: posed (B, N, 3) -> canonical (B, N, 3)."""
    T = _blend(weights, transforms)
    return (np.linalg.inv(T[..., :3, :3]) @ (posed - T[..., :3, 3])[..., None])[..., 0]


@functools.lru_cache(maxsize=2)
def get_rig(body_model: str = "anny") -> BodyRig:
    from simulator.body_model import get_body_model

    return BodyRig(get_body_model(body_model))
