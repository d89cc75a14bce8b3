"""The ``anny`` body backend (default; Apache-2.0, ships in its wheel).

The protocol, its output and the registry live in ``simulator.body_model`` (re-exported
here, with the joint tables of ``simulator.joints``, for existing importers); the SMPL
family is in ``simulator.smpl_body``.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import numpy as np

from simulator.body_model import (
    BODY_MODELS,
    BodyModel,
    BodyOutput,
    available_body_models,
    get_body_model,
    h36m_from_joints,
    register_body_model,
)
from simulator.errors import AssetError
from simulator.joints import (
    COCO17,
    FEET6,
    H36M17,
    JOINT_NAMES,
    KEYPOINT_CONVENTIONS,
    SURFACE_KEYPOINTS,
)
from simulator.parts import REGION_NAMES, face_parts
from simulator.paths import configure_caches
from simulator.pose_mapping import SIDES, bone_rotations
from simulator.rotations import axis_angle_matrix, lazy_torch as _torch, unit

__all__ = [  # the backend, plus the protocol, registry and joint tables re-exported for existing importers
    "AnnyBody", "BODY_MODELS", "BodyModel", "BodyOutput", "available_body_models", "get_body_model",
    "h36m_from_joints", "register_body_model", "COCO17", "FEET6", "H36M17", "JOINT_NAMES",
    "KEYPOINT_CONVENTIONS", "SURFACE_KEYPOINTS",
]

log = logging.getLogger(__name__)

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
    # simulator.pose_mapping rotation group -> anny bones carrying it.
    _bone_map = {
        "root": ("root",), "spine": SPINE_BONES, "neck": NECK_BONES, "head": ("head",),
        **{
            f"{s}_{group}": (f"{bone}.{s.upper()}",)
            for s in SIDES
            for group, bone in (("shoulder", "upperarm01"), ("elbow", "lowerarm01"), ("wrist", "wrist"),
                                ("hip", "upperleg01"), ("knee", "lowerleg01"), ("ankle", "foot"))
        },
    }

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
        rx = axis_angle_matrix(np.array([1.0, 0, 0]), phi)
        ry = axis_angle_matrix(np.array([0, 1.0, 0]), theta)
        n = ry.T @ rx.T @ hinge_rest
        a = math.atan2(hinge_neutral[0] * n[1] - hinge_neutral[1] * n[0], hinge_neutral @ n)  # angle e -> n_xy
        rz = axis_angle_matrix(np.array([0, 0, 1.0]), a)
        return rx @ ry @ rz

    def pose_deltas(self, pose: np.ndarray):
        """(B, P) anatomical angles -> (B, n_bones, 4, 4) anny local-ref deltas.

        A torch tensor `pose` keeps its dtype and autograd graph (the pose prior's
        retargeting fits angles through this mapping)."""
        torch = _torch()
        p = pose if torch.is_tensor(pose) else torch.as_tensor(np.asarray(pose), dtype=self._dtype)
        B = p.shape[0]
        R = bone_rotations(p, self._consts, self._bone_map)
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


register_body_model("anny", AnnyBody)
