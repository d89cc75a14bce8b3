"""The self-penetration check allows contact between limbs and flags limbs through the body."""

import math

import numpy as np
import pytest

from simulator.joints import JOINT_NAMES, POSE_DOFS
from simulator.params import ALL_SHAPE_NAMES
from simulator.plausibility import CAPSULES, _segment_distances, capsule_radii, check_penetration

J = {n: i for i, n in enumerate(JOINT_NAMES)}
SIDES = ("l", "r")


def pose(**deg) -> np.ndarray:
    """Angles in degrees; a name starting with "X_" sets both sides."""
    p = np.zeros((1, len(POSE_DOFS)))
    for name, value in deg.items():
        for dof in ([s + name[1:] for s in SIDES] if name.startswith("X_") else [name]):
            p[0, POSE_DOFS.index(dof)] = math.radians(value)
    return p


@pytest.fixture(scope="module")
def body():
    from simulator.body_model import get_body_model

    model = get_body_model("anny")
    shape = np.full((1, len(ALL_SHAPE_NAMES)), 0.5)
    rest = model.forward(pose(), shape)
    args = (rest.vertices[0], model.vertex_region, rest.joints[0])
    return model, shape, capsule_radii(*args), capsule_radii(*args, percentile=70)


def capsule_gap(joints, a: str, b: str) -> float:
    """Closest distance (m) between the joint segments of capsules a and b."""
    (a0, a1, _), (b0, b1, _) = CAPSULES[a], CAPSULES[b]
    seg = [joints[[J[n]]] for n in (a0, a1, b0, b1)]
    return float(_segment_distances(*seg, samples=50)[0])


# name -> (pose, capsule pairs whose skins touch). Poses found by a grid search for skin contact.
CONTACT_POSES = {
    "hands on hips": (
        dict(X_shoulder_abduction=35, X_shoulder_rotation=30, X_elbow_flexion=90, X_shoulder_flexion=-30),
        [("l_hand", "trunk"), ("r_hand", "trunk")],
    ),
    "arms crossed": (
        dict(X_shoulder_abduction=-20, X_shoulder_rotation=60, l_shoulder_flexion=40, r_shoulder_flexion=10,
             l_elbow_flexion=110, r_elbow_flexion=130),
        [("l_forearm", "r_forearm")],
    ),
    "crouching, hands on knees": (
        dict(X_hip_flexion=110, X_knee_flexion=130, X_ankle_flexion=20, spine_flexion=50, X_shoulder_flexion=30),
        [("l_hand", "l_thigh"), ("r_hand", "r_thigh")],
    ),
}


@pytest.mark.parametrize("name", list(CONTACT_POSES))
def test_contact_between_limbs_stays_plausible(body, name):
    model, shape, radii, skin = body
    angles, pairs = CONTACT_POSES[name]
    joints = model.forward(pose(**angles), shape).joints[0]
    names = list(CAPSULES)
    for a, b in pairs:  # the skins touch: segment distance ~ the sum of the skin radii
        touching = capsule_gap(joints, a, b) / (skin[names.index(a)] + skin[names.index(b)])
        assert 0.85 < touching < 1.15, (a, b, touching)
    result = check_penetration(joints, radii)
    assert result["plausible"], result


def test_forearm_through_the_trunk_is_flagged(body):
    model, shape, radii, _ = body
    joints = model.forward(
        pose(r_shoulder_abduction=-30, r_shoulder_rotation=70, r_elbow_flexion=100, r_shoulder_flexion=-10), shape
    ).joints[0]
    result = check_penetration(joints, radii)
    assert not result["plausible"]
    assert any("r_forearm" in p or "r_hand" in p for p in result["penetrating"])
