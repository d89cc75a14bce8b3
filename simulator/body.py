"""Body models behind one protocol.

World frame of every body model: metres, +Z up, the subject faces -Y, the subject's
left is +X, the pelvis (root joint) at the origin. A backend maps anatomical pose
angles (``simulator.joints``) and phenotypes (``simulator.params.SHAPE_NAMES``) to a
posed mesh, anatomical joint centres and surface keypoints.

Backends: ``anny`` (default; Apache-2.0, ships in its wheel) and ``smplx`` (user-supplied
SMPL / SMPL-X files), registered in ``BODY_MODELS``.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from simulator.errors import AssetError
from simulator.joints import POSE_DOFS
from simulator.parts import REGION_NAMES, face_parts
from simulator.paths import configure_caches
from simulator.rotations import axis_angle, np_axis_angle, rx, ry, rz, unit

log = logging.getLogger(__name__)

COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
FEET6 = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
H36M17 = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck", "head_top", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)
# Anatomical joint centres every backend provides (superset of what H36M-17 needs).
JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_toe", "right_toe", "spine", "thorax", "neck", "head", "head_top",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)
KEYPOINT_CONVENTIONS: dict[str, tuple[str, ...]] = {"coco17": COCO17, "feet6": FEET6, "h36m17": H36M17}
# Keypoints on the skin (depth-tested tightly for visibility); all others (COCO limb points,
# H36M joint centres) lie inside the body and get a looser tolerance.
SURFACE_KEYPOINTS = frozenset(("nose", "left_eye", "right_eye", "left_ear", "right_ear") + FEET6)


@dataclass
class BodyOutput:
    """vertices (B, V, 3) float32 metres, world frame; joints (B, len(JOINT_NAMES), 3);
    keypoints {"coco17": (B, 17, 3), "feet6": (B, 6, 3), "h36m17": (B, 17, 3)}.
    rig: the body model's own bone poses, rest bone poses and rest vertices (anny: torch
    tensors "bone_poses", "rest_bone_poses", "rest_vertices"), so the garment rig can
    reuse this evaluation (`BodyRig.from_body_output`); None for other models."""

    vertices: np.ndarray
    joints: np.ndarray
    keypoints: dict[str, np.ndarray]
    rig: dict[str, Any] | None = None


class BodyModel(Protocol):
    name: str
    faces: np.ndarray  # (F, 3) int32
    face_parts: np.ndarray  # (F,) uint8 DensePose 1..24
    vertex_region: np.ndarray  # (V,) int index into simulator.parts.REGION_NAMES
    texcoords: np.ndarray | None  # (V, 2) float32 or None

    def forward(self, pose: np.ndarray, shape: np.ndarray) -> BodyOutput:
        """pose (B, len(POSE_DOFS)) radians; shape (B, 6) phenotypes in [0, 1]."""
        ...


def h36m_from_joints(joints: np.ndarray) -> np.ndarray:
    """(B, len(JOINT_NAMES), 3) -> (B, 17, 3) in H36M17 order."""
    idx = [JOINT_NAMES.index(n) for n in H36M17]
    return joints[:, idx]


# --------------------------------------------------------------------------------------
# Rotation helpers (torch, batched)
# --------------------------------------------------------------------------------------


def _torch():
    import torch

    return torch




# --------------------------------------------------------------------------------------
# anny backend
# --------------------------------------------------------------------------------------

_REGION_BONES = {
    "torso": ("root", "pelvis.", "spine", "clavicle.", "shoulder01.", "neck01"),
    "head": ("neck02", "neck03", "head", "eye."),
}


def _bone_region(label: str) -> str:
    side = {"L": "left", "R": "right"}.get(label.rsplit(".", 1)[-1], "")
    for region, prefixes in _REGION_BONES.items():
        if any(label == p or label.startswith(p) for p in prefixes):
            return region
    if label.startswith("upperarm"):
        return f"upper_arm_{side}"
    if label.startswith("lowerarm"):
        return f"lower_arm_{side}"
    if label.startswith(("wrist", "finger", "metacarpal")):
        return f"{side}_hand"
    if label.startswith("upperleg"):
        return f"upper_leg_{side}"
    if label.startswith("lowerleg"):
        return f"lower_leg_{side}"
    if label.startswith(("foot", "toe")):
        return f"{side}_foot"
    raise ValueError(f"unmapped bone {label}")


class _BuildNotice(logging.Handler):
    """Turns anny's 'No cached model data found ... building' log line into one warning
    for the user (the build takes 1-2 minutes, once)."""

    def __init__(self, cache: Path) -> None:
        super().__init__(logging.INFO)
        self.cache, self.shown = cache, False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.shown and record.getMessage().startswith("No cached model data found"):
            self.shown = True
            log.warning("Building the anny body model cache in %s (one time, about 1-2 minutes)...", self.cache)


class _announce_anny_build:
    def __init__(self, cache: Path) -> None:
        self.handler = _BuildNotice(cache)
        self.logger = logging.getLogger("anny.models.model_data")

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        self.propagate = self.logger.propagate
        self.logger.propagate = False  # anny's own INFO lines stay quiet
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)
        self.logger.propagate = self.propagate


def _init_warp_quietly(warp) -> None:
    """Initialise warp now. Without an NVIDIA driver its native code prints "Warp CUDA
    warning: Could not find or load the NVIDIA CUDA driver" on stderr in every process
    (each render worker of a run); on such a machine that line is all init writes there,
    so stderr's file descriptor is pointed at /dev/null for the call. With a driver
    present nothing is hidden."""
    import ctypes.util
    import os
    import sys

    if ctypes.util.find_library("cuda") is not None:
        warp.init()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                warp.init()
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class AnnyBody:
    """The anny body model (MakeHuman-derived; phenotypes from infants to elders).

    Pose: each anatomical DOF becomes a rotation of one or more anny bones in anny's
    ``local-ref`` parameterisation (rotation axes aligned with the world axes in the rest
    pose, carried along by the parent bone). Ball joints (shoulders, hips) use
    flexion -> abduction -> axial rotation; the rest pose (anny's A-pose) is measured
    once from the rest skeleton so that all angles are relative to the anatomical
    neutral position. Spine and neck angles are spread evenly over their vertebra bones.
    """

    name = "anny"
    SPINE_BONES = ("spine05", "spine04", "spine03", "spine02", "spine01")
    # simulator.params.LOCAL_SHAPE_NAMES -> anny local change (MakeHuman target); a value v
    # in [0, 1] drives the change with 2 (v - 0.5) in [-1, 1] (negative = the opposite target).
    LOCAL_CHANGES = {
        "belly": "stomach-pregnant-incr",
        "head_size": "head-scale-vert-incr",
        "hip_width": "hip-scale-horiz-incr",
        "torso_width": "torso-scale-horiz-incr",
    }
    NECK_BONES = ("neck01", "neck02", "neck03")

    def __init__(self, dtype: str = "float32") -> None:
        configure_caches()
        import os

        torch = _torch()
        cache = Path(os.environ["ANNY_CACHE_DIR"])
        before = set(cache.glob("*/build_compact_model_data_*.safetensors"))
        try:
            import warp

            # Its start-up banner goes to stdout and would pollute `--json` output.
            warp.config.log_level = max(warp.config.log_level, warp.LOG_WARNING)
            warp.config.kernel_cache_dir = os.environ["WARP_CACHE_PATH"]
            _init_warp_quietly(warp)
            import anny
        except ImportError as e:  # pragma: no cover - dependency of the package
            raise AssetError(f"the anny body model is not installed ({e}); run `pip install anny`") from None
        with _announce_anny_build(cache):
            model = anny.Anny(local_changes=list(self.LOCAL_CHANGES.values()))
        if set(cache.glob("*/build_compact_model_data_*.safetensors")) - before:
            # We just built it. Only the ~51 MB compact file is needed to instantiate the
            # model; the intermediate build products (~780 MB) can go.
            for pattern in ("*/load_data_*.safetensors", "*/build_model_data_*.safetensors"):
                for f in cache.glob(pattern):
                    f.unlink(missing_ok=True)
        self._dtype = getattr(torch, dtype)
        self.model = model.to(self._dtype).eval()
        self.bone_labels: list[str] = list(self.model.bone_labels)
        self._bone = {n: i for i, n in enumerate(self.bone_labels)}
        self.faces = self.model.get_triangular_faces().cpu().numpy().astype(np.int32)
        self.keypoint_regressor = anny.KeypointsRegressor.coco(self.model)
        kp_labels = list(self.keypoint_regressor.labels)
        self._coco_idx = [kp_labels.index(n) for n in COCO17]
        self._feet_idx = [kp_labels.index(n) for n in FEET6]

        self._local_labels = list(self.model.local_change_labels)
        with torch.no_grad():
            rest = self.model(None, None)
        rest_v = rest["vertices"][0].double().numpy()
        heads = rest["bone_poses"][0, :, :3, 3].double().numpy()
        self._rest_vertices = rest_v

        # Regions per vertex from skinning weights.
        weights = self.model.vertex_bone_weights.double().numpy()
        indices = self.model.vertex_bone_indices.numpy()
        bone_region = np.array([REGION_NAMES.index(_bone_region(b)) for b in self.bone_labels])
        acc = np.zeros((len(rest_v), len(REGION_NAMES)))
        np.add.at(acc, (np.arange(len(rest_v))[:, None].repeat(weights.shape[1], 1), bone_region[indices]), weights)
        self.vertex_region = acc.argmax(1)
        self.face_parts = face_parts(self.vertex_region, self.faces, rest_v)
        head_verts = np.flatnonzero(self.vertex_region == REGION_NAMES.index("head"))
        self._head_top_vertex = int(head_verts[np.argmax(rest_v[head_verts, 2])])
        tc = self.model.texture_coordinates.double().numpy()
        fti = self.model.face_texture_coordinate_indices.numpy()
        vt = np.zeros((len(rest_v), 2), dtype=np.float32)
        if fti.shape == self.faces.shape:
            vt[self.faces.reshape(-1)] = tc[fti.reshape(-1)]
        self.texcoords = vt

        self._setup_pose_mapping(heads)

    # ---- pose mapping ---------------------------------------------------------------
    def _head(self, heads: np.ndarray, name: str) -> np.ndarray:
        return heads[self._bone[name]]

    def _setup_pose_mapping(self, heads: np.ndarray) -> None:
        torch = _torch()
        h = functools.partial(self._head, heads)
        self._consts: dict[str, object] = {}
        for s, S in (("l", "L"), ("r", "R")):
            sgn = 1.0 if s == "l" else -1.0
            # Shoulder: rest arm direction and elbow hinge axis.
            u = unit(h(f"lowerarm01.{S}") - h(f"upperarm01.{S}"))
            f = unit(h(f"wrist.{S}") - h(f"lowerarm01.{S}"))
            elbow_axis = unit(np.cross(u, f))
            elbow_rest = math.acos(np.clip(u @ f, -1, 1))
            self._consts[f"{s}_shoulder_rest_inv"] = torch.tensor(
                self._ball_rest(u, elbow_axis, np.array([-1.0, 0.0, 0.0])).T, dtype=self._dtype
            )
            self._consts[f"{s}_elbow_axis"] = torch.tensor(elbow_axis, dtype=self._dtype)
            self._consts[f"{s}_elbow_rest"] = elbow_rest
            # Wrist axes from the hand's rest geometry.
            knuckles = np.mean([h(f"finger{i}-1.{S}") for i in (2, 3, 4, 5)], axis=0)
            hand = unit(knuckles - h(f"wrist.{S}"))
            across = unit(h(f"finger2-1.{S}") - h(f"finger5-1.{S}"))  # pinky -> index
            palm = unit(np.cross(hand, across)) * sgn
            self._consts[f"{s}_wrist_flex_axis"] = torch.tensor(unit(np.cross(hand, palm)), dtype=self._dtype)
            self._consts[f"{s}_wrist_dev_axis"] = torch.tensor(unit(np.cross(hand, -across)), dtype=self._dtype)
            # Hip: rest thigh direction; knee hinge = +X.
            u = unit(h(f"lowerleg01.{S}") - h(f"upperleg01.{S}"))
            f = unit(h(f"foot.{S}") - h(f"lowerleg01.{S}"))
            self._consts[f"{s}_hip_rest_inv"] = torch.tensor(
                self._ball_rest(u, np.array([1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])).T, dtype=self._dtype
            )
            cross = np.cross(u, f)
            self._consts[f"{s}_knee_rest"] = math.copysign(math.acos(np.clip(u @ f, -1, 1)), cross[0] or 1.0)

    @staticmethod
    def _ball_rest(d: np.ndarray, hinge_rest: np.ndarray, hinge_neutral: np.ndarray) -> np.ndarray:
        """Rotation taking the anatomical-neutral limb (pointing down, child hinge along
        `hinge_neutral`) to the rest limb (direction d, child hinge `hinge_rest`),
        written as Rx(phi) Ry(theta) Rz(psi) like the pose mapping."""
        theta = math.asin(np.clip(-d[0], -1, 1))
        phi = math.atan2(d[1], -d[2])
        rx = np_axis_angle(np.array([1.0, 0, 0]), phi)
        ry = np_axis_angle(np.array([0, 1.0, 0]), theta)
        n = ry.T @ rx.T @ hinge_rest
        a = math.atan2(hinge_neutral[0] * n[1] - hinge_neutral[1] * n[0], hinge_neutral @ n)  # angle e -> n_xy
        rz = np_axis_angle(np.array([0, 0, 1.0]), a)
        return rx @ ry @ rz

    def pose_deltas(self, pose: np.ndarray):
        """(B, P) anatomical angles -> (B, n_bones, 4, 4) anny local-ref deltas.

        A torch tensor `pose` keeps its dtype and autograd graph (the pose prior's
        retargeting fits angles through this mapping)."""
        torch = _torch()
        p = pose if torch.is_tensor(pose) else torch.as_tensor(np.asarray(pose), dtype=self._dtype)
        B = p.shape[0]
        col = {n: p[:, i] for i, n in enumerate(POSE_DOFS)}
        R: dict[str, object] = {}
        R["root"] = rz(col["root_yaw"]) @ rx(col["root_pitch"]) @ ry(col["root_roll"])
        n = len(self.SPINE_BONES)
        spine = rz(col["spine_rotation"] / n) @ ry(col["spine_lateral"] / n) @ rx(col["spine_flexion"] / n)
        for b in self.SPINE_BONES:
            R[b] = spine
        n = len(self.NECK_BONES)
        neck = rz(col["neck_rotation"] / n) @ ry(col["neck_lateral"] / n) @ rx(col["neck_flexion"] / n)
        for b in self.NECK_BONES:
            R[b] = neck
        R["head"] = rx(col["head_flexion"])
        c = self._consts
        for s, S in (("l", "L"), ("r", "R")):
            side = -1.0 if s == "l" else 1.0  # abduction / internal rotation axis sign
            R[f"upperarm01.{S}"] = (
                rx(-col[f"{s}_shoulder_flexion"])
                @ ry(side * col[f"{s}_shoulder_abduction"])
                @ rz(side * col[f"{s}_shoulder_rotation"])
                @ c[f"{s}_shoulder_rest_inv"]
            )
            R[f"lowerarm01.{S}"] = axis_angle(c[f"{s}_elbow_axis"], col[f"{s}_elbow_flexion"] - c[f"{s}_elbow_rest"])
            R[f"wrist.{S}"] = axis_angle(c[f"{s}_wrist_flex_axis"], col[f"{s}_wrist_flexion"]) @ axis_angle(
                c[f"{s}_wrist_dev_axis"], col[f"{s}_wrist_deviation"]
            )
            R[f"upperleg01.{S}"] = (
                rx(-col[f"{s}_hip_flexion"])
                @ ry(side * col[f"{s}_hip_abduction"])
                @ rz(side * col[f"{s}_hip_rotation"])
                @ c[f"{s}_hip_rest_inv"]
            )
            R[f"lowerleg01.{S}"] = rx(col[f"{s}_knee_flexion"] - c[f"{s}_knee_rest"])
            R[f"foot.{S}"] = rx(-col[f"{s}_ankle_flexion"]) @ ry(-side * col[f"{s}_ankle_inversion"])
        deltas = torch.eye(4, dtype=p.dtype).repeat(B, len(self.bone_labels), 1, 1)
        for bone, rot in R.items():
            deltas[:, self._bone[bone], :3, :3] = rot
        return deltas

    # ---- forward ---------------------------------------------------------------------
    def forward(self, pose: np.ndarray, shape: np.ndarray) -> BodyOutput:
        torch = _torch()
        pose = np.atleast_2d(np.asarray(pose, dtype=np.float64))
        shape = np.atleast_2d(np.asarray(shape, dtype=np.float64))
        B = max(len(pose), len(shape))
        if len(shape) == 1 and B > 1:
            shape = np.repeat(shape, B, 0)
        n_phen = len(self.model.phenotype_labels)
        local = np.full((B, len(self._local_labels)), 0.0)
        if shape.shape[1] > n_phen:  # simulator.params.ALL_SHAPE_NAMES order
            from simulator.params import LOCAL_SHAPE_NAMES

            for i, name in enumerate(LOCAL_SHAPE_NAMES):
                local[:, self._local_labels.index(self.LOCAL_CHANGES[name])] = 2.0 * (shape[:, n_phen + i] - 0.5)
        with torch.no_grad():
            out = self.model(
                self.pose_deltas(pose),
                torch.as_tensor(shape[:, :n_phen], dtype=self._dtype),
                local_changes_kwargs=torch.as_tensor(local, dtype=self._dtype),
            )
            verts = out["vertices"]
            kps = self.keypoint_regressor(out).numpy()
        heads = out["bone_poses"][:, :, :3, 3].numpy()
        v = verts.numpy()
        b = self._bone

        def mid(a, c):
            return 0.5 * (heads[:, b[a]] + heads[:, b[c]])

        joints = {
            "pelvis": mid("upperleg01.L", "upperleg01.R"),
            "left_hip": heads[:, b["upperleg01.L"]],
            "right_hip": heads[:, b["upperleg01.R"]],
            "left_knee": heads[:, b["lowerleg01.L"]],
            "right_knee": heads[:, b["lowerleg01.R"]],
            "left_ankle": heads[:, b["foot.L"]],
            "right_ankle": heads[:, b["foot.R"]],
            "left_toe": heads[:, b["toe1-1.L"]],
            "right_toe": heads[:, b["toe1-1.R"]],
            "spine": heads[:, b["spine03"]],
            "thorax": mid("upperarm01.L", "upperarm01.R") * 0.5 + heads[:, b["neck01"]] * 0.5,
            "neck": heads[:, b["neck03"]],
            "head": heads[:, b["head"]],
            "head_top": v[:, self._head_top_vertex],
            "left_shoulder": heads[:, b["upperarm01.L"]],
            "right_shoulder": heads[:, b["upperarm01.R"]],
            "left_elbow": heads[:, b["lowerarm01.L"]],
            "right_elbow": heads[:, b["lowerarm01.R"]],
            "left_wrist": heads[:, b["wrist.L"]],
            "right_wrist": heads[:, b["wrist.R"]],
            "left_hand": heads[:, b["finger3-1.L"]],
            "right_hand": heads[:, b["finger3-1.R"]],
        }
        J = np.stack([joints[n] for n in JOINT_NAMES], axis=1).astype(np.float32)
        # Pelvis at the origin (anny puts its root bone there, slightly above the hips).
        offset = J[:, :1].copy()
        J -= offset
        v = (v - offset).astype(np.float32)
        kps = (kps - offset).astype(np.float32)
        return BodyOutput(
            vertices=v,
            joints=J,
            keypoints={
                "coco17": kps[:, self._coco_idx],
                "feet6": kps[:, self._feet_idx],
                "h36m17": h36m_from_joints(J),
            },
            rig={k: out[k] for k in ("bone_poses", "rest_bone_poses", "rest_vertices")},
        )


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

BODY_MODELS: dict[str, Callable[..., BodyModel]] = {"anny": AnnyBody}


def register_body_model(name: str, factory: Callable[..., BodyModel]) -> None:
    BODY_MODELS[name] = factory


def available_body_models() -> list[str]:
    return sorted(BODY_MODELS)


@functools.lru_cache(maxsize=4)
def get_body_model(name: str = "anny", **kwargs) -> BodyModel:
    """One instance per process and configuration (models hold large buffers)."""
    if name not in BODY_MODELS:
        if name in ("smpl", "smplx", "smplh"):
            from simulator import smpl_body  # noqa: F401  (registers itself)
        if name not in BODY_MODELS:
            raise AssetError(f"unknown body model {name!r}; available: {', '.join(available_body_models())}")
    return BODY_MODELS[name](**kwargs)
