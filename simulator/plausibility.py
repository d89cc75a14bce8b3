"""Self-penetration check on a capsule approximation of the body.

Each limb segment and the trunk is a capsule between two joint centres; its radius is a
low percentile of the distance from the segment to the rest-pose vertices skinned to it,
so capsules sit inside the skin. Two non-adjacent capsules penetrate when their
segments come closer than `depth_ratio` times the sum of their radii. Contact (a hand
resting on a thigh) is allowed; limbs passing through the torso or each other are not.
"""

from __future__ import annotations

import numpy as np

from simulator.joints import JOINT_NAMES

_J = {n: i for i, n in enumerate(JOINT_NAMES)}
# name -> (start joint, end joint, region used to measure the radius)
CAPSULES: dict[str, tuple[str, str, str]] = {
    "trunk": ("pelvis", "thorax", "torso"),
    "head": ("neck", "head_top", "head"),
    "l_upper_arm": ("left_shoulder", "left_elbow", "upper_arm_left"),
    "l_forearm": ("left_elbow", "left_wrist", "lower_arm_left"),
    "l_hand": ("left_wrist", "left_hand", "left_hand"),
    "r_upper_arm": ("right_shoulder", "right_elbow", "upper_arm_right"),
    "r_forearm": ("right_elbow", "right_wrist", "lower_arm_right"),
    "r_hand": ("right_wrist", "right_hand", "right_hand"),
    "l_thigh": ("left_hip", "left_knee", "upper_leg_left"),
    "l_shin": ("left_knee", "left_ankle", "lower_leg_left"),
    "l_foot": ("left_ankle", "left_toe", "left_foot"),
    "r_thigh": ("right_hip", "right_knee", "upper_leg_right"),
    "r_shin": ("right_knee", "right_ankle", "lower_leg_right"),
    "r_foot": ("right_ankle", "right_toe", "right_foot"),
}
_NAMES = tuple(CAPSULES)
_ADJACENT = {
    frozenset(p)
    for p in [
        ("trunk", "head"), ("trunk", "l_upper_arm"), ("trunk", "r_upper_arm"),
        ("trunk", "l_thigh"), ("trunk", "r_thigh"), ("l_thigh", "r_thigh"),
        ("l_upper_arm", "l_forearm"), ("l_forearm", "l_hand"),
        ("r_upper_arm", "r_forearm"), ("r_forearm", "r_hand"),
        ("l_thigh", "l_shin"), ("l_shin", "l_foot"), ("r_thigh", "r_shin"), ("r_shin", "r_foot"),
    ]
}
PAIRS = [(a, b) for i, a in enumerate(_NAMES) for b in _NAMES[i + 1:] if frozenset((a, b)) not in _ADJACENT]


def _segment_point_distance(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def capsule_radii(
    rest_vertices: np.ndarray, vertex_region: np.ndarray, joints: np.ndarray, percentile: float = 30.0
) -> np.ndarray:
    """(len(CAPSULES),) radii in metres from a rest pose: joints (len(JOINT_NAMES), 3);
    each the `percentile` of its region's vertex distances to the segment (the default
    sits inside the skin; about 70 reaches the skin surface)."""
    from simulator.parts import REGION_NAMES

    radii = []
    for a, b, region in CAPSULES.values():
        pts = rest_vertices[vertex_region == REGION_NAMES.index(region)]
        d = _segment_point_distance(joints[_J[a]], joints[_J[b]], pts)
        radii.append(float(np.percentile(d, percentile)))
    return np.array(radii)


def _segment_distances(P0, P1, Q0, Q1, samples: int = 12) -> np.ndarray:
    """Approximate min distance between segment batches (N, 3) by dense sampling."""
    t = np.linspace(0.0, 1.0, samples)
    P = P0[:, None] + t[None, :, None] * (P1 - P0)[:, None]
    Q = Q0[:, None] + t[None, :, None] * (Q1 - Q0)[:, None]
    d = np.linalg.norm(P[:, :, None] - Q[:, None, :], axis=-1)
    return d.reshape(len(P0), -1).min(axis=1)


def check_penetration(joints: np.ndarray, radii: np.ndarray, depth_ratio: float = 0.6) -> dict:
    """joints (len(JOINT_NAMES), 3). Returns {"plausible": bool, "penetrating": [pairs],
    "worst_ratio": min distance / (r1 + r2)}."""
    idx = {n: i for i, n in enumerate(_NAMES)}
    seg = np.array([[joints[_J[a]], joints[_J[b]]] for a, b, _ in CAPSULES.values()])
    ia = np.array([idx[a] for a, _ in PAIRS])
    ib = np.array([idx[b] for _, b in PAIRS])
    d = _segment_distances(seg[ia, 0], seg[ia, 1], seg[ib, 0], seg[ib, 1])
    ratio = d / (radii[ia] + radii[ib])
    bad = np.flatnonzero(ratio < depth_ratio)
    return {
        "plausible": bool(len(bad) == 0),
        "penetrating": [f"{PAIRS[i][0]}/{PAIRS[i][1]}" for i in bad],
        "worst_ratio": round(float(ratio.min()), 4),
    }
