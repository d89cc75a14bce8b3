"""SMPL, SMPL+H and SMPL-X body models (user-supplied files) behind the `BodyModel` protocol.

The model files are licence-gated: users download them themselves (SMPL from
https://smpl.is.tue.mpg.de, SMPL-X from https://smpl-x.is.tue.mpg.de, SMPL+H from
https://mano.is.tue.mpg.de) and point PoseExaminer at them with the ``model_path`` body
option or the ``POSEEXAMINER_SMPL_DIR`` environment variable. The maths runs through the
`smplx` package's own layers (``smplx.SMPLLayer`` / ``SMPLHLayer`` / ``SMPLXLayer``).
See docs/body_models.md for the file formats, the pose mapping and the shape mapping.

Frames. SMPL's template is a T-pose, Y up, facing +Z, the subject's left +X. Our world
frame (``simulator.body``) is Z up, facing -Y, left +X, pelvis at the origin. The change of
frame ``C`` (a +90 degree turn about X) is folded into the global orientation, so every
vertex and joint comes out of `smplx` already in our frame; each child joint's local
rotation ``R`` (written in our frame) is handed to SMPL as ``C^T R C``.

Pose. As in ``AnnyBody``: every joint rotation is expressed in rest-aligned axes carried
by the parent joint (which is what SMPL's local joint rotations are, since all SMPL joint
frames are aligned with the world in the rest pose). Ball joints use flexion -> abduction
-> axial rotation, measured from the anatomical neutral position (limb hanging down); the
T-pose rest is measured from the model's own skeleton and undone, so the rest arm is at
90 degrees of abduction and ``pose = 0`` hangs the arms at the sides.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
import pickle
import zipfile
from typing import Iterable, Mapping

import numpy as np

from simulator.body_model import BodyOutput, h36m_from_joints, register_body_model
from simulator.errors import AssetError
from simulator.smpl_files import (  # noqa: F401  (ENV_VAR: re-exported)
    ENV_VAR,
    MODEL_SPECS,
    model_texcoords,
    read_model_file,
    resolve_model_file,
)
from simulator.joints import COCO17, FEET6, JOINT_NAMES
from simulator.pose_mapping import SIDES, bone_rotations
from simulator.rotations import lazy_torch as _torch, unit
from simulator.params import SHAPE_NAMES
from simulator.parts import REGION_NAMES, face_parts

log = logging.getLogger(__name__)


# Our world frame from SMPL's: (x, y, z)_smpl -> (x, -z, y).
SMPL_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# Phenotype -> beta: a phenotype of 0 / 1 gives -BETA_RANGE / +BETA_RANGE standard deviations.
BETA_RANGE = 2.0

_BODY_JOINTS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
_FINGERS = tuple(
    f"{side}_{finger}{k}"
    for side in ("left", "right")
    for finger in ("index", "middle", "pinky", "ring", "thumb")
    for k in (1, 2, 3)
)
SKELETONS: dict[str, tuple[str, ...]] = {
    "smpl": _BODY_JOINTS + ("left_hand", "right_hand"),
    "smplh": _BODY_JOINTS + _FINGERS,
    "smplx": _BODY_JOINTS + ("jaw", "left_eye_smplhf", "right_eye_smplhf") + _FINGERS,
}

# Surface landmarks taken from vertices: our names <- the names in smplx.vertex_ids.
_LANDMARKS = {
    "nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear",
    "left_big_toe": "LBigToe", "left_small_toe": "LSmallToe", "left_heel": "LHeel",
    "right_big_toe": "RBigToe", "right_small_toe": "RSmallToe", "right_heel": "RHeel",
}
LANDMARK_NAMES = tuple(_LANDMARKS)
# Vertex counts of the published topologies -> key into smplx.vertex_ids.VERTEX_IDS
# (SMPL and SMPL+H share a topology).
_KNOWN_TOPOLOGIES = {6890: "smplh", 10475: "smplx"}

# Our joint names -> the SMPL skeleton joint that provides them.
_JOINT_SOURCES = {
    "pelvis": "pelvis", "left_hip": "left_hip", "right_hip": "right_hip",
    "left_knee": "left_knee", "right_knee": "right_knee",
    "left_ankle": "left_ankle", "right_ankle": "right_ankle",
    "left_toe": "left_foot", "right_toe": "right_foot", "spine": "spine2", "head": "head",
    "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow", "right_elbow": "right_elbow",
    "left_wrist": "left_wrist", "right_wrist": "right_wrist",
}
# COCO-17 body points are SMPL joint centres (as in SPIN / mmhuman3d's SMPL_45 mapping);
# the face points are vertices.
_COCO_FROM_JOINT = {
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
}


def joint_region(name: str) -> str:
    """SMPL skeleton joint -> coarse region (``simulator.parts.REGION_NAMES``) of the
    vertices it skins (a joint's weight moves the segment below it)."""
    side, _, base = name.partition("_")
    if side not in ("left", "right"):
        side, base = "", name
    if name in ("pelvis", "spine1", "spine2", "spine3") or base == "collar":
        return "torso"
    if name in ("neck", "head", "jaw") or base.startswith("eye"):
        return "head"  # DensePose's head parts include the neck
    by_base = {
        "hip": "upper_leg_{}", "knee": "lower_leg_{}", "ankle": "{}_foot", "foot": "{}_foot",
        "shoulder": "upper_arm_{}", "elbow": "lower_arm_{}", "wrist": "{}_hand", "hand": "{}_hand",
    }
    if base in by_base:
        return by_base[base].format(side)
    if base.rstrip("123") in ("index", "middle", "pinky", "ring", "thumb"):
        return f"{side}_hand"
    raise ValueError(f"unmapped SMPL joint {name}")


# --------------------------------------------------------------------------------------
# Geometry helpers (numpy, rest pose)
# --------------------------------------------------------------------------------------


def _signed_volume(v: np.ndarray, faces: np.ndarray) -> float:
    t = v[faces]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def _signed_angle(a: np.ndarray, b: np.ndarray, axis: np.ndarray) -> float:
    """Angle rotating `a` towards `b` about `axis` (right-handed), radians."""
    return math.atan2(float(np.cross(a, b) @ axis), float(a @ b))


def _orthogonal(v: np.ndarray, to: np.ndarray) -> np.ndarray:
    return unit(v - (v @ to) * to)


def _ball_rest(d: np.ndarray, hinge_rest: np.ndarray, hinge_neutral: np.ndarray) -> np.ndarray:
    """Rotation taking the anatomical-neutral limb (pointing down, -Z, with its child hinge
    along `hinge_neutral`) to the rest limb (direction `d`, hinge `hinge_rest`, both unit
    and orthogonal). Built from two frames, so it has no gimbal singularity."""
    down = np.array([0.0, 0.0, -1.0])
    neutral = np.stack([down, hinge_neutral, np.cross(down, hinge_neutral)], axis=1)
    rest = np.stack([d, hinge_rest, np.cross(d, hinge_rest)], axis=1)
    return rest @ neutral.T


def geometric_landmarks(rest_vertices: np.ndarray, vertex_region: np.ndarray) -> dict[str, int]:
    """Landmark vertices picked from the rest mesh (our frame) when the topology is not a
    published one: nose = most forward head vertex; eyes / ears / toes / heels = the
    vertex nearest a point placed on the head's / foot's bounding box."""
    out: dict[str, int] = {}

    def nearest(ids: np.ndarray, target: np.ndarray) -> int:
        return int(ids[np.argmin(np.linalg.norm(rest_vertices[ids] - target, axis=1))])

    head = np.flatnonzero(vertex_region == REGION_NAMES.index("head"))
    hv = rest_vertices[head]
    lo, hi = hv.min(0), hv.max(0)
    centre = 0.5 * (lo + hi)
    nose = int(head[np.argmin(hv[:, 1])])
    out["nose"] = nose
    nz = rest_vertices[nose, 2]
    front = head[hv[:, 1] < centre[1]]
    half_w = 0.5 * (hi[0] - lo[0])
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        eye_xz = np.array([centre[0] + sgn * 0.35 * half_w, nz + 0.3 * (hi[2] - nz)])
        d = np.linalg.norm(rest_vertices[front][:, [0, 2]] - eye_xz, axis=1)
        out[f"{side}_eye"] = int(front[np.argmin(d)])
        ear_x = hi[0] if sgn > 0 else lo[0]
        out[f"{side}_ear"] = nearest(head, np.array([ear_x, centre[1], nz + 0.1 * (hi[2] - nz)]))
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        foot = np.flatnonzero(vertex_region == REGION_NAMES.index(f"{side}_foot"))
        fv = rest_vertices[foot]
        flo, fhi = fv.min(0), fv.max(0)
        medial, lateral = (flo[0], fhi[0]) if sgn > 0 else (fhi[0], flo[0])
        toe_y = flo[1] + 0.15 * (fhi[1] - flo[1])
        out[f"{side}_big_toe"] = nearest(foot, np.array([0.7 * medial + 0.3 * lateral, flo[1], flo[2]]))
        out[f"{side}_small_toe"] = nearest(foot, np.array([0.2 * medial + 0.8 * lateral, toe_y, flo[2]]))
        out[f"{side}_heel"] = nearest(foot, np.array([0.5 * (flo[0] + fhi[0]), fhi[1], flo[2]]))
    return out


# --------------------------------------------------------------------------------------
# The body model
# --------------------------------------------------------------------------------------


def _import_smplx():
    try:
        import smplx
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise AssetError(f"the smplx package is not installed ({e}); run `pip install smplx`") from None
    return smplx


# simulator.pose_mapping rotation group -> SMPL joints carrying it (the root, the global
# orientation, is composed with the change of frame in `local_rotations`).
_BONE_MAP = {
    "root": ("pelvis",), "spine": ("spine1", "spine2", "spine3"), "neck": ("neck",), "head": ("head",),
    **{
        f"{s}_{group}": (f"{side}_{group}",)
        for s, side in zip(SIDES, ("left", "right"))
        for group in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    },
}


class SmplBody:
    """SMPL / SMPL+H / SMPL-X through `smplx`, in PoseExaminer's frame and pose parameters.

    model_type: smpl | smplh | smplx; model_path: file or folder (default $POSEEXAMINER_SMPL_DIR);
    gender: neutral | male | female (chooses the file; the gender phenotype does not);
    num_betas: shape components used; keypoint_vertex_ids: {name: vertex} (or pairs) for the
    face / foot landmarks (``LANDMARK_NAMES``) on a topology that is not a published one;
    dtype: torch dtype name.
    """

    def __init__(
        self,
        model_type: str = "smpl",
        model_path: str | os.PathLike | None = None,
        gender: str = "neutral",
        num_betas: int = 10,
        keypoint_vertex_ids: Mapping[str, int] | Iterable[tuple[str, int]] | None = None,
        dtype: str = "float32",
    ) -> None:
        if model_type not in MODEL_SPECS:
            raise AssetError(f"unknown SMPL model type {model_type!r}; one of {', '.join(MODEL_SPECS)}")
        if gender not in ("neutral", "male", "female"):
            raise AssetError(f"unknown SMPL gender {gender!r}; one of neutral, male, female")
        torch = _torch()
        self.name = model_type
        self.model_type = model_type
        self.path = resolve_model_file(model_type, model_path, gender)
        self._dtype = getattr(torch, dtype)
        self.model, data = self._load(gender, num_betas)
        self.skeleton = SKELETONS[model_type]
        self._j = {n: i for i, n in enumerate(self.skeleton)}
        n_skel = self.model.J_regressor.shape[0]
        if n_skel != len(self.skeleton):
            raise AssetError(
                f"{self.path} has {n_skel} joints, a {model_type.upper()} model has {len(self.skeleton)}; "
                "is it the right model type?"
            )

        C = SMPL_TO_WORLD
        self._C = torch.tensor(C, dtype=self._dtype)
        faces = np.asarray(self.model.faces_tensor.numpy(), dtype=np.int32)
        self.faces = faces
        v_template = self.model.v_template.double().numpy()
        rest_joints = self.model.J_regressor.double().numpy() @ v_template
        # Rest (T-pose, mean shape) in our frame, pelvis at the origin.
        origin = rest_joints[0]
        rest_v = (v_template - origin) @ C.T
        rest_j = (rest_joints - origin) @ C.T
        self._rest_vertices = rest_v

        weights = self.model.lbs_weights.double().numpy()  # (V, J)
        joint_to_region = np.array([REGION_NAMES.index(joint_region(n)) for n in self.skeleton])
        acc = np.zeros((len(rest_v), len(REGION_NAMES)))
        for r in range(len(REGION_NAMES)):
            acc[:, r] = weights[:, joint_to_region == r].sum(1)
        self.vertex_region = acc.argmax(1)
        self.face_parts = face_parts(self.vertex_region, faces, rest_v)
        head = np.flatnonzero(self.vertex_region == REGION_NAMES.index("head"))
        self._head_top_vertex = int(head[np.argmax(rest_v[head, 2])])
        self.texcoords = model_texcoords(data, faces, len(rest_v))
        self.landmark_vertices = self._landmarks(keypoint_vertex_ids, rest_v)

        self._setup_pose_mapping(rest_j)
        self._setup_shape_mapping(v_template, faces)

    # ---- loading -----------------------------------------------------------------------
    def _load(self, gender: str, num_betas: int):
        smplx = _import_smplx()
        torch = _torch()
        _, _, url, layer = MODEL_SPECS[self.model_type]
        path = self.path
        ext = "npz" if path.suffix == ".npz" else "pkl"
        kwargs = dict(gender=gender, num_betas=num_betas, dtype=self._dtype)
        data: Mapping = {}
        try:
            if self.model_type == "smplx":
                # SMPLX loads its own file (it takes no data_struct); read only the UVs here.
                if ext == "npz":
                    with np.load(path, allow_pickle=True) as f:
                        data = {k: f[k] for k in ("vt", "ft") if k in f.files}
                kwargs.update(ext=ext, use_pca=False, num_expression_coeffs=10)
            else:
                data = read_model_file(path)
                if self.model_type == "smplh":
                    # Some SMPL+H releases (e.g. AMASS's .npz) carry no hand PCA; the layer
                    # takes full hand rotations, so an identity basis and flat mean suffice.
                    for s in ("l", "r"):
                        data.setdefault(f"hands_components{s}", np.eye(45))
                        data.setdefault(f"hands_mean{s}", np.zeros(45))
                    kwargs.update(use_pca=False)
                kwargs["data_struct"] = smplx.utils.Struct(**data)
            # smplx prints shape-space warnings on stdout; keep the CLI's output clean.
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                model = getattr(smplx, layer)(model_path=str(path), **kwargs)
            if printed.getvalue().strip():
                log.debug("smplx: %s", printed.getvalue().strip())
        except AssetError:
            raise
        except ModuleNotFoundError as e:
            raise AssetError(
                f"{path} needs the {e.name!r} module to unpickle; convert it to .npz (docs/body_models.md)"
            ) from None
        except (AttributeError, KeyError, ValueError, TypeError, IndexError, EOFError, OSError,
                pickle.UnpicklingError, zipfile.BadZipFile) as e:
            raise AssetError(
                f"{path} is not a readable {self.model_type.upper()} model file ({type(e).__name__}: {e}); "
                f"get the official files from {url}"
            ) from None
        # We take keypoints from our own vertex ids; smplx's extra-joint selector indexes the
        # published topologies and would fail on any other mesh.
        model.vertex_joint_selector.extra_joints_idxs = torch.zeros(0, dtype=torch.long)
        return model.eval(), data

    def _landmarks(self, given, rest_v: np.ndarray) -> dict[str, int]:
        V = len(rest_v)
        topology = _KNOWN_TOPOLOGIES.get(V)
        if given is not None:
            given = dict(given.items() if isinstance(given, Mapping) else given)
            unknown = set(given) - set(LANDMARK_NAMES)
            if unknown:
                raise AssetError(
                    f"unknown keypoint_vertex_ids {sorted(unknown)}; valid: {', '.join(LANDMARK_NAMES)}"
                )
        else:
            given = {}
        if topology is not None and len(given) < len(LANDMARK_NAMES):
            from smplx.vertex_ids import vertex_ids as VERTEX_IDS

            ids = {ours: VERTEX_IDS[topology][theirs] for ours, theirs in _LANDMARKS.items()}
        else:
            ids = {}
            if len(given) < len(LANDMARK_NAMES):
                log.info("%s: %d vertices is not a published topology; landmarks from the rest mesh", self.path, V)
                ids = geometric_landmarks(rest_v, self.vertex_region)
        ids.update({k: int(v) for k, v in given.items()})
        bad = {k: v for k, v in ids.items() if not 0 <= v < V}
        if bad:
            raise AssetError(f"keypoint vertex ids {bad} are out of range for {self.path} ({V} vertices)")
        return ids

    # ---- pose mapping ------------------------------------------------------------------
    def _setup_pose_mapping(self, rest_j: np.ndarray) -> None:
        torch = _torch()
        j = self._j
        hand = "hand" if self.model_type == "smpl" else "middle1"
        self._consts: dict[str, object] = {}

        def t(a):
            return torch.tensor(np.asarray(a), dtype=self._dtype)

        def P(name: str) -> np.ndarray:
            return rest_j[j[name]]

        for s, side in (("l", "left"), ("r", "right")):
            sgn = 1.0 if s == "l" else -1.0
            # Arm. The T-pose has the palms down, so (arm abducted 90 degrees from hanging
            # with the palm against the thigh) the elbow hinge is vertical: -Z on the left.
            u = unit(P(f"{side}_elbow") - P(f"{side}_shoulder"))
            f = unit(P(f"{side}_wrist") - P(f"{side}_elbow"))
            hinge = _orthogonal(np.array([0.0, 0.0, -sgn]), u)
            rest = _ball_rest(u, hinge, np.array([-1.0, 0.0, 0.0]))
            self._consts[f"{s}_shoulder_rest_inv"] = t(rest.T)
            self._consts[f"{s}_elbow_axis"] = t(hinge)
            self._consts[f"{s}_elbow_rest"] = _signed_angle(u, f, hinge)
            # Wrist axes from the rest hand: flexion towards the palm, ulnar deviation
            # towards the little finger (same construction as AnnyBody).
            h = unit(P(f"{side}_{hand}") - P(f"{side}_wrist"))
            palm = _orthogonal(np.array([0.0, 0.0, -1.0]), h)
            across = sgn * np.cross(palm, h)  # little finger -> index finger
            self._consts[f"{s}_wrist_flex_axis"] = t(unit(np.cross(h, palm)))
            self._consts[f"{s}_wrist_dev_axis"] = t(unit(np.cross(h, -across)))
            # Leg: knee hinge +X.
            u = unit(P(f"{side}_knee") - P(f"{side}_hip"))
            f = unit(P(f"{side}_ankle") - P(f"{side}_knee"))
            x = np.array([1.0, 0.0, 0.0])
            rest = _ball_rest(u, _orthogonal(x, u), x)
            self._consts[f"{s}_hip_rest_inv"] = t(rest.T)
            self._consts[f"{s}_knee_rest"] = _signed_angle(u, f, x)

    def local_rotations(self, pose: np.ndarray):
        """(B, len(POSE_DOFS)) anatomical angles -> (B, len(skeleton), 3, 3) SMPL local
        joint rotations (root: global orientation including the change of frame)."""
        torch = _torch()
        p = torch.as_tensor(np.asarray(pose), dtype=self._dtype)
        B = p.shape[0]
        j = self._j
        R = bone_rotations(p, self._consts, _BONE_MAP)
        root = R.pop("pelvis")
        C = self._C
        rots = torch.eye(3, dtype=self._dtype).repeat(B, len(self.skeleton), 1, 1)
        for name, rot in R.items():
            rots[:, j[name]] = C.T @ rot @ C
        rots[:, j["pelvis"]] = root @ C
        if self.model_type != "smpl":
            rots[:, j["left_index1"]:] = self._hand_rest[None]  # relaxed hands (the model's mean)
        return rots

    @functools.cached_property
    def _hand_rest(self):
        """(30, 3, 3) finger rotations of the model's mean (relaxed) hand pose, left then right."""
        torch = _torch()
        from smplx.lbs import batch_rodrigues

        mean = torch.cat([self.model.left_hand_mean, self.model.right_hand_mean]).reshape(-1, 3).to(self._dtype)
        return batch_rodrigues(mean)

    # ---- shape mapping -----------------------------------------------------------------
    def _setup_shape_mapping(self, v_template: np.ndarray, faces: np.ndarray) -> None:
        """Phenotype height drives beta 0, weight beta 1, each signed so that a larger
        phenotype gives a taller / larger-volume body on *this* model file (the sign of a
        principal component is arbitrary). Gender, age, muscle, proportions: no effect."""
        dirs = self.model.shapedirs.double().numpy()  # (V, 3, num_betas)
        self.beta_signs = np.zeros(dirs.shape[2])
        if dirs.shape[2] >= 1:
            height = [np.ptp((v_template + a * dirs[:, :, 0])[:, 1]) for a in (1.0, -1.0)]
            self.beta_signs[0] = 1.0 if height[0] >= height[1] else -1.0
        if dirs.shape[2] >= 2:
            vol = [abs(_signed_volume(v_template + a * dirs[:, :, 1], faces)) for a in (1.0, -1.0)]
            self.beta_signs[1] = 1.0 if vol[0] >= vol[1] else -1.0

    def betas(self, shape: np.ndarray) -> np.ndarray:
        """(B, >= 6) shape values in [0, 1], ``SHAPE_NAMES`` first -> (B, num_betas)."""
        shape = np.atleast_2d(np.asarray(shape, dtype=np.float64))
        out = np.zeros((len(shape), len(self.beta_signs)))
        for k, pheno in enumerate(("height", "weight")[: len(self.beta_signs)]):
            out[:, k] = self.beta_signs[k] * BETA_RANGE * (2.0 * shape[:, SHAPE_NAMES.index(pheno)] - 1.0)
        return out

    # ---- forward -----------------------------------------------------------------------
    def forward(self, pose: np.ndarray, shape: np.ndarray) -> BodyOutput:
        """pose (B, len(POSE_DOFS)) radians; shape (B, 6) or (B, 10) values in [0, 1] in
        ``simulator.params.ALL_SHAPE_NAMES`` order (only height and weight act, the local
        changes are ignored; B may be 1 for either). Returns metres in our world frame, pelvis at the origin."""
        torch = _torch()
        pose = np.atleast_2d(np.asarray(pose, dtype=np.float64))
        shape = np.atleast_2d(np.asarray(shape, dtype=np.float64))
        B = max(len(pose), len(shape))
        if len(pose) == 1 and B > 1:
            pose = np.repeat(pose, B, 0)
        if len(shape) == 1 and B > 1:
            shape = np.repeat(shape, B, 0)
        with torch.no_grad():
            rots = self.local_rotations(pose)
            kwargs = dict(betas=torch.as_tensor(self.betas(shape), dtype=self._dtype), global_orient=rots[:, :1])
            j = self._j
            if self.model_type == "smpl":
                kwargs["body_pose"] = rots[:, 1:]
            else:
                kwargs["body_pose"] = rots[:, 1 : len(_BODY_JOINTS)]
                li, ri = j["left_index1"], j["right_index1"]
                kwargs["left_hand_pose"] = rots[:, li:ri]
                kwargs["right_hand_pose"] = rots[:, ri:]
                if self.model_type == "smplx":
                    kwargs["jaw_pose"] = rots[:, j["jaw"]]
                    kwargs["leye_pose"] = rots[:, j["left_eye_smplhf"]]
                    kwargs["reye_pose"] = rots[:, j["right_eye_smplhf"]]
            out = self.model(**kwargs)
        v = out.vertices.double().numpy()
        sk = out.joints[:, : len(self.skeleton)].double().numpy()
        root = sk[:, :1].copy()
        v -= root
        sk -= root

        def at(name):
            return sk[:, j[name]]

        joints = {ours: at(theirs) for ours, theirs in _JOINT_SOURCES.items()}
        hand = "hand" if self.model_type == "smpl" else "middle1"
        joints["left_hand"], joints["right_hand"] = at(f"left_{hand}"), at(f"right_{hand}")
        shoulders = 0.5 * (at("left_shoulder") + at("right_shoulder"))
        joints["thorax"] = 0.5 * shoulders + 0.5 * at("neck")
        joints["neck"] = 0.5 * (at("neck") + at("head"))
        joints["head_top"] = v[:, self._head_top_vertex]
        J = np.stack([joints[n] for n in JOINT_NAMES], axis=1).astype(np.float32)
        lm = self.landmark_vertices
        coco = np.stack(
            [joints[n] if n in _COCO_FROM_JOINT else v[:, lm[n]] for n in COCO17], axis=1
        ).astype(np.float32)
        feet = np.stack([v[:, lm[n]] for n in FEET6], axis=1).astype(np.float32)
        return BodyOutput(
            vertices=v.astype(np.float32),
            joints=J,
            keypoints={"coco17": coco, "feet6": feet, "h36m17": h36m_from_joints(J)},
        )


register_body_model("smpl", functools.partial(SmplBody, "smpl"))
register_body_model("smplh", functools.partial(SmplBody, "smplh"))
register_body_model("smplx", functools.partial(SmplBody, "smplx"))
