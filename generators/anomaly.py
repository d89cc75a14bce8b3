"""AbHuman-style anatomical anomaly datasets (18 classes) in the Ultralytics YOLO layout
and as COCO JSON.

Each image is one scenario, cycled by sample index (`scenarios`): a normal person, a
person with one anomaly of a part kind (head, neck, body, arm, hand, leg, foot), two
fused people (Abnormal Multi), two people in normal contact (Normal Multi), or a
non-human figure (a human body plan scrambled). Anomalies come from the documented
operations of `simulator.anomaly` and from joints posed beyond their anatomical limits
(`simulator.joints.POSE_LIMITS`); docs/generators.md lists every one.

Labels (boxes from the visible pixels of each part instance, exact per pixel):
- every visible part instance of a human figure: "Normal <Kind>" or "Abnormal <Kind>";
- a human figure with no anomaly: "Normal Human"; a scrambled figure: "Non Human" (no
  part boxes: its parts do not form a human body);
- two figures in contact: "Normal Multi", or "Abnormal Multi" when their bodies are
  fused (interpenetrating), around both.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generators import base, coco
from generators.dense import encode_image
from generators.base import CommonConfig, GeneratorSpec
from generators.errors import GeneratorError
from simulator import anomaly as A
from simulator.rotations import axis_angle_matrix

CLASS_NAMES = (
    "Normal Human",
    "Abnormal Head", "Abnormal Neck", "Abnormal Body", "Abnormal Arm", "Abnormal Hand", "Abnormal Leg",
    "Abnormal Foot", "Abnormal Multi",
    "Non Human",
    "Normal Multi", "Normal Head", "Normal Neck", "Normal Body", "Normal Arm", "Normal Hand", "Normal Leg",
    "Normal Foot",
)
SCENARIOS = ("normal", "head", "neck", "body", "arm", "hand", "leg", "foot", "multi", "non_human", "normal_multi")
# Which anomaly operations each part scenario draws from (docs/generators.md).
OPERATIONS = {
    "head": ("extra_head", "misplaced_head", "reversed_head", "giant_head"),
    "neck": ("long_neck", "neck_bent_beyond_limit", "neck_flexed_beyond_limit"),
    "body": ("long_torso", "torso_twisted_beyond_limit", "torso_bent_back_beyond_limit"),
    "arm": ("extra_arm", "missing_arm", "elbow_bent_backwards", "long_arm"),
    "hand": ("extra_fingers", "missing_fingers", "fingers_bent_backwards", "giant_hand"),
    "leg": ("extra_leg", "missing_leg", "knee_bent_backwards", "long_leg"),
    "foot": ("reversed_foot", "extra_foot", "giant_foot", "ankle_bent_beyond_limit"),
}
DEG = math.pi / 180.0


def class_id(name: str) -> int:
    return CLASS_NAMES.index(name)


@dataclass(frozen=True)
class AnomalyConfig(CommonConfig):
    """scenarios: "all" or a comma list of SCENARIOS, cycled by sample index; val_every:
    every k-th image goes to the val split (0: none); min_pixels: smallest visible part
    box kept, in pixels at 256 x 256 (scaled with the image area). Image format, JPEG
    quality and OpenGL backend: `CommonConfig`."""

    scenarios: str = "all"
    val_every: int = 10
    min_pixels: int = 12
    schema_version: int = 1

    def scenario_list(self) -> tuple[str, ...]:
        if self.scenarios in ("all", "*", ""):
            return SCENARIOS
        items = tuple(s.strip() for s in self.scenarios.split(",") if s.strip())
        bad = [s for s in items if s not in SCENARIOS]
        if bad:
            raise GeneratorError(f"unknown anomaly scenario(s) {bad}; choose from {', '.join(SCENARIOS)} or all")
        return items

    def check(self) -> None:
        super().check()
        self.scenario_list()
        if self.val_every < 0:
            raise GeneratorError(f"--val-every must be >= 0, got {self.val_every}")


# --------------------------------------------------------------------------------------
# Scenario drawing (pure: rng -> spec) and building (spec + posed bodies -> figures)
# --------------------------------------------------------------------------------------


def _mild_pose(rng: np.random.Generator, spread: float = 0.3) -> dict[str, float]:
    """Everyday pose: each DOF uniform within `spread` of its range around neutral; the
    whole body upright (root angles 0)."""
    from simulator.joints import POSE_LIMITS, neutral_pose

    pose = neutral_pose()
    for k, (lo, hi, _) in POSE_LIMITS.items():
        if k.startswith("root"):
            continue
        n = pose[k]
        pose[k] = float(n + spread * rng.uniform(lo - n, hi - n))
    return pose


def _beyond(name: str, rng: np.random.Generator, side: str, lo_deg: float, hi_deg: float) -> float:
    """An angle beyond the joint's anatomical limit by lo..hi degrees (side: 'low' / 'high')."""
    from simulator.joints import POSE_LIMITS

    lo, hi, _ = POSE_LIMITS[name]
    extra = rng.uniform(lo_deg, hi_deg) * DEG
    return float(hi + extra if side == "high" else lo - extra)


@dataclass
class BodySpec:
    pose: dict
    shape: dict
    skin: float
    yaw: float = 0.0
    offset: tuple = (0.0, 0.0, 0.0)


@dataclass
class Spec:
    scenario: str
    op: str | None
    side: int
    bodies: list
    params: dict
    camera: dict
    background: dict
    light: dict


def draw_spec(scenario: str, rng: np.random.Generator) -> Spec:
    """Everything random about one image, drawn from its rng (no rendering)."""
    side = int(rng.integers(2))
    s = "l" if side == 0 else "r"
    op = None
    if scenario in OPERATIONS:
        ops = OPERATIONS[scenario]
        op = ops[int(rng.integers(len(ops)))]

    def body() -> BodySpec:
        shape = {k: float(rng.uniform(0.0, 1.0)) for k in ("gender", "muscle", "weight", "height", "proportions")}
        shape["age"] = float(rng.uniform(0.35, 0.9))
        return BodySpec(pose=_mild_pose(rng), shape=shape, skin=float(rng.uniform(0.0, 1.0)))

    bodies = [body()]
    params: dict = {}
    b = bodies[0]
    # Skeleton anomalies: joints posed beyond their limits; set-ups that keep parts in view.
    if op == "neck_bent_beyond_limit":
        b.pose["neck_lateral"] = _beyond("neck_lateral", rng, "high" if side == 0 else "low", 45, 80)
    elif op == "neck_flexed_beyond_limit":
        b.pose["neck_flexion"] = _beyond("neck_flexion", rng, "high" if rng.random() < 0.5 else "low", 50, 80)
    elif op == "torso_twisted_beyond_limit":
        b.pose["spine_rotation"] = _beyond("spine_rotation", rng, "high" if side == 0 else "low", 90, 135)
    elif op == "torso_bent_back_beyond_limit":
        b.pose["spine_flexion"] = _beyond("spine_flexion", rng, "low", 60, 90)
    elif op == "elbow_bent_backwards":
        # Arm hanging: the forearm points backwards, which a side view shows unmistakably.
        b.pose[f"{s}_shoulder_abduction"] = rng.uniform(5, 15) * DEG
        b.pose[f"{s}_shoulder_flexion"] = rng.uniform(-5, 10) * DEG
        b.pose[f"{s}_shoulder_rotation"] = rng.uniform(-10, 10) * DEG
        b.pose[f"{s}_elbow_flexion"] = _beyond(f"{s}_elbow_flexion", rng, "low", 70, 100)
    elif op == "knee_bent_backwards":
        b.pose[f"{s}_knee_flexion"] = _beyond(f"{s}_knee_flexion", rng, "low", 50, 80)
        b.pose[f"{s}_hip_flexion"] = rng.uniform(10, 30) * DEG
    elif op == "ankle_bent_beyond_limit":
        b.pose[f"{s}_ankle_flexion"] = _beyond(f"{s}_ankle_flexion", rng, "high", 70, 110)
        b.pose[f"{s}_knee_flexion"] = rng.uniform(0, 15) * DEG
    if scenario == "hand" or op in ("extra_arm", "long_arm"):
        # Arm out to the side, so the hand / arm is seen against the background.
        b.pose[f"{s}_shoulder_abduction"] = rng.uniform(50, 100) * DEG
        b.pose[f"{s}_shoulder_flexion"] = rng.uniform(-10, 30) * DEG
        b.pose[f"{s}_elbow_flexion"] = rng.uniform(0, 30) * DEG
        b.pose[f"{s}_wrist_flexion"] = rng.uniform(-15, 15) * DEG
    if scenario in ("multi", "normal_multi"):
        bodies.append(body())
        for bb in bodies:
            for k in ("l", "r"):
                bb.pose[f"{k}_shoulder_abduction"] = rng.uniform(5, 25) * DEG
        bodies[0].yaw = float(rng.uniform(-25, 25) * DEG)
        bodies[1].yaw = float(rng.uniform(-25, 25) * DEG)
        params["fuse_depth"] = float(rng.uniform(0.35, 0.6))  # fraction of the bodies' widths overlapping
        params["gap"] = float(rng.uniform(0.0, 0.02))
        params["front_back"] = bool(rng.random() < 0.3)
    # Operation parameters.
    params.update({
        "angle": float(rng.uniform(25, 45) * DEG) * (1 if rng.random() < 0.5 else -1),
        "factor": float(rng.uniform(0.0, 1.0)),
        "fingers": [int(x) for x in rng.permutation(np.arange(1, 6))[:3]],
        "count": int(rng.integers(1, 3)),
        "scramble": [bool(x) for x in rng.random(3) < 0.5],
    })
    camera = {
        "azimuth": float(rng.uniform(-40, 40) * DEG),
        "elevation": float(rng.uniform(-5, 20) * DEG),
        "fill": float(rng.uniform(0.75, 0.95)),
        "close": bool(rng.random() < 0.5),
        "retry": [float(x) for x in rng.uniform(-1, 1, 12)],
    }
    if op in ("knee_bent_backwards", "ankle_bent_beyond_limit", "torso_bent_back_beyond_limit",
              "neck_flexed_beyond_limit", "reversed_foot", "elbow_bent_backwards"):
        # Sagittal-plane anomalies: seen from the side of the affected limb.
        camera["azimuth"] = float((1.0 if side == 0 else -1.0) * rng.uniform(60, 90) * DEG)
    elif op in ("reversed_head", "extra_head"):
        camera["azimuth"] = float(rng.uniform(-25, 25) * DEG)
        camera["close"] = True
    background = {
        "kind": ("solid", "noise", "checker")[int(rng.integers(3))],
        "hue": float(rng.random()), "saturation": float(rng.uniform(0.0, 0.6)),
        "value": float(rng.uniform(0.25, 0.95)), "texture_scale": float(rng.random()),
    }
    light = {"azimuth": float(rng.uniform(-60, 60) * DEG), "elevation": float(rng.uniform(15, 60) * DEG),
             "intensity": float(rng.uniform(2.5, 5.0)), "ambient": float(rng.uniform(0.2, 0.45))}
    return Spec(scenario, op, side, bodies, params, camera, background, light)


def _unit(v):
    return v / np.linalg.norm(v)


def _side_joint(fig, base: str, side: int) -> np.ndarray:
    return fig.joints[("left_" if side == 0 else "right_") + base]


@dataclass(frozen=True)
class _Frame:
    """What an operation needs besides the figure: its name, side (0 left, 1 right), drawn
    parameters p (p["factor"] = t in [0, 1] scales the distortion), the body's joints J,
    and its up, lateral (towards `side`) and forward directions (unit vectors)."""

    op: str
    side: int
    p: dict
    t: float
    J: dict
    up: np.ndarray
    lateral: np.ndarray
    forward: np.ndarray

    @property
    def sign(self) -> int:
        return 1 if self.side == 0 else -1


def _extra_head(fig, f: _Frame) -> None:
    fm = fig.faces_of(("head", "neck"))
    pivot = fig.attachment(fig.vertices_of(("head", "neck")))
    R = axis_angle_matrix(f.forward, f.sign * (45 + 20 * f.t) * DEG)
    A.duplicate(fig, fm, R, pivot, f.lateral * (0.05 + 0.03 * f.t), "head", -1, f.op)


def _misplaced_head(fig, f: _Frame) -> None:
    fm = fig.faces_of("head")
    pivot = fig.attachment(fig.vertices_of("head"))
    target = _side_joint(fig, "shoulder", f.side) + f.up * 0.02 + f.lateral * 0.05
    if f.p["count"] == 2:
        target = 0.5 * (f.J["spine"] + f.J["thorax"]) + f.forward * 0.12  # on the chest
    R = axis_angle_matrix(f.up, (f.p["angle"]))
    A.move(fig, fm, R, pivot, target - pivot, "head", -1, f.op)


def _reversed_head(fig, f: _Frame) -> None:
    A.rotate(fig, fig.vertices_of("head"), f.J["head"], f.up, math.pi, f.op)
    fig.mark(fig.instance_index("head"), f.op)


def _scaled(part: str, joint: str, base: float, slope: float):
    """Scale `part` about `joint` of its side by base + slope * t."""

    def op(fig, f: _Frame) -> None:
        A.scale(fig, fig.vertices_of(part, f.side), _side_joint(fig, joint, f.side), base + slope * f.t)
        fig.mark(fig.instance_index(part, f.side), f.op)

    return op


def _giant_head(fig, f: _Frame) -> None:
    vm = fig.vertices_of("head")
    A.scale(fig, vm, fig.attachment(vm), 1.7 + 0.5 * f.t)
    fig.mark(fig.instance_index("head"), f.op)


def _long_neck(fig, f: _Frame) -> None:
    vm = fig.vertices_of(("head", "neck"))
    a = fig.attachment(fig.vertices_of("neck") | fig.vertices_of("head"))
    A.stretch(fig, vm, a, f.J["head"], 3.0 + 1.5 * f.t)
    fig.mark(fig.instance_index("neck"), f.op)


def _pose_only(part: str, sided: bool):
    """Joint-limit anomalies: the pose does the work (see `draw_spec`); record and mark it."""

    def op(fig, f: _Frame) -> None:
        fig.ops.append({"op": f.op})
        fig.mark(fig.instance_index(part, f.side) if sided else fig.instance_index(part), f.op)

    return op


def _long_torso(fig, f: _Frame) -> None:
    A.stretch(fig, ~fig.vertices_of(("leg", "foot")), f.J["pelvis"], f.J["neck"], 1.5 + 0.4 * f.t)
    fig.mark(fig.instance_index("body"), f.op)


def _extra_arm(fig, f: _Frame) -> None:
    fm = fig.faces_of(("arm", "hand"), f.side)
    pivot = _side_joint(fig, "shoulder", f.side)
    R = axis_angle_matrix(f.forward, f.sign * (45 + 30 * f.t) * DEG)  # raised above the original
    A.duplicate(fig, fm, R, pivot, f.forward * 0.04, "arm", f.side, f.op)


def _missing(parts: tuple[str, str], label: str, radius: float):
    def op(fig, f: _Frame) -> None:
        A.remove(fig, fig.faces_of(parts, f.side), label, f.side, f.op, radius=radius)

    return op


def _stretched(parts: tuple[str, str], label: str, root: str, joint: str, base: float, slope: float):
    """Stretch `parts` of the side along root -> joint by base + slope * t."""

    def op(fig, f: _Frame) -> None:
        A.stretch(fig, fig.vertices_of(parts, f.side), _side_joint(fig, root, f.side), _side_joint(fig, joint, f.side),
                  base + slope * f.t)
        fig.mark(fig.instance_index(label, f.side), f.op)

    return op


def _fingers(fig, f: _Frame) -> None:
    _finger_op(fig, f.op, f.side, f.p)
    fig.mark(fig.instance_index("hand", f.side), f.op)


def _extra_leg(fig, f: _Frame) -> None:
    pivot = _side_joint(fig, "hip", f.side)
    R = axis_angle_matrix(f.forward, f.sign * (35 + 25 * f.t) * DEG)  # sticking out sideways
    A.duplicate(fig, fig.faces_of(("leg", "foot"), f.side), R, pivot, f.lateral * 0.03, "leg", f.side, f.op)


def _reversed_foot(fig, f: _Frame) -> None:
    ankle = _side_joint(fig, "ankle", f.side)
    axis = _unit(_side_joint(fig, "knee", f.side) - ankle)
    A.rotate(fig, fig.vertices_of("foot", f.side), ankle, axis, math.pi, f.op)
    fig.mark(fig.instance_index("foot", f.side), f.op)


def _extra_foot(fig, f: _Frame) -> None:
    ankle = _side_joint(fig, "ankle", f.side)
    R = axis_angle_matrix(f.up, f.sign * (70 + 40 * f.t) * DEG)
    A.duplicate(fig, fig.faces_of("foot", f.side), R, ankle, f.lateral * 0.02, "foot", f.side, f.op)


# Every operation in OPERATIONS -> fig, frame -> None (a test applies each one).
OPERATION_TABLE = {
    "extra_head": _extra_head,
    "misplaced_head": _misplaced_head,
    "reversed_head": _reversed_head,
    "giant_head": _giant_head,
    "long_neck": _long_neck,
    "neck_bent_beyond_limit": _pose_only("neck", sided=False),
    "neck_flexed_beyond_limit": _pose_only("neck", sided=False),
    "long_torso": _long_torso,
    "torso_twisted_beyond_limit": _pose_only("body", sided=False),
    "torso_bent_back_beyond_limit": _pose_only("body", sided=False),
    "extra_arm": _extra_arm,
    "missing_arm": _missing(("arm", "hand"), "arm", 0.07),
    "elbow_bent_backwards": _pose_only("arm", sided=True),
    "long_arm": _stretched(("arm", "hand"), "arm", "shoulder", "elbow", 1.8, 0.5),
    "extra_fingers": _fingers,
    "missing_fingers": _fingers,
    "fingers_bent_backwards": _fingers,
    "giant_hand": _scaled("hand", "wrist", 2.0, 0.6),
    "extra_leg": _extra_leg,
    "missing_leg": _missing(("leg", "foot"), "leg", 0.08),
    "knee_bent_backwards": _pose_only("leg", sided=True),
    "long_leg": _stretched(("leg", "foot"), "leg", "hip", "knee", 1.6, 0.4),
    "reversed_foot": _reversed_foot,
    "extra_foot": _extra_foot,
    "giant_foot": _scaled("foot", "ankle", 2.0, 0.6),
    "ankle_bent_beyond_limit": _pose_only("foot", sided=True),
}


def apply_operation(fig, op: str, side: int, p: dict) -> None:
    """Apply anomaly `op` to figure `fig` (see module docstring and docs)."""
    operation = OPERATION_TABLE.get(op)
    if operation is None:
        raise GeneratorError(f"unknown anomaly operation {op!r}")
    J = fig.joints
    lateral = np.array([1.0, 0.0, 0.0]) if side == 0 else np.array([-1.0, 0.0, 0.0])
    operation(fig, _Frame(op, side, p, p["factor"], J, _unit(J["head_top"] - J["pelvis"]), lateral,
                          np.array([0.0, -1.0, 0.0])))


def _finger_op(fig, op: str, side: int, p: dict) -> None:
    def finger(k: int) -> np.ndarray:
        return fig.bone_vertices(f"finger{k}-", side)

    wrist = _side_joint(fig, "wrist", side)
    knuck = {k: fig.attachment(finger(k)) for k in range(1, 6)}
    across = _unit(knuck[2] - knuck[5])
    along = _unit(np.mean([knuck[k] for k in (2, 3, 4, 5)], axis=0) - wrist)
    normal = _unit(np.cross(along, across))
    hand = fig.instance_index("hand", side)
    if op == "extra_fingers":
        for j, k in enumerate(sorted({max(2, k) for k in p["fingers"][: p["count"]]})):
            outward = 1.0 if k <= 3 else -1.0  # index / middle fan towards the thumb side, others away
            R = axis_angle_matrix(normal, outward * (24 + 10 * j) * DEG)
            A.duplicate(fig, fig.faces_with(finger(k)), R, knuck[k], across * 0.008 * outward, "hand", side,
                        "extra_finger", instance=hand)
    elif op == "missing_fingers":
        vm = np.zeros(len(fig.vertices), dtype=bool)
        for k in p["fingers"][: p["count"] + 1]:
            vm |= finger(k)
        A.remove(fig, fig.faces_with(vm), "hand", side, op, stump=False)
    elif op == "fingers_bent_backwards":
        angle = (80 + 30 * p["factor"]) * DEG
        for k in (2, 3, 4, 5):
            # Bend towards the back of the hand (against the palm's flexion direction).
            A.rotate(fig, finger(k), knuck[k], across, angle if side == 0 else -angle, "finger_bent_back")


def build_figures(spec: Spec, bodies_out: list[tuple], anat, faces) -> tuple[list, list[dict]]:
    """Posed bodies -> figures with the scenario's operation applied; returns (figures,
    groups) where a group is {"figures": [i, j], "fused": bool}."""
    from simulator import appearance
    from simulator.anomaly import Figure
    from simulator.body import JOINT_NAMES

    figs = []
    for bspec, (verts, joints) in zip(spec.bodies, bodies_out):
        J = {n: joints[i] for i, n in enumerate(JOINT_NAMES)}
        figs.append(Figure.from_body(anat, faces, verts, J, appearance.skin_rgb(bspec.skin)))
    groups = []
    if spec.scenario in ("multi", "normal_multi"):
        _place_pair(figs, spec)
        groups.append({"figures": [0, 1], "fused": spec.scenario == "multi"})
    elif spec.scenario == "non_human":
        _scramble(figs[0], spec)
    elif spec.op is not None:
        apply_operation(figs[0], spec.op, spec.side, spec.params)
    return figs, groups


def _yaw(fig, angle: float) -> None:
    R = axis_angle_matrix(np.array([0.0, 0.0, 1.0]), angle)
    c = fig.joints["pelvis"].copy()
    fig.vertices = (fig.vertices - c) @ R.T + c
    fig.joints = {k: (v - c) @ R.T + c for k, v in fig.joints.items()}


def _translate(fig, d: np.ndarray) -> None:
    fig.vertices = fig.vertices + d
    fig.joints = {k: v + d for k, v in fig.joints.items()}


def _place_pair(figs, spec: Spec) -> None:
    """Normal contact: the second body beside the first with a gap of 0-2 cm (no
    interpenetration: the bodies' extents along the line between them do not overlap).
    Fused: the second body overlaps the first by a fraction of their widths (side by side,
    or one in front of the other)."""
    a, b = figs
    _yaw(a, spec.bodies[0].yaw)
    _yaw(b, spec.bodies[1].yaw)
    # Stand both on the same floor.
    _translate(b, np.array([0.0, 0.0, a.vertices[:, 2].min() - b.vertices[:, 2].min()]))
    p = spec.params
    if spec.scenario == "multi" and p["front_back"]:
        depth = a.vertices[:, 1].max() - a.vertices[:, 1].min()
        _translate(b, np.array([0.06, a.vertices[:, 1].max() - b.vertices[:, 1].min() - (0.5 + 0.4 * p["fuse_depth"]) * depth, 0.0]))
        return
    if spec.scenario == "multi":
        # Pelvises (1 - fuse_depth) torso widths apart: the torsos interpenetrate.
        torso = a.vertices[a.vertex_kind == 2]
        width = torso[:, 0].max() - torso[:, 0].min()
        shift = a.joints["pelvis"][0] - b.joints["pelvis"][0] + (1.0 - p["fuse_depth"]) * width
    else:
        shift = _contact_shift(a.vertices, b.vertices) + p["gap"]
    _translate(b, np.array([shift, 0.0, 0.0]))


def _contact_shift(va: np.ndarray, vb: np.ndarray, cell: float = 0.02) -> float:
    """Smallest shift of vb along +x after which, in every (y, z) cell (and its 8
    neighbours), vb lies right of va: the bodies touch where they are closest and do not
    interpenetrate."""
    from scipy.ndimage import maximum_filter

    lo = np.minimum(va[:, 1:].min(0), vb[:, 1:].min(0))
    ia = np.floor((va[:, 1:] - lo) / cell).astype(np.int64)
    ib = np.floor((vb[:, 1:] - lo) / cell).astype(np.int64)
    shape = tuple(np.maximum(ia.max(0), ib.max(0)) + 1)
    max_a = np.full(shape, -np.inf)
    min_b = np.full(shape, np.inf)
    np.maximum.at(max_a, (ia[:, 0], ia[:, 1]), va[:, 0])
    np.minimum.at(min_b, (ib[:, 0], ib[:, 1]), vb[:, 0])
    max_a = maximum_filter(max_a, size=3, mode="constant", cval=-np.inf)
    both = np.isfinite(max_a) & np.isfinite(min_b)
    if not both.any():
        return float(va[:, 0].max() - vb[:, 0].min())
    return float((max_a[both] - min_b[both]).max())


def _scramble(fig, spec: Spec) -> None:
    """Non-human body plan: legs moved to the shoulders (pointing up and out) and arms to
    the hips; with the spec's flags also the head moved onto the belly and a third leg
    sticking out of the chest."""
    J = fig.joints
    forward = np.array([0.0, -1.0, 0.0])
    flags = spec.params["scramble"]
    for side in (0, 1):
        sgn = 1.0 if side == 0 else -1.0
        s = "left_" if side == 0 else "right_"
        R = axis_angle_matrix(forward, -sgn * (130 + 20 * spec.params["factor"]) * DEG)
        A.move(fig, fig.faces_of(("leg", "foot"), side), R, J[s + "hip"], J[s + "shoulder"] - J[s + "hip"], "leg", side, "leg_on_shoulder")
        A.move(fig, fig.faces_of(("arm", "hand"), side), axis_angle_matrix(forward, sgn * 10 * DEG), J[s + "shoulder"],
               J[s + "hip"] - J[s + "shoulder"] + np.array([sgn * 0.06, 0.0, 0.0]), "arm", side, "arm_on_hip")
    if flags[0]:
        pivot = fig.attachment(fig.vertices_of("head"))
        A.move(fig, fig.faces_of("head"), np.eye(3), pivot, J["spine"] + forward * 0.1 - pivot, "head", -1, "head_on_belly")
    if flags[1]:
        legs = fig.vertices_of(("leg", "foot"), 1)
        A.duplicate(fig, fig.faces_with(legs), axis_angle_matrix(np.array([1.0, 0.0, 0.0]), math.pi / 2),
                    J["right_shoulder"], J["thorax"] - J["right_shoulder"] + forward * 0.05, "leg", 1, "leg_from_chest")
    fig.ops.append({"op": "non_human"})


# --------------------------------------------------------------------------------------
# Camera, labels, writer
# --------------------------------------------------------------------------------------

FOV = 45 * DEG
CLOSE_UP = {"hand": 0.16, "foot": 0.2, "head": 0.3, "neck": 0.3}


def frame(figs, focus: np.ndarray | None, spec: Spec, attempt: int, size: int, view: np.ndarray | None = None):
    """(CameraParams, target): the whole scene, or a close-up of `focus` (points), seen
    from the spec's direction or `view` (unit vector from the target towards the camera);
    other directions on retries."""
    from simulator.params import CameraParams

    cam = spec.camera
    az, el = cam["azimuth"], cam["elevation"]
    if view is not None:
        el = math.asin(float(np.clip(view[2], -0.95, 0.95)))
        az = math.atan2(float(view[0]), float(-view[1]))
    if attempt > 0:
        az += cam["retry"][attempt % 6] * 70 * DEG
        el = float(np.clip(el + cam["retry"][6 + attempt % 6] * 25 * DEG, -20 * DEG, 60 * DEG))
    close = focus is not None and (cam["close"] or spec.scenario in ("hand", "foot") or attempt > 0)
    if close:
        pts = focus
        target = 0.5 * (pts.min(0) + pts.max(0))
        radius = max(CLOSE_UP.get(spec.scenario, 0.35), 1.4 * np.linalg.norm(pts - target, axis=1).max())
    else:
        pts = np.concatenate([f.vertices[np.unique(f.faces)] for f in figs])  # removed parts leave vertices
        target = 0.5 * (pts.min(0) + pts.max(0))
        radius = np.linalg.norm(pts - target, axis=1).max()
    distance = float(radius / math.tan(0.5 * FOV) / cam["fill"])
    camera = CameraParams(azimuth=float(az), elevation=float(el), distance=max(distance, 0.3), fov_y=FOV,
                          width=size, height=size)
    return camera, target


def _boxes(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per id 0..n-1 of an (H, W) int map (-1 = none): pixel counts (n,) and xyxy boxes
    (n, 4) in pixel edges."""
    H, W = ids.shape
    ys, xs = np.nonzero(ids >= 0)
    v = ids[ys, xs]
    count = np.bincount(v, minlength=n)
    box = np.zeros((n, 4))
    box[:, 0], box[:, 1] = W, H
    np.minimum.at(box[:, 0], v, xs)
    np.minimum.at(box[:, 1], v, ys)
    np.maximum.at(box[:, 2], v, xs + 1)
    np.maximum.at(box[:, 3], v, ys + 1)
    return count, box


def labels_for(frame_, figs, groups, spec: Spec, min_px: int) -> list[dict]:
    """Boxes (xyxy pixels), class names and what they are, from the exact instance map."""
    from simulator.anomaly import PART_KINDS

    offsets = np.cumsum([0] + [len(f.instances) for f in figs])
    count, box = _boxes(frame_.instance, int(offsets[-1]))
    fcount, fbox = _boxes(frame_.figure, len(figs))
    fused = {i for g in groups if g["fused"] for i in g["figures"]}
    out = []
    for i, fig in enumerate(figs):
        if spec.scenario == "non_human":
            if fcount[i] >= min_px:
                out.append({"class": "Non Human", "box": fbox[i], "figure": i, "kind": "figure", "side": -1,
                            "op": "non_human", "pixels": int(fcount[i])})
            continue
        abnormal = False
        for j, inst in enumerate(fig.instances):
            if inst.kind not in PART_KINDS:
                continue
            abnormal |= inst.abnormal
            g = offsets[i] + j
            if count[g] >= min_px:
                name = ("Abnormal " if inst.abnormal else "Normal ") + inst.kind.capitalize()
                out.append({"class": name, "box": box[g], "figure": i, "kind": inst.kind, "side": inst.side,
                            "op": inst.op, "pixels": int(count[g])})
        if not abnormal and i not in fused and fcount[i] >= min_px:
            out.append({"class": "Normal Human", "box": fbox[i], "figure": i, "kind": "figure", "side": -1,
                        "op": None, "pixels": int(fcount[i])})
    for g in groups:
        members = [i for i in g["figures"] if fcount[i] >= min_px]
        if len(members) == len(g["figures"]):
            b = np.array([fbox[members].min(0)[0], fbox[members].min(0)[1], fbox[members].max(0)[2],
                          fbox[members].max(0)[3]])
            out.append({"class": "Abnormal Multi" if g["fused"] else "Normal Multi", "box": b, "figure": -1,
                        "kind": "group", "side": -1, "op": "fused" if g["fused"] else None,
                        "pixels": int(fcount[members].sum())})
    return out


def target_class(spec: Spec) -> str:
    return {"normal": "Normal Human", "multi": "Abnormal Multi", "normal_multi": "Normal Multi",
            "non_human": "Non Human"}.get(spec.scenario, "Abnormal " + spec.scenario.capitalize())


def _focus(figs, spec: Spec) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(points to frame in a close-up, preferred view direction) for a part anomaly: the
    abnormal instance's vertices; size anomalies add the head for scale; hands are seen
    along the palm normal (palm or back, by the spec's coin)."""
    if spec.scenario in ("normal", "multi", "normal_multi", "non_human"):
        return None, None
    fig = figs[0]
    inst = [j for j, x in enumerate(fig.instances) if x.abnormal]
    if not inst:
        return None, None
    pts = fig.vertices[np.unique(fig.faces[np.isin(fig.face_instance, inst)])]
    if spec.op in ("giant_hand", "giant_foot", "giant_head", "reversed_foot"):
        # Context in view: a normal part of the same body for scale (the head for a hand,
        # the other foot for a foot, the chest for a head); the knee for a reversed foot.
        ref = {"giant_hand": fig.vertices_of("head"), "giant_foot": fig.vertices_of("foot", 1 - spec.side),
               "giant_head": fig.vertices_of("body"), "reversed_foot": fig.vertices_of("leg", spec.side)}[spec.op]
        pts = np.concatenate([pts, fig.vertices[ref]])
    view = None
    if spec.scenario == "hand" and spec.op != "giant_hand":
        side = spec.side
        knuck = [fig.attachment(fig.bone_vertices(f"finger{k}-", side)) for k in (2, 5)]
        wrist = _side_joint(fig, "wrist", side)
        along = _unit(0.5 * (knuck[0] + knuck[1]) - wrist)
        normal = _unit(np.cross(along, _unit(knuck[0] - knuck[1])))
        view = normal * (1.0 if spec.camera["retry"][0] > 0 else -1.0)
        view = _unit(view + 0.25 * np.array(spec.camera["retry"][1:4]))
    return (pts if len(pts) else None), view


class AnomalyWriter(base.SampleWriter):
    batch_size = 8
    max_attempts = 6

    def __init__(self, config: AnomalyConfig) -> None:
        from simulator.anomaly import anatomy, get_composite_renderer
        from simulator.body import get_body_model

        self.config = config
        self.scenarios = config.scenario_list()
        self.body = get_body_model("anny")
        self.anatomy = anatomy(self.body)
        self.faces = np.asarray(self.body.faces)
        self.renderer = get_composite_renderer(config.gl)
        # --renderer blender: the final frame's RGB is redrawn by Cycles; the labels stay
        # the composite's (the same meshes at the same camera).
        self.redraw = None
        if config.renderer == "blender":
            from simulator.blender.client import BlenderFigures

            self.redraw = BlenderFigures()
        self.min_px = max(4, int(round(config.min_pixels * (config.size / 256.0) ** 2)))

    def scenario_of(self, index: int) -> str:
        return self.scenarios[index % len(self.scenarios)]

    def posed_bodies(self, specs: list[Spec]) -> list[list[tuple]]:
        """Per spec, its bodies posed by the body model: [(vertices, joints), ...]."""
        from simulator.iuv import forward_fixed_batch
        from simulator.joints import POSE_DOFS
        from simulator.params import SHAPE_NAMES

        bodies = [b for s in specs for b in s.bodies]
        P = np.array([[b.pose[k] for k in POSE_DOFS] for b in bodies])
        S = np.array([[b.shape.get(k, 0.5) for k in SHAPE_NAMES] for b in bodies])
        out = forward_fixed_batch(self.body, P, S)
        posed, k = [], 0
        for spec in specs:
            posed.append([(out.vertices[k + j], out.joints[k + j]) for j in range(len(spec.bodies))])
            k += len(spec.bodies)
        return posed

    def write_batch(self, indices, rngs, shard_dir: Path, rel_dir: str) -> list[dict]:
        specs = [draw_spec(self.scenario_of(i), r) for i, r in zip(indices, rngs)]
        return [self._one(index, spec, posed, shard_dir, rel_dir)
                for index, spec, posed in zip(indices, specs, self.posed_bodies(specs))]

    def compose(self, spec: Spec, posed) -> tuple:
        """The figures of one image and its frame: (figures, groups, frame, camera, target,
        labels, attempts). The camera is retried until the target class is visible; with
        --renderer blender the final frame's RGB is Cycles' (the labels stay the composite's)."""
        from simulator.params import BackgroundParams, LightParams

        figs, groups = build_figures(spec, posed, self.anatomy, self.faces)
        focus, view = _focus(figs, spec)
        want = target_class(spec)
        light, background = LightParams(**spec.light), BackgroundParams(**spec.background)
        for attempt in range(self.max_attempts):
            camera, target = frame(figs, focus, spec, attempt, self.config.size, view)
            fr = self.renderer.render(figs, camera, light, background, target)
            labels = labels_for(fr, figs, groups, spec, self.min_px)
            hit = [lb for lb in labels if lb["class"] == want]
            if hit and max(lb["pixels"] for lb in hit) >= 4 * self.min_px:
                break
        if self.redraw is not None:
            rgb, _mask, _labels = self.redraw.redraw(figs, fr, camera, light, background, target)
            fr = dataclasses.replace(fr, rgb=rgb)
        return figs, groups, fr, camera, target, labels, attempt + 1

    def _one(self, index: int, spec: Spec, posed, shard_dir: Path, rel_dir: str) -> dict:
        c = self.config
        figs, groups, fr, camera, target, labels, attempts = self.compose(spec, posed)
        want = target_class(spec)
        split = "val" if c.val_every and index % c.val_every == c.val_every - 1 else "train"
        stem = f"{index:09d}"
        img_rel = f"images/{split}/{stem}.{c.image_format}"
        lab_rel = f"labels/{split}/{stem}.txt"
        for rel in (img_rel, lab_rel):
            (Path(shard_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
        (Path(shard_dir) / img_rel).write_bytes(encode_image(fr.rgb, c.image_format, c.jpeg_quality))
        W = H = c.size
        lines, anns = [], []
        for lb in labels:
            x0, y0, x1, y1 = (float(v) for v in lb["box"])
            cls = class_id(lb["class"])
            lines.append(f"{cls} {(x0 + x1) / 2 / W:.6f} {(y0 + y1) / 2 / H:.6f} {(x1 - x0) / W:.6f} {(y1 - y0) / H:.6f}")
            anns.append({"image_id": index + 1, "category_id": cls + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                         "area": float(lb["pixels"]), "iscrowd": 0,
                         "attributes": {"kind": lb["kind"], "side": lb["side"], "figure": lb["figure"], "op": lb["op"]}})
        (Path(shard_dir) / lab_rel).write_text("\n".join(lines) + ("\n" if lines else ""))
        image = {"id": index + 1, "file_name": f"{rel_dir}/{img_rel}", "width": W, "height": H, "split": split,
                 "scenario": spec.scenario, "operation": spec.op}
        return {
            "index": index,
            "image": image,
            "label_file": f"{rel_dir}/{lab_rel}",
            "annotations": anns,
            "scenario": spec.scenario,
            "operation": spec.op,
            "target_class": want,
            "target_visible": any(lb["class"] == want for lb in labels),
            "attempts": attempts,
            "figures": [{"ops": f.ops, "pose": b.pose, "shape": b.shape, "skin": b.skin}
                        for f, b in zip(figs, spec.bodies)],
            "camera": {"azimuth": camera.azimuth, "elevation": camera.elevation, "distance": camera.distance,
                       "target": [float(x) for x in target]},
        }


def prepare(config: AnomalyConfig) -> None:
    config.check()


def finalize(config: AnomalyConfig, out: Path) -> dict:
    import yaml

    out = Path(out)
    images, annotations, splits = [], [], {"train": [], "val": []}
    per_class = np.zeros(len(CLASS_NAMES), dtype=int)
    missing = 0
    for shard in base.iter_shards(out):
        for r in shard["records"]:
            images.append(r["image"])
            annotations += r["annotations"]
            splits[r["image"]["split"]].append("./" + r["image"]["file_name"])
            for a in r["annotations"]:
                per_class[a["category_id"] - 1] += 1
            missing += not r["target_visible"]
    categories = [{"id": i + 1, "name": n, "supercategory": "anomaly" if n.startswith(("Abnormal", "Non")) else "normal"}
                  for i, n in enumerate(CLASS_NAMES)]
    info = {"description": "PoseExaminer anatomical anomalies (AbHuman classes)", "version": "1.0",
            "generator": "poseexaminer", "seed": config.seed, "n": config.n}
    base.atomic_write_text(out / "annotations.json", base.dumps(coco.coco_dataset(images, annotations, categories, info)))
    for split, lines in splits.items():
        base.atomic_write_text(out / f"{split}.txt", "\n".join(lines) + ("\n" if lines else ""))
    data = {"path": str(out.resolve()), "train": "train.txt", "val": "val.txt", "nc": len(CLASS_NAMES),
            "names": {i: n for i, n in enumerate(CLASS_NAMES)}}
    base.atomic_write_text(out / "data.yaml", "# PoseExaminer anomaly dataset (Ultralytics YOLO)\n"
                             + yaml.safe_dump(data, sort_keys=False))
    return {"annotations": "annotations.json", "data_yaml": "data.yaml", "train": "train.txt", "val": "val.txt",
            "images": len(images), "boxes_per_class": {n: int(c) for n, c in zip(CLASS_NAMES, per_class)},
            "target_not_visible": int(missing)}


LAYOUT = {
    "data.yaml": "Ultralytics YOLO dataset file: path, train/val image lists, nc = 18, names",
    "train.txt / val.txt": "image paths (./shards/...) of each split",
    "annotations.json": "COCO: images (with scenario / operation), boxes with category 1..18 and attributes",
    "shards/shard-NNNNN/images/{train,val}/": "RGB images",
    "shards/shard-NNNNN/labels/{train,val}/": "YOLO labels: class cx cy w h (normalised), one box per line",
    "shards/shard-NNNNN/shard.json": "the shard's records: scenario, operation, figures' ops / pose / shape, camera",
}

SPEC = GeneratorSpec(name="anomaly", config_class=AnomalyConfig, writer=AnomalyWriter, prepare=prepare,
                     finalize=finalize, layout=LAYOUT)
