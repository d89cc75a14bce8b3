"""Posecodes on hand-built skeletons (exact geometry) and through the body model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reports.posecodes import describe, frame_posecodes, posecodes, region_description, view_posecodes
from simulator.body import JOINT_NAMES
from simulator.params import CameraParams, ParamSpace, SceneParams

D = math.pi / 180
# Standing, arms down; world frame: +Z up, facing -Y, the subject's left is +X.
STAND = {
    "pelvis": (0, 0, 0), "left_hip": (0.1, 0, 0), "right_hip": (-0.1, 0, 0),
    "left_knee": (0.1, 0, -0.45), "right_knee": (-0.1, 0, -0.45),
    "left_ankle": (0.1, 0, -0.88), "right_ankle": (-0.1, 0, -0.88),
    "left_toe": (0.1, -0.12, -0.93), "right_toe": (-0.1, -0.12, -0.93),
    "spine": (0, 0, 0.15), "thorax": (0, 0, 0.40), "neck": (0, 0, 0.52), "head": (0, -0.02, 0.60),
    "head_top": (0, -0.02, 0.75), "left_shoulder": (0.18, 0, 0.45), "right_shoulder": (-0.18, 0, 0.45),
    "left_elbow": (0.2, 0, 0.17), "right_elbow": (-0.2, 0, 0.17), "left_wrist": (0.21, 0, -0.08),
    "right_wrist": (-0.21, 0, -0.08), "left_hand": (0.21, 0, -0.16), "right_hand": (-0.21, 0, -0.16),
}
IDX = {n: i for i, n in enumerate(JOINT_NAMES)}


def standing() -> np.ndarray:
    return np.array([STAND[n] for n in JOINT_NAMES], dtype=np.float64)


def bend_knee(j: np.ndarray, side: str, flexion_deg: float) -> np.ndarray:
    """The shank swings backward (+Y) by the flexion angle."""
    j = j.copy()
    a = math.radians(flexion_deg)
    knee = j[IDX[f"{side}_knee"]]
    j[IDX[f"{side}_ankle"]] = knee + 0.43 * np.array([0.0, math.sin(a), -math.cos(a)])
    j[IDX[f"{side}_toe"]] = j[IDX[f"{side}_ankle"]] + np.array([0.0, -0.12, -0.05])
    return j


def arms_up(j: np.ndarray) -> np.ndarray:
    j = j.copy()
    for side, x in (("left", 0.2), ("right", -0.2)):
        j[IDX[f"{side}_elbow"]] = (x, 0, 0.72)
        j[IDX[f"{side}_wrist"]] = (x, 0, 0.97)
        j[IDX[f"{side}_hand"]] = (x, 0, 1.05)
    return j


def pitch(j: np.ndarray, deg: float) -> np.ndarray:
    """Tilt the whole body forward (towards -Y) about the pelvis."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return j @ R.T


UPPER = ("spine", "thorax", "neck", "head", "head_top", "left_shoulder", "right_shoulder", "left_elbow",
         "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand")


def lean_torso(j: np.ndarray, deg: float) -> np.ndarray:
    """Bend the upper body forward at the hips; the legs stay."""
    bent = pitch(j, deg)
    j = j.copy()
    for n in UPPER:
        j[IDX[n]] = bent[IDX[n]]
    return j


def yaw(j: np.ndarray, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return j @ R.T


def sentence(params: SceneParams, joints: np.ndarray, visibility=None) -> str:
    return describe(posecodes(params, joints, visibility))


def test_standing_person_seen_from_the_front_has_no_pose_codes():
    assert sentence(SceneParams(), standing()) == "seen from the front"


def test_knee_flexion_categories():
    p = SceneParams()
    assert sentence(p, bend_knee(standing(), "left", 30)) == "seen from the front"
    assert sentence(p, bend_knee(standing(), "left", 60)).startswith("left knee bent;")
    s = sentence(p, bend_knee(standing(), "left", 110))
    assert s.startswith("left knee bent past 90 degrees;")
    assert "left knee bent," not in s  # the weaker code is superseded
    both = bend_knee(bend_knee(standing(), "left", 110), "right", 100)
    assert sentence(p, both).startswith("both knees bent past 90 degrees;")
    mixed = bend_knee(bend_knee(standing(), "left", 110), "right", 60)
    assert sentence(p, mixed).startswith("left knee bent past 90 degrees, right knee bent;")


def test_arms_above_the_head_supersede_hands_above_shoulders():
    s = sentence(SceneParams(), arms_up(standing()))
    assert s == "both arms above the head; seen from the front"


def test_orientation_against_gravity():
    p = SceneParams()
    assert sentence(p, pitch(standing(), 40)).startswith("torso leaning forward")
    assert sentence(p, pitch(standing(), -40)).startswith("torso leaning backward")
    lying = sentence(p, pitch(standing(), 90))
    assert lying.startswith("body lying horizontally") and "leaning" not in lying
    assert "seen from" not in lying  # front/behind is undefined for a lying body
    upside = sentence(p, pitch(standing(), 180))
    assert upside.startswith("body upside down") and "lying" not in upside


def test_the_issue_example_sentence():
    j = lean_torso(arms_up(bend_knee(standing(), "left", 120)), 35)
    params = SceneParams(camera=CameraParams(azimuth=180 * D, elevation=45 * D))
    vis = np.full(17, 2)
    vis[[15, 16]] = 0
    assert sentence(params, j, vis) == (
        "torso leaning forward, left knee bent past 90 degrees, both arms above the head; "
        "seen from behind and above; partly out of frame"
    )


@pytest.mark.parametrize("az,el,body_yaw,expected", [
    (0, 5, 0, "seen from the front"),
    (180, 5, 0, "seen from behind"),
    (90, 5, 0, "seen from its left side"),  # camera towards the subject's left (+X)
    (0, 5, 90, "seen from its right side"),  # body turned to its left, camera stays at -Y
    (0, 40, 0, "seen from the front and above"),
    (0, -20, 0, "seen from the front and below"),
])
def test_viewpoint_relative_to_the_body(az, el, body_yaw, expected):
    params = SceneParams(camera=CameraParams(azimuth=az * D, elevation=el * D))
    assert describe(view_posecodes(params, yaw(standing(), body_yaw))) == expected


def test_framing_and_occlusion():
    p = SceneParams()
    vis = np.full(17, 2)
    assert describe(frame_posecodes(p, visibility=vis)) == ""
    vis[:3] = 0
    assert describe(frame_posecodes(p, visibility=vis)) == "partly out of frame"
    vis[:12] = 0
    assert describe(frame_posecodes(p, visibility=vis)) == "mostly out of frame"
    far_off = SceneParams(camera=CameraParams(offset_x=0.49, distance=2.2))
    assert "out of frame" in describe(frame_posecodes(far_off, joints=standing()))


def test_region_description_names_what_the_box_constrains():
    """Through the body model: a box of deep left-knee flexion reads as such, and the
    free right knee is not mentioned."""
    space = ParamSpace.from_groups("pose.l_knee_flexion,pose.r_knee_flexion,camera.azimuth")
    lo, hi = np.array([0.5, -1.0, -1.0]), np.array([1.0, 1.0, 1.0])
    d = region_description(space, lo, hi, np.random.default_rng(0), n=32)
    assert "left knee bent past 90 degrees" in d.text
    assert "right knee" not in d.text and "both knees" not in d.text
    assert all(inside >= 0.6 for _, inside, _ in d.codes)


def test_truncation_and_occluder_codes_describe_any_side_and_the_specific_one():
    from simulator.params import OccluderParams

    j = standing()
    codes = {c.key: c for c in frame_posecodes(SceneParams(camera=CameraParams(truncation=0.3, truncation_side="top")), j)}
    assert {"truncated", "truncated_top", "truncated_quarter", "truncated_quarter_top"} <= set(codes)
    assert describe(codes.values()) == "a quarter or more of the person cut off at the top of the image"
    # A region truncated on several sides keeps the generic words.
    assert describe([codes["truncated_quarter"], codes["truncated"]]) == \
        "a quarter or more of the person cut off by the image border"
    occ = frame_posecodes(SceneParams(occluder=OccluderParams(kind="pole", part="left_arm")), j)
    assert describe(occ) == "left arm hidden behind a pole"
    assert describe([c for c in occ if c.key in ("occluded", "occluded_pole")]) == "partly hidden behind a pole"
    assert not [c for c in frame_posecodes(SceneParams(camera=CameraParams(truncation=0.05)), j) if "truncated" in c.key]
