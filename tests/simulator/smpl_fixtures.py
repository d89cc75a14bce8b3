"""Synthetic SMPL / SMPL+H / SMPL-X model files for tests.

The real model files are licence-gated, so tests write small files with the same keys,
dtypes and shape conventions (``(V, 3)`` template, ``(V, 3, n_betas)`` shapedirs,
``(V, 3, 9 * (J - 1))`` posedirs, ``(J, V)`` regressor, ``(V, J)`` weights, ``(2, J)``
kintree table, ``(F, 3)`` faces; SMPL as a pickle with a scipy-sparse regressor like the
official .pkl, SMPL-X as .npz) around a stick figure of capped cylinders and a spherical
head, and load them through the real `smplx` layers.

The figure is built in SMPL's frame (x = subject's left, y = up, z = forward) like the real
template: a T-pose with the palms down, the elbows bent 8 degrees forward and the legs
slightly apart and bent, so that the rest-pose compensation is exercised. Every vertex is
skinned rigidly to one joint; each joint is regressed from a ring of vertices centred on
it, so the regressed joints are exactly the designed ones.
"""

from __future__ import annotations

import math
import pickle
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BODY = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
BODY_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
FINGERS = tuple(f"{f}{k}" for f in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3))
ELBOW_REST_DEG = 8.0
HEAD_RADIUS = 0.1


def _design() -> dict[str, np.ndarray]:
    """Joint centres in SMPL's frame, metres."""
    P: dict[str, np.ndarray] = {}
    a = math.radians(ELBOW_REST_DEG)
    for side, s in (("left", 1.0), ("right", -1.0)):
        P[f"{side}_hip"] = np.array([0.09 * s, -0.07, 0.0])
        P[f"{side}_knee"] = np.array([0.11 * s, -0.47, 0.01])
        P[f"{side}_ankle"] = np.array([0.12 * s, -0.88, -0.02])
        P[f"{side}_foot"] = np.array([0.13 * s, -0.93, 0.11])
        P[f"{side}_collar"] = np.array([0.07 * s, 0.42, -0.01])
        P[f"{side}_shoulder"] = np.array([0.18 * s, 0.44, -0.01])
        P[f"{side}_elbow"] = np.array([0.44 * s, 0.44, -0.01])
        # Forearm bent forward (+z) in the horizontal plane: rest elbow flexion.
        P[f"{side}_wrist"] = P[f"{side}_elbow"] + 0.25 * np.array([s * math.cos(a), 0.0, math.sin(a)])
        P[f"{side}_hand"] = P[f"{side}_wrist"] + 0.08 * np.array([s * math.cos(a), 0.0, math.sin(a)])
    P["pelvis"] = np.zeros(3)
    P["spine1"] = np.array([0.0, 0.10, -0.01])
    P["spine2"] = np.array([0.0, 0.22, -0.01])
    P["spine3"] = np.array([0.0, 0.30, -0.01])
    P["neck"] = np.array([0.0, 0.50, -0.02])
    P["head"] = np.array([0.0, 0.57, 0.0])
    return P


def _cylinder(a: np.ndarray, b: np.ndarray, r: float, n: int = 10):
    """Capped cylinder, outward faces. Returns vertices, faces, start ids, end ids."""
    axis = b - a
    length = np.linalg.norm(axis)
    w = axis / length
    helper = np.array([0.0, 1.0, 0.0]) if abs(w[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(w, helper)
    u /= np.linalg.norm(u)
    v = np.cross(w, u)
    ang = 2 * np.pi * np.arange(n) / n
    ring = r * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)
    verts = np.concatenate([a + ring, b + ring, a[None], b[None]])
    ca, cb = 2 * n, 2 * n + 1
    faces = []
    for i in range(n):
        k = (i + 1) % n
        faces += [(i, k, n + k), (i, n + k, n + i), (ca, k, i), (cb, n + i, n + k)]
    faces = np.array(faces)
    # Orient outward (u, v, w right-handed makes the winding above outward; check anyway).
    t = verts[faces]
    vol = np.einsum("ij,ij->i", t[:, 0] - verts.mean(0), np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])).sum()
    if vol < 0:
        faces = faces[:, ::-1]
    start = np.concatenate([np.arange(n), [ca]])
    end = np.concatenate([np.arange(n, 2 * n), [cb]])
    return verts, faces, start, end


def _sphere(centre: np.ndarray, r: float, n_lat: int = 10, n_lon: int = 16):
    verts = [centre + [0, r, 0]]
    for i in range(1, n_lat):
        th = np.pi * i / n_lat
        for k in range(n_lon):
            ph = 2 * np.pi * k / n_lon
            verts.append(centre + r * np.array([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)]))
    verts.append(centre - [0, r, 0])
    verts = np.array(verts)
    faces = []
    top, bottom = 0, len(verts) - 1

    def idx(i, k):
        return 1 + (i - 1) * n_lon + k % n_lon

    for k in range(n_lon):
        faces.append((top, idx(1, k), idx(1, k + 1)))
        faces.append((bottom, idx(n_lat - 1, k + 1), idx(n_lat - 1, k)))
    for i in range(1, n_lat - 1):
        for k in range(n_lon):
            faces += [(idx(i, k), idx(i + 1, k), idx(i + 1, k + 1)), (idx(i, k), idx(i + 1, k + 1), idx(i, k + 1))]
    faces = np.array(faces)
    t = verts[faces]
    vol = np.einsum("ij,ij->i", t[:, 0] - centre, np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])).sum()
    if vol < 0:
        faces = faces[:, ::-1]
    return verts, faces


@dataclass
class SyntheticModel:
    path: Path
    model_type: str
    joint_names: tuple[str, ...]
    joints: np.ndarray  # (J, 3) rest joints, SMPL frame
    n_vertices: int
    landmarks: dict[str, int] = field(default_factory=dict)  # LANDMARK_NAMES -> vertex id


def build(model_type: str = "smpl", n_betas: int = 10) -> tuple[dict, SyntheticModel]:
    """The arrays of a synthetic model (official key names) and its description."""
    P = _design()
    if model_type == "smpl":
        names = BODY + ("left_hand", "right_hand")
        parents = BODY_PARENTS + (20, 21)
    else:
        extra = ("jaw", "left_eye_smplhf", "right_eye_smplhf") if model_type == "smplx" else ()
        names = BODY + extra + tuple(f"{s}_{f}" for s in ("left", "right") for f in FINGERS)
        parents = list(BODY_PARENTS) + [15] * len(extra)
        for s, wrist in (("left", 20), ("right", 21)):
            for f in FINGERS:
                parents.append(wrist if f.endswith("1") else names.index(f"{s}_{f[:-1]}{int(f[-1]) - 1}"))
        parents = tuple(parents)
    J = len(names)
    ji = {n: i for i, n in enumerate(names)}

    verts, faces, weights_joint = [], [], []
    regress: dict[int, list[tuple[np.ndarray, float]]] = {}
    shape_axis: list[np.ndarray] = []  # per vertex: nearest axis point (for the width blend shape)

    def add(v, f, joint, axis_points):
        off = sum(len(x) for x in verts)
        verts.append(v)
        faces.append(f + off)
        weights_joint.extend([joint] * len(v))
        shape_axis.append(axis_points)
        return off

    def seg(joint: str, a, b, r, end_joint: str | None = None, along: dict | None = None):
        v, f, start, end = _cylinder(np.asarray(a, float), np.asarray(b, float), r)
        w = (b - a) / np.linalg.norm(b - a)
        axis_pts = a + np.outer((v - a) @ w, w)
        off = add(v, f, ji[joint], axis_pts)
        regress.setdefault(ji[joint], [(off + start, 1.0)])
        if end_joint is not None:
            regress[ji[end_joint]] = [(off + end, 1.0)]
        for name, t in (along or {}).items():
            regress[ji[name]] = [(off + start, 1.0 - t), (off + end, t)]

    seg("pelvis", P["pelvis"], P["spine1"], 0.14)
    seg("spine1", P["spine1"], P["spine2"], 0.14)
    seg("spine2", P["spine2"], P["spine3"], 0.15)
    seg("spine3", P["spine3"], P["neck"], 0.15)
    seg("neck", P["neck"], P["head"], 0.05, end_joint="head")
    for s in ("left", "right"):
        seg(f"{s}_hip", P[f"{s}_hip"], P[f"{s}_knee"], 0.07)
        seg(f"{s}_knee", P[f"{s}_knee"], P[f"{s}_ankle"], 0.05)
        seg(f"{s}_ankle", P[f"{s}_ankle"], P[f"{s}_foot"], 0.04)
        seg(f"{s}_foot", P[f"{s}_foot"], P[f"{s}_foot"] + [0, 0, 0.05], 0.035)
        seg(f"{s}_collar", P[f"{s}_collar"], P[f"{s}_shoulder"], 0.05)
        seg(f"{s}_shoulder", P[f"{s}_shoulder"], P[f"{s}_elbow"], 0.05)
        seg(f"{s}_elbow", P[f"{s}_elbow"], P[f"{s}_wrist"], 0.04)
        tip = P[f"{s}_hand"] + 0.6 * (P[f"{s}_hand"] - P[f"{s}_wrist"])
        if model_type == "smpl":
            seg(f"{s}_wrist", P[f"{s}_wrist"], P[f"{s}_hand"], 0.035)
            seg(f"{s}_hand", P[f"{s}_hand"], tip, 0.03)
        else:
            # Fingers' first joints at the knuckles, later ones along the hand.
            seg(f"{s}_wrist", P[f"{s}_wrist"], P[f"{s}_hand"], 0.035)
            along = {f"{s}_{f}": (int(f[-1]) - 1) / 3 for f in FINGERS}
            seg(f"{s}_middle1", P[f"{s}_hand"], tip, 0.03, along=along)

    # Head: a sphere above the head joint, with a nose sticking out forward (+z).
    centre = P["head"] + np.array([0.0, 0.08, 0.0])
    hv, hf = _sphere(centre, HEAD_RADIUS)
    front = int(np.argmin(np.linalg.norm(hv - (centre + [0, -0.01, HEAD_RADIUS]), axis=1)))
    hv[front] += [0.0, 0.0, 0.03]
    head_off = add(hv, hf, ji["head"], np.repeat(centre[None], len(hv), 0))
    if model_type == "smplx":
        regress[ji["jaw"]] = [(head_off + np.arange(len(hv)), 1.0)]

    V = np.concatenate(verts)
    F = np.concatenate(faces)
    n = len(V)
    # Landmarks (the real topology's smplx.vertex_ids counterparts).
    lm = {"nose": head_off + front}

    def nearest(ids, target):
        ids = np.asarray(ids)
        return int(ids[np.argmin(np.linalg.norm(V[ids] - target, axis=1))])

    head_ids = head_off + np.arange(len(hv))
    for side, s in (("left", 1.0), ("right", -1.0)):
        lm[f"{side}_eye"] = nearest(head_ids, centre + HEAD_RADIUS * np.array([0.35 * s, 0.3, 0.9]))
        lm[f"{side}_ear"] = nearest(head_ids, centre + HEAD_RADIUS * np.array([s, 0.0, 0.0]))
        foot = [i for i in range(n) if weights_joint[i] in (ji[f"{side}_ankle"], ji[f"{side}_foot"])]
        toe = P[f"{side}_foot"] + [0, 0, 0.05]
        lm[f"{side}_big_toe"] = nearest(foot, toe + [-0.03 * s, -0.035, 0])
        lm[f"{side}_small_toe"] = nearest(foot, toe + [0.03 * s, -0.035, 0])
        lm[f"{side}_heel"] = nearest(foot, P[f"{side}_ankle"] + [0, -0.04, -0.04])
    if model_type == "smplx":
        regress[ji["left_eye_smplhf"]] = [(np.array([lm["left_eye"]]), 1.0)]
        regress[ji["right_eye_smplhf"]] = [(np.array([lm["right_eye"]]), 1.0)]

    missing = [names[i] for i in range(J) if i not in regress]
    assert not missing, missing
    Jreg = np.zeros((J, n))
    for j, parts in regress.items():
        for ids, wt in parts:
            Jreg[j, ids] += wt / len(ids)
    weights = np.zeros((n, J))
    weights[np.arange(n), weights_joint] = 1.0

    n_shape = 20 if model_type == "smplx" else n_betas  # SMPL-X: 10 shape + 10 expression
    shapedirs = np.zeros((n, 3, n_shape))
    # Component 0 shrinks the body about the pelvis (so "taller" is its negative direction),
    # component 1 widens every limb about its axis.
    shapedirs[:, :, 0] = -0.06 * V
    shapedirs[:, :, 1] = 0.15 * (V - np.concatenate(shape_axis))

    kintree = np.array([[4294967295 if p < 0 else p for p in parents], list(range(J))], dtype=np.int64)
    data = {
        "v_template": V,
        "f": F.astype(np.uint32),
        "J_regressor": Jreg,
        "J": Jreg @ V,
        "weights": weights,
        "kintree_table": kintree,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((n, 3, 9 * (J - 1))),
        "bs_type": "lrotmin",
        "bs_style": "lbs",
    }
    if model_type != "smpl":
        for s in ("l", "r"):
            data[f"hands_components{s}"] = np.eye(45)
            data[f"hands_mean{s}"] = np.zeros(45)
    if model_type == "smplx":
        data["lmk_faces_idx"] = np.arange(5, dtype=np.int64) + (len(F) - len(hf))
        data["lmk_bary_coords"] = np.full((5, 3), 1.0 / 3.0)
        # UVs: a cylindrical projection, one UV per face corner like the official files.
        uv = np.stack([0.5 + np.arctan2(V[:, 0], V[:, 2]) / (2 * np.pi), (V[:, 1] + 1.0) / 2.0], axis=1)
        data["vt"] = uv
        data["ft"] = F.astype(np.int64)
    info = SyntheticModel(
        path=Path(), model_type=model_type, joint_names=names, joints=Jreg @ V, n_vertices=n, landmarks=lm
    )
    return data, info


def _chumpy_wrap(data: dict) -> bytes:
    """Pickle `data` with its float arrays wrapped as ``chumpy.ch.Ch`` objects (state
    ``{"x": array}``), like the official chumpy-pickled files, without chumpy installed."""
    mod = types.ModuleType("chumpy.ch")
    pkg = types.ModuleType("chumpy")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    pkg.ch = mod
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, mod
    try:
        wrapped = {}
        for k, v in data.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and k != "J_regressor":
                obj = Ch()
                obj.__dict__["x"] = v
                wrapped[k] = obj
            else:
                wrapped[k] = v
        return pickle.dumps(wrapped, protocol=2)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write(folder: Path, model_type: str = "smpl", fmt: str | None = None, gender: str = "NEUTRAL",
          chumpy: bool = False) -> SyntheticModel:
    """Write ``<folder>/<PREFIX>_<GENDER>.<fmt>`` and describe it. fmt: pkl | npz (default:
    pkl for SMPL / SMPL+H, npz for SMPL-X, as the official downloads)."""
    prefix = {"smpl": "SMPL", "smplh": "SMPLH", "smplx": "SMPLX"}[model_type]
    fmt = fmt or ("npz" if model_type == "smplx" else "pkl")
    data, info = build(model_type)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}_{gender}.{fmt}"
    if fmt == "npz":
        np.savez(path, **data)
    else:
        import scipy.sparse

        data = dict(data, J_regressor=scipy.sparse.csc_matrix(data["J_regressor"]))
        path.write_bytes(_chumpy_wrap(data) if chumpy else pickle.dumps(data, protocol=2))
    info.path = path
    return info
