"""Scenes in words: PoseScript-style posecodes from a 3D skeleton and the scene parameters.

A posecode is one categorical fact about a scene ("left knee bent past 90 degrees",
"seen from behind") computed from geometry, not from the parameter values that produced
it, so it reads the same whatever body model or pose parametrisation made the skeleton.

Input skeleton: ``joints`` (J, 3) float, metres, world frame of the body models
(``simulator.body``: +Z up, the subject faces -Y at rest, its left is +X), joints in
``simulator.body.JOINT_NAMES`` order. Limb codes are measured in the body's own frame
(torso up, hips left-right), so "arm above the head" means the same for a person lying
down; lean, lying and upside-down codes are measured against gravity (+Z).

``posecodes(params, joints)`` gives the codes of one scene; ``describe(codes)`` joins
them into a sentence: pose phrases, then the view, then framing, then the body and the
scene, separated by semicolons. ``region_description`` describes a box of the search
space by the codes that hold for most scenes inside it and are much rarer outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from simulator.body import JOINT_NAMES
from simulator.params import ParamSpace, SceneParams, age_years

J = {name: i for i, name in enumerate(JOINT_NAMES)}
SIDES = (("l", "left"), ("r", "right"))
GROUP_ORDER = ("pose", "view", "frame", "body", "scene")


@dataclass(frozen=True)
class Posecode:
    """One fact about a scene.

    key: stable identifier ("l_knee_bent90"); phrase: the words ("left knee bent past 90
    degrees"); group: pose | view | frame | body | scene. Codes are atomic (one side of
    the body each) so their frequencies can be compared; `describe` merges them.
    template: for left/right codes, the phrase with "{side}" and "{s}" (plural) slots,
    so "left knee bent" and "right knee bent" read "both knees bent"; supersedes: keys
    this code makes redundant ("bent past 90 degrees" supersedes "bent")."""

    key: str
    phrase: str
    group: str
    template: str | None = None
    supersedes: tuple[str, ...] = ()


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v * 0.0


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between vectors a and b."""
    a, b = _unit(a), _unit(b)
    return math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))


def body_frame(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left, up, forward) unit vectors of the torso: up from pelvis to neck, left from
    the right to the left hip and shoulder (made orthogonal to up), forward = left x up."""
    up = _unit(joints[J["neck"]] - joints[J["pelvis"]])
    left = (joints[J["left_hip"]] - joints[J["right_hip"]]) + (joints[J["left_shoulder"]] - joints[J["right_shoulder"]])
    left = _unit(left - (left @ up) * up)
    return left, up, np.cross(left, up)


def _flexion(joints: np.ndarray, a: str, b: str, c: str) -> float:
    """Bend at joint b in degrees (0 = straight limb a-b-c)."""
    return 180.0 - _angle(joints[J[a]] - joints[J[b]], joints[J[c]] - joints[J[b]])


def _sided(s: str, key: str, template: str, supersedes: tuple[str, ...] = ()) -> Posecode:
    side = "left" if s == "l" else "right"
    return Posecode(f"{s}_{key}", template.format(side=side, s=""), "pose", template,
                    tuple(f"{s}_{k}" for k in supersedes))


LYING_TILT = 65.0  # degrees between the torso and the vertical beyond which a body lies


def pose_posecodes(joints: np.ndarray) -> list[Posecode]:
    """Codes of the body pose alone. joints (len(JOINT_NAMES), 3) metres, world frame."""
    joints = np.asarray(joints, dtype=np.float64)
    left, up, fwd = body_frame(joints)
    out: list[Posecode] = []

    # Global orientation of the torso against gravity.
    torso = _unit(joints[J["neck"]] - joints[J["pelvis"]])
    tilt = _angle(torso, np.array([0.0, 0.0, 1.0]))
    # Leaning is reported from 20 degrees on, also when the body lies or is upside down
    # (those codes supersede it in the sentence), so a region of "bent forward, sometimes
    # lying" still shares the leaning code.
    if tilt >= 20.0:
        # Direction of the lean in the hips' frame (hips left-right, horizontal forward).
        hips_left = joints[J["left_hip"]] - joints[J["right_hip"]]
        hips_left = _unit(np.array([hips_left[0], hips_left[1], 0.0]))
        hips_fwd = np.cross(hips_left, np.array([0.0, 0.0, 1.0]))
        f, s = float(torso @ hips_fwd), float(torso @ hips_left)
        if abs(f) >= abs(s):
            direction = "forward" if f > 0 else "backward"
        else:
            direction = "to its left" if s > 0 else "to its right"
        out.append(Posecode(f"torso_leaning_{direction.replace('its ', '').replace(' ', '_')}", f"torso leaning {direction}", "pose"))
    leaning = tuple(f"torso_leaning_{d}" for d in ("forward", "backward", "to_left", "to_right"))
    if tilt >= 135.0:
        out.append(Posecode("upside_down", "body upside down", "pose", supersedes=leaning + ("lying",)))
    if tilt >= LYING_TILT:
        out.append(Posecode("lying", "body lying horizontally", "pose", supersedes=leaning))

    # Trunk twist: shoulder line against hip line, about the torso axis.
    sh = joints[J["left_shoulder"]] - joints[J["right_shoulder"]]
    hp = joints[J["left_hip"]] - joints[J["right_hip"]]
    sh_p, hp_p = sh - (sh @ up) * up, hp - (hp @ up) * up
    twist = math.degrees(math.atan2(float(np.cross(hp_p, sh_p) @ up), float(hp_p @ sh_p)))
    if abs(twist) >= 25.0:
        d = "left" if twist > 0 else "right"
        out.append(Posecode(f"torso_twisted_{d}", f"torso twisted to its {d}", "pose"))

    # Head against the torso: bowed / tilted back / tilted sideways.
    head = _unit(joints[J["head_top"]] - joints[J["neck"]])
    hf, hs = float(head @ fwd), float(head @ left)
    if _angle(head, up) >= 30.0:
        if abs(hf) >= abs(hs):
            out.append(Posecode("head_bowed", "head bowed", "pose") if hf > 0 else Posecode("head_back", "head tilted back", "pose"))
        else:
            d = "left" if hs > 0 else "right"
            out.append(Posecode(f"head_tilted_{d}", f"head tilted to its {d}", "pose"))

    if tilt < LYING_TILT:
        hl = joints[J["left_hip"]] - joints[J["right_hip"]]
        leg_up = np.array([0.0, 0.0, 1.0])
        leg_fwd = np.cross(_unit(np.array([hl[0], hl[1], 0.0])), leg_up)
    else:
        leg_up, leg_fwd = up, fwd
    for s, side in SIDES:
        # Knees and elbows: "bent" from 45 degrees, "bent past 90 degrees" from 90.
        for joint, (a, b, c) in (("knee", ("hip", "knee", "ankle")), ("elbow", ("shoulder", "elbow", "wrist"))):
            flex = _flexion(joints, f"{side}_{a}", f"{side}_{b}", f"{side}_{c}")
            if flex >= 45.0:
                out.append(_sided(s, f"{joint}_bent", "{side} " + joint + "{s} bent"))
            if flex >= 90.0:
                out.append(_sided(s, f"{joint}_bent90", "{side} " + joint + "{s} bent past 90 degrees", (f"{joint}_bent",)))
        # Hands: above the shoulder, above the head, behind the head, behind the back.
        w = joints[J[f"{side}_wrist"]]
        if float(w @ up) > float(joints[J[f"{side}_shoulder"]] @ up):
            out.append(_sided(s, "hand_raised", "{side} hand{s} above the shoulder{s}"))
        if float(w @ up) > float(joints[J["head_top"]] @ up):
            out.append(_sided(s, "arm_above_head", "{side} arm{s} above the head", ("hand_raised",)))
        rel_head = w - joints[J["head"]]
        if np.linalg.norm(rel_head) < 0.3 and float(rel_head @ fwd) < -0.03:
            out.append(_sided(s, "hand_behind_head", "{side} hand{s} behind the head"))
        rel_back = w - joints[J["spine"]]
        if float(rel_back @ fwd) < -0.12 and float(w @ up) < float(joints[J["neck"]] @ up):
            out.append(_sided(s, "hand_behind_back", "{side} hand{s} behind the back"))
        # Thigh raised forward / leg stretched backward: against gravity for an upright
        # body (a trunk bent over is not a raised thigh), in the torso's frame otherwise.
        thigh = joints[J[f"{side}_knee"]] - joints[J[f"{side}_hip"]]
        a_deg = math.degrees(math.atan2(float(thigh @ leg_fwd), float(-(thigh @ leg_up))))
        if a_deg >= 60.0:
            out.append(_sided(s, "thigh_raised", "{side} thigh{s} raised forward"))
        elif a_deg <= -25.0:
            out.append(_sided(s, "leg_back", "{side} leg{s} stretched backward"))

    # Arms crossed: each wrist on the other side of the body's midline.
    mid = joints[J["spine"]] @ left
    if float(joints[J["left_wrist"]] @ left) < mid - 0.05 and float(joints[J["right_wrist"]] @ left) > mid + 0.05:
        out.append(Posecode("arms_crossed", "arms crossed", "pose"))
    hip_width = float(np.linalg.norm(joints[J["left_hip"]] - joints[J["right_hip"]]))
    ankles = joints[J["left_ankle"]] - joints[J["right_ankle"]]
    if float(ankles @ left) < -0.03:
        out.append(Posecode("legs_crossed", "legs crossed", "pose"))
    elif float(ankles @ left) > 2.5 * hip_width:  # sideways only: a bent knee moves the ankle back
        out.append(Posecode("legs_wide_apart", "legs wide apart", "pose"))
    return out


def head_posecodes(params: SceneParams) -> list[Posecode]:
    """Head turn: a rotation about the neck's own axis, which joint centres cannot show,
    so it is read from the pose parameters (radians, + = to the subject's left)."""
    turn = math.degrees(params.pose.get("neck_rotation", 0.0))
    if abs(turn) >= 30.0:
        d = "left" if turn > 0 else "right"
        return [Posecode(f"head_turned_{d}", f"head turned to its {d}", "pose")]
    return []


def _camera_direction(params: SceneParams) -> np.ndarray:
    """Unit vector from the subject towards the camera, world frame."""
    az, el = params.camera.azimuth, params.camera.elevation
    return np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])


def view_posecodes(params: SceneParams, joints: np.ndarray) -> list[Posecode]:
    """Where the camera is relative to the body: one code for the side (front, behind,
    its left / right side; none for a lying body) and one for the height (above, below),
    which `describe` joins into "seen from behind and above"; camera roll; how large the
    person appears."""
    joints = np.asarray(joints, dtype=np.float64)
    left, _up, fwd = body_frame(joints)
    d = _camera_direction(params)
    out: list[Posecode] = []
    lying = _angle(joints[J["neck"]] - joints[J["pelvis"]], np.array([0.0, 0.0, 1.0])) >= LYING_TILT
    if not lying:
        fwd_h = _unit(np.array([fwd[0], fwd[1], 0.0]))
        left_h = _unit(np.array([left[0], left[1], 0.0]))
        d_h = _unit(np.array([d[0], d[1], 0.0]))
        rel = math.degrees(math.atan2(float(d_h @ left_h), float(d_h @ fwd_h)))
        if abs(rel) <= 45.0:
            out.append(Posecode("view_front", "the front", "view"))
        elif abs(rel) >= 135.0:
            out.append(Posecode("view_behind", "behind", "view"))
        elif rel > 0:
            out.append(Posecode("view_left", "its left side", "view"))
        else:
            out.append(Posecode("view_right", "its right side", "view"))
    el = math.degrees(params.camera.elevation)
    if el >= 25.0:
        out.append(Posecode("view_above", "above", "view"))
    elif el <= -10.0:
        out.append(Posecode("view_below", "below", "view"))
    roll = math.degrees(params.camera.roll)
    if abs(roll) >= 15.0:
        out.append(Posecode("camera_rolled", "camera rolled more than 15 degrees", "view"))
    # Apparent size: the projected skeleton's extent as a fraction of the image.
    xy = project_joints(params, joints)
    ext = xy.max(0) - xy.min(0)
    frac = max(float(ext[0]) / params.camera.width, float(ext[1]) / params.camera.height)
    if frac < 0.45:
        out.append(Posecode("small_in_image", "small in the image", "view"))
    elif frac > 0.9:
        out.append(Posecode("fills_frame", "filling the frame", "view"))
    return out


def project_joints(params: SceneParams, joints: np.ndarray) -> np.ndarray:
    """(J, 2) pixel positions of world joints for the scene's camera. The camera looks at
    the centre of the joints' bounding box (the renderer uses the mesh's; the two differ
    by a few centimetres)."""
    from simulator import camera as cam_math

    joints = np.asarray(joints, dtype=np.float64)
    target = 0.5 * (joints.min(0) + joints.max(0))
    floor = float(joints[:, 2].min()) if params.ground.kind == "floor" else None
    cam = cam_math.resolve_camera(params.camera, joints, floor, target)  # framing, truncation, floor
    pose = cam_math.camera_to_world_gl(cam, target)
    xy, _ = cam_math.project(joints, cam_math.intrinsics(cam), cam_math.world_to_camera_cv(pose))
    return xy


def frame_posecodes(
    params: SceneParams,
    joints: np.ndarray | None = None,
    visibility: np.ndarray | None = None,
) -> list[Posecode]:
    """Framing and occlusion. With a render's keypoint `visibility` (J,) (0 out of frame,
    1 occluded, 2 visible) the counts are exact; without it joints are projected with the
    scene's camera (out of frame only)."""
    out: list[Posecode] = []
    occluded = 0
    if visibility is not None:
        vis = np.asarray(visibility)
        n, out_n, occluded = len(vis), int(np.sum(vis == 0)), int(np.sum(vis == 1))
    elif joints is not None:
        xy = project_joints(params, joints)
        W, H = params.camera.width, params.camera.height
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H)
        n, out_n = len(xy), int(np.sum(~inside))
    else:
        n, out_n = 0, 0
    if n and out_n > n / 2:
        out.append(Posecode("mostly_out_of_frame", "mostly out of frame", "frame"))
    elif out_n:
        out.append(Posecode("partly_out_of_frame", "partly out of frame", "frame"))
    cam = params.camera
    if cam.truncation >= 0.1:
        side = cam.truncation_side
        # Generic and side-specific codes, so a region truncated on any of several sides is
        # still described; the more specific code supersedes the generic one.
        frame = ("partly_out_of_frame",)  # the truncation codes say it more precisely
        out.append(Posecode("truncated", "partly cut off by the image border", "frame", supersedes=frame))
        out.append(Posecode(f"truncated_{side}", f"cut off at the {side} of the image", "frame",
                            supersedes=frame + ("truncated",)))
        if cam.truncation >= 0.25:
            out.append(Posecode("truncated_quarter", "a quarter or more of the person cut off by the image border",
                                "frame", supersedes=frame + ("truncated",)))
            out.append(Posecode(f"truncated_quarter_{side}",
                                f"a quarter or more of the person cut off at the {side} of the image", "frame",
                                supersedes=frame + ("truncated", "truncated_quarter", f"truncated_{side}")))
    horiz = "left" if cam.offset_x <= -0.15 else ("right" if cam.offset_x >= 0.15 else None)
    vert = "top" if cam.offset_y <= -0.15 else ("bottom" if cam.offset_y >= 0.15 else None)
    if horiz or vert:
        where = " ".join(w for w in (vert, horiz) if w)
        out.append(Posecode(f"off_centre_{where.replace(' ', '_')}", f"off-centre towards the {where} of the image", "frame"))
    if params.occluder.kind != "none":
        if visibility is None or occluded >= 2:
            occ = params.occluder
            out.append(Posecode("occluded", "partly hidden behind an object", "frame"))
            if occ.kind == "rectangle":
                out.append(Posecode("occluded_rectangle", "partly hidden behind a rectangle", "frame",
                                    supersedes=("occluded",)))
            else:
                what = {"box": "a box in front", "pole": "a pole"}[occ.kind]
                out.append(Posecode(f"occluded_{occ.kind}", f"partly hidden behind {what}", "frame", supersedes=("occluded",)))
                out.append(Posecode(f"occluded_{occ.kind}_{occ.part}", f"{occ.part.replace('_', ' ')} hidden behind {what}",
                                    "frame", supersedes=("occluded", f"occluded_{occ.kind}")))
    elif visibility is not None and n and occluded > n / 3:
        out.append(Posecode("self_occluded", "many joints hidden by the body itself", "frame"))
    return out


def body_posecodes(params: SceneParams) -> list[Posecode]:
    """Who: age, build, height (phenotypes in [0, 1], see simulator.params)."""
    s = params.shape
    out = []
    years = float(age_years(s["age"]))
    if years < 12:
        out.append(Posecode("child", "a child", "body"))
    elif years > 65:
        out.append(Posecode("elderly", "an elderly person", "body"))
    if s["weight"] > 0.8:
        out.append(Posecode("heavy", "heavy build", "body"))
    elif s["weight"] < 0.15:
        out.append(Posecode("slim", "very slim", "body"))
    # height: stature percentile for the body's age and sex (simulator.stature)
    if s["height"] > 0.9:
        out.append(Posecode("tall", "very tall", "body"))
    elif s["height"] < 0.1:
        out.append(Posecode("short", "very short", "body"))
    return out


def scene_posecodes(params: SceneParams) -> list[Posecode]:
    """Light and background."""
    out = []
    light = params.light
    if light.intensity < 1.5 and light.ambient < 0.15:
        out.append(Posecode("dim_light", "dim light", "scene"))
    elif light.intensity > 6.5:
        out.append(Posecode("harsh_light", "harsh light", "scene"))
    bg = params.background
    if bg.kind in ("checker", "noise", "image"):
        out.append(Posecode("busy_background", "busy background", "scene"))
    if bg.kind == "solid" and bg.value < 0.15 and light.ambient < 0.15:
        out.append(Posecode("dark_scene", "dark background", "scene"))
    return out


def posecodes(
    params: SceneParams,
    joints: np.ndarray,
    visibility: np.ndarray | None = None,
) -> list[Posecode]:
    """Every code of one scene. joints (len(JOINT_NAMES), 3) metres, world frame;
    visibility: optional (K,) keypoint visibility of a render (see frame_posecodes)."""
    return (
        pose_posecodes(joints)
        + head_posecodes(params)
        + view_posecodes(params, joints)
        + frame_posecodes(params, joints, visibility)
        + body_posecodes(params)
        + scene_posecodes(params)
    )


_VIEW_SIDES = ("view_front", "view_behind", "view_left", "view_right")
_VIEW_HEIGHTS = ("view_above", "view_below")


def describe(codes: Iterable[Posecode]) -> str:
    """Codes -> one sentence: phrases of a group joined by commas, groups by semicolons,
    in the order pose, view, frame, body, scene. Superseded codes are dropped, left and
    right versions of one template become "both ...", and the view's side and height
    codes read "seen from behind and above"."""
    codes = list({c.key: c for c in codes}.values())
    dropped = {k for c in codes for k in c.supersedes}
    codes = [c for c in codes if c.key not in dropped]
    by_template: dict[str, set[str]] = {}
    for c in codes:
        if c.template:
            by_template.setdefault(c.template, set()).add(c.key[:1])
    groups: dict[str, list[str]] = {g: [] for g in GROUP_ORDER}
    done: set[str] = set()
    side = next((c.phrase for c in codes if c.key in _VIEW_SIDES), None)
    height = next((c.phrase for c in codes if c.key in _VIEW_HEIGHTS), None)
    for c in codes:
        if c.key in _VIEW_SIDES or c.key in _VIEW_HEIGHTS:
            if "view" not in done:
                done.add("view")
                groups["view"].append("seen from " + " and ".join(p for p in (side, height) if p))
            continue
        if c.template and by_template[c.template] >= {"l", "r"}:
            if c.template not in done:
                done.add(c.template)
                groups[c.group].append(c.template.format(side="both", s="s"))
            continue
        if c.phrase not in groups.setdefault(c.group, []):
            groups[c.group].append(c.phrase)
    return "; ".join(", ".join(v) for v in groups.values() if v)


# ---------------------------------------------------------------------------------------
# Many scenes: skeletons from the body model, and regions of the search space
# ---------------------------------------------------------------------------------------

_BODY_CACHE: dict[str, object] = {}


def skeletons(params_list: Sequence[SceneParams], body_model: str = "anny", average_body: bool = False) -> np.ndarray:
    """(B, len(JOINT_NAMES), 3) world joints of the scenes' bodies (no rendering).

    average_body=True poses one average body (all phenotypes 0.5) instead of each
    scene's own: the body model then reuses its rest skeleton, which is ~10x faster when
    shapes vary, and angle-based codes do not depend on the phenotype."""
    from simulator.body import get_body_model
    from simulator.renderer import pose_vector, shape_vector

    if body_model not in _BODY_CACHE:
        _BODY_CACHE[body_model] = get_body_model(body_model)
    body = _BODY_CACHE[body_model]
    pose = np.stack([pose_vector(p) for p in params_list])
    shape = np.stack([np.full(len(shape_vector(p)), 0.5) if average_body else shape_vector(p) for p in params_list])
    out = []
    for i in range(0, len(pose), 64):
        out.append(body.forward(pose[i:i + 64], shape[i:i + 64]).joints)  # type: ignore[attr-defined]
    return np.concatenate(out, axis=0).astype(np.float64)


def code_frequencies(space: ParamSpace, U: np.ndarray, body_model: str = "anny") -> tuple[dict[str, float], dict[str, Posecode]]:
    """Fraction of the scenes U (N, D) in which each code holds, and the codes by key.
    Skeletons are posed on the average body (see `skeletons`)."""
    params = space.to_params_batch(U)  # prior poses decoded in one batch
    joints = skeletons(params, body_model, average_body=True)
    counts: dict[str, int] = {}
    by_key: dict[str, Posecode] = {}
    for p, j in zip(params, joints):
        for c in {c.key: c for c in posecodes(p, j)}.values():
            counts[c.key] = counts.get(c.key, 0) + 1
            by_key.setdefault(c.key, c)
    n = max(len(U), 1)
    return {k: v / n for k, v in counts.items()}, by_key


@dataclass(frozen=True)
class RegionDescription:
    """text: the sentence; codes: (code, frequency inside the box, frequency in the whole
    space) for the codes that characterise the box, most distinctive first."""

    text: str
    codes: tuple[tuple[Posecode, float, float], ...]


def region_description(
    space: ParamSpace,
    lo: np.ndarray,
    hi: np.ndarray,
    rng: np.random.Generator,
    baseline: dict[str, float] | None = None,
    n: int = 64,
    min_inside: float = 0.6,
    min_lift: float = 0.25,
    body_model: str = "anny",
) -> RegionDescription:
    """Describe the box [lo, hi] (normalised) by the codes that hold in at least
    `min_inside` of `n` scenes drawn uniformly inside it and are at least `min_lift` more
    frequent there than in the whole space (`baseline`, from `code_frequencies` over
    uniform scenes; computed here when not given)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if baseline is None:
        baseline, _ = code_frequencies(space, space.sample(rng, 4 * n), body_model)
    inside, by_key = code_frequencies(space, rng.uniform(lo, hi, size=(n, len(lo))), body_model)
    chosen = [
        (by_key[k], f, baseline.get(k, 0.0)) for k, f in inside.items()
        if f >= min_inside and f - baseline.get(k, 0.0) >= min_lift
    ]
    chosen.sort(key=lambda t: (GROUP_ORDER.index(t[0].group), -(t[1] - t[2])))
    return RegionDescription(describe(c for c, _, _ in chosen), tuple(chosen))
