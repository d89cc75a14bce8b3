"""Joint conventions and the tables that map them onto each other.

Every convention is an ordered list of joint names in one shared vocabulary
(``left_shoulder`` means the same anatomical landmark *label* in COCO, H36M, SMPL and
BlazePose, even though each dataset places it slightly differently: that placement
difference is what ``examiner.targets.calibration`` removes).

Conversion between conventions is linear: ``dst = W @ src`` with ``W`` (J_dst, J_src).
A destination joint is taken from the source joint of the same name when there is one,
otherwise from a recipe in ``DERIVED`` (weighted averages such as ``pelvis = mean of the
hips``). Recipes marked approximate stand in for a landmark the source does not have
(e.g. BlazePose foot index for a COCO-WholeBody big toe); metrics on the *common* joint
set never use them.

The common joint set, ``COMMON_JOINTS``, is the twelve limb joints every built-in
convention labels directly: shoulders, elbows, wrists, hips, knees, ankles. Its root is
the midpoint of the two hips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from simulator.errors import PoseExaminerError
from simulator.joints import COCO17, FEET6, H36M17  # the simulator owns the tables it labels


class ConventionError(PoseExaminerError, ValueError):
    """Unknown joint convention or a malformed user mapping."""


SMPL24 = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
BLAZEPOSE33 = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

COMMON_JOINTS = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)

# The twelve segments between the common joints (limbs, shoulder and hip width, the torso's
# sides): their summed length is a pose-independent measure of body size, used by
# ``examiner.scoring`` to rescale errors to an adult's size (``pa_mpjpe_scaled``).
COMMON_BONES = (
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
)

# COCO keypoint sigmas (pycocotools cocoeval.py, Ronchi & Perona 2017), by joint name.
COCO_SIGMAS: dict[str, float] = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}


@dataclass(frozen=True)
class Recipe:
    """``joint = sum(w * source)`` over named source joints; ``exact`` False when it only
    approximates the landmark (a different anatomical point, or a guess)."""

    terms: tuple[tuple[float, str], ...]
    exact: bool = True


def _mean(*names: str, exact: bool = True) -> Recipe:
    return Recipe(tuple((1.0 / len(names), n) for n in names), exact)


# Recipes, tried in order; the first whose sources all exist (directly or via another
# recipe one level down) is used. Derived joints are standard definitions (H36M pelvis and
# thorax are the hip / shoulder midpoints in the common regressors); "exact=False" ones are
# stand-ins.
DERIVED: dict[str, tuple[Recipe, ...]] = {
    "pelvis": (_mean("left_hip", "right_hip"),),
    "thorax": (_mean("left_shoulder", "right_shoulder"),),
    "spine": (_mean("pelvis", "thorax"), _mean("left_hip", "right_hip", "left_shoulder", "right_shoulder")),
    "neck": (
        _mean("left_shoulder", "right_shoulder", exact=False),
    ),
    "head_top": (),
    "head": (_mean("left_ear", "right_ear", exact=False), Recipe(((1.0, "nose"),), exact=False)),
    "nose": (),
    "left_big_toe": (Recipe(((1.0, "left_foot_index"),), exact=False), Recipe(((1.0, "left_foot"),), exact=False)),
    "right_big_toe": (Recipe(((1.0, "right_foot_index"),), exact=False), Recipe(((1.0, "right_foot"),), exact=False)),
    "left_small_toe": (Recipe(((1.0, "left_foot_index"),), exact=False),),
    "right_small_toe": (Recipe(((1.0, "right_foot_index"),), exact=False),),
    "left_foot": (Recipe(((1.0, "left_foot_index"),), exact=False), _mean("left_big_toe", "left_small_toe", exact=False)),
    "right_foot": (Recipe(((1.0, "right_foot_index"),), exact=False), _mean("right_big_toe", "right_small_toe", exact=False)),
    "left_hand": (_mean("left_index", "left_pinky", exact=False),),
    "right_hand": (_mean("right_index", "right_pinky", exact=False),),
    "spine1": (Recipe(((2 / 3, "pelvis"), (1 / 3, "thorax")), exact=False),),
    "spine2": (_mean("pelvis", "thorax", exact=False),),
    "spine3": (Recipe(((1 / 3, "pelvis"), (2 / 3, "thorax")), exact=False),),
    "left_collar": (Recipe(((0.5, "thorax"), (0.5, "left_shoulder")), exact=False),),
    "right_collar": (Recipe(((0.5, "thorax"), (0.5, "right_shoulder")), exact=False),),
}


@dataclass(frozen=True)
class Convention:
    """An ordered joint list. ``joints`` are names in the shared vocabulary; ``labels`` the
    model's own names (equal to ``joints`` for built-ins); ``sigmas`` (J,) COCO OKS
    sigmas, NaN where the joint has none."""

    name: str
    joints: tuple[str, ...]
    labels: tuple[str, ...] = ()
    description: str = ""
    sigmas: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if len(set(self.joints)) != len(self.joints):
            raise ConventionError(f"convention {self.name!r} has duplicate joint names")
        if not self.labels:
            object.__setattr__(self, "labels", self.joints)
        if len(self.labels) != len(self.joints):
            raise ConventionError(f"convention {self.name!r}: labels and joints differ in length")
        sig = np.array([COCO_SIGMAS.get(j, np.nan) for j in self.joints], dtype=np.float64)
        object.__setattr__(self, "sigmas", sig)

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise ConventionError(f"convention {self.name!r} has no joint {joint!r}") from None

    def root_weights(self) -> np.ndarray:
        """(J,) weights of the root (hip midpoint, else 'pelvis')."""
        w = np.zeros(self.num_joints)
        if "left_hip" in self.joints and "right_hip" in self.joints:
            w[self.index("left_hip")] = w[self.index("right_hip")] = 0.5
        elif "pelvis" in self.joints:
            w[self.index("pelvis")] = 1.0
        else:
            raise ConventionError(f"convention {self.name!r} has no hips or pelvis to use as root")
        return w


_REGISTRY: dict[str, Convention] = {}


def register_convention(conv: Convention, overwrite: bool = False) -> Convention:
    if conv.name in _REGISTRY and not overwrite and _REGISTRY[conv.name] != conv:
        raise ConventionError(f"a different convention named {conv.name!r} is already registered")
    _REGISTRY[conv.name] = conv
    return conv


def user_convention(name: str, labels: Sequence[str], mapping: Mapping[str, str] | None = None) -> Convention:
    """A model's own joint list. ``mapping`` renames its labels into the shared
    vocabulary ({"l_sho": "left_shoulder"}); unmapped labels keep their name (and match
    only joints of that exact name). Registered, so predictions may name it."""
    mapping = dict(mapping or {})
    unknown = set(mapping) - set(labels)
    if unknown:
        raise ConventionError(f"joint mapping for {name!r} names labels that are not in its joint list: {sorted(unknown)}")
    joints = tuple(mapping.get(l, l) for l in labels)
    return register_convention(Convention(name, joints, tuple(labels), "user mapping"), overwrite=True)


for _c in (
    Convention("coco17", COCO17, description="COCO keypoints (17)"),
    Convention("feet6", FEET6, description="COCO-WholeBody foot keypoints (6)"),
    Convention("coco23", COCO17 + FEET6, description="COCO-17 followed by the 6 foot keypoints"),
    Convention("h36m17", H36M17, description="Human3.6M 17-joint skeleton"),
    Convention("smpl24", SMPL24, description="SMPL kinematic joints (24)"),
    Convention("blazepose33", BLAZEPOSE33, description="MediaPipe BlazePose landmarks (33)"),
    Convention("common12", COMMON_JOINTS, description="the limb joints every convention labels"),
):
    register_convention(_c)


def get_convention(name: str | Convention) -> Convention:
    if isinstance(name, Convention):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConventionError(
            f"unknown joint convention {name!r}; known: {', '.join(sorted(_REGISTRY))} "
            "(or declare your own with joint_names/joint_map)"
        ) from None


def available_conventions() -> list[str]:
    return sorted(_REGISTRY)


def _resolve(joint: str, src: Convention, allow_approximate: bool, depth: int = 0) -> tuple[dict[int, float], bool] | None:
    """Weights over src joints for one named joint, and whether it is exact."""
    if joint in src.joints:
        return {src.index(joint): 1.0}, True
    if depth > 2:
        return None
    for recipe in DERIVED.get(joint, ()):
        if not recipe.exact and not allow_approximate:
            continue
        acc: dict[int, float] = {}
        exact = recipe.exact
        for w, name in recipe.terms:
            sub = _resolve(name, src, allow_approximate, depth + 1)
            if sub is None:
                break
            weights, sub_exact = sub
            exact = exact and sub_exact
            for i, v in weights.items():
                acc[i] = acc.get(i, 0.0) + w * v
        else:
            return acc, exact
    return None


def conversion_matrix(
    src: str | Convention, dst: str | Convention, allow_approximate: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(W (J_dst, J_src) float64, valid (J_dst,) bool): ``dst_joints = W @ src_joints`` for
    the valid rows; invalid rows are zero (the source cannot provide that joint)."""
    s, d = get_convention(src), get_convention(dst)
    W = np.zeros((d.num_joints, s.num_joints))
    valid = np.zeros(d.num_joints, dtype=bool)
    for k, joint in enumerate(d.joints):
        r = _resolve(joint, s, allow_approximate)
        if r is None:
            continue
        for i, w in r[0].items():
            W[k, i] = w
        valid[k] = True
    return W, valid


def convert(
    joints: np.ndarray, src: str | Convention, dst: str | Convention, allow_approximate: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """joints (..., J_src, C) -> ((..., J_dst, C) with NaN rows where unavailable, valid (J_dst,))."""
    W, valid = conversion_matrix(src, dst, allow_approximate)
    joints = np.asarray(joints, dtype=np.float64)
    out = np.einsum("ds,...sc->...dc", W, joints)
    out[..., ~valid, :] = np.nan
    return out, valid


def mapping_table(src: str | Convention, dst: str | Convention) -> list[tuple[str, str, bool]]:
    """Human-readable rows (dst joint, formula over src joints, exact) for the docs."""
    s, d = get_convention(src), get_convention(dst)
    rows = []
    for joint in d.joints:
        r = _resolve(joint, s, allow_approximate=True)
        if r is None:
            rows.append((joint, "-", False))
            continue
        weights, exact = r
        formula = " + ".join(
            (s.joints[i] if abs(w - 1) < 1e-9 else f"{w:.3g}*{s.joints[i]}") for i, w in sorted(weights.items())
        )
        rows.append((joint, formula, exact))
    return rows


def common_subset(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [j for j in COMMON_JOINTS if j in names]
