"""Named body joints: the keypoint conventions the simulator labels, the anatomical joint
centres every body backend provides, and the pose degrees of freedom with their limits.

Keypoint tables (`COCO17`, `FEET6`, `H36M17`) are defined here only;
`examiner.conventions` imports them.

Every pose degree of freedom is an anatomical angle in radians, measured from the
anatomical neutral position (standing, arms hanging at the sides, palms facing the
thighs, legs straight). Signs: flexion / abduction / internal rotation positive for
limbs; for the trunk, neck and head, flexion (bending forward), lateral bending to the
subject's left and rotation to the subject's left are positive. Global orientation
(`root_*`) rotates the whole body about the pelvis.

Limits are the normal active range of motion of healthy adults from the American
Academy of Orthopaedic Surgeons table:
    Greene, W. B. & Heckman, J. D. (eds.) (1994). *The Clinical Measurement of Joint
    Motion*. Rosemont, IL: American Academy of Orthopaedic Surgeons. (Values as
    tabulated, in degrees: shoulder flexion 180 / extension 60 / abduction 180 /
    internal rotation 70 / external rotation 90; elbow flexion 150; wrist flexion 80 /
    extension 70 / radial deviation 20 / ulnar deviation 30; hip flexion 120 /
    extension 30 / abduction 45 / adduction 30 / internal and external rotation 45;
    knee flexion 135; ankle dorsiflexion 20 / plantarflexion 50, inversion 35 /
    eversion 15; cervical spine flexion 45 / extension 45 / lateral bending 45 /
    rotation 60; thoracolumbar spine flexion 80 / extension 25 / lateral bending 35 /
    rotation 45.)
Shoulder adduction past the midline (30 degrees, horizontal-plane crossing) and the
atlanto-occipital nod of the head (+-15 degrees) follow White & Panjabi (1990),
*Clinical Biomechanics of the Spine*, 2nd ed. The global orientation has no anatomical
limit; its bounds are search bounds.
"""

from __future__ import annotations

import math

_D = math.pi / 180.0


def _r(lo_deg: float, hi_deg: float, desc: str) -> tuple[float, float, str]:
    return (lo_deg * _D, hi_deg * _D, desc)


_SIDE_DOFS = {
    "shoulder_flexion": _r(-60, 180, "arm raised forward (+) / backward (-)"),
    "shoulder_abduction": _r(-30, 180, "arm raised sideways (+) / across the body (-)"),
    "shoulder_rotation": _r(-90, 70, "humerus internal (+) / external (-) rotation"),
    "elbow_flexion": _r(0, 150, "elbow bend, 0 = straight"),
    "wrist_flexion": _r(-70, 80, "palm-ward flexion (+) / extension (-)"),
    "wrist_deviation": _r(-20, 30, "ulnar (+) / radial (-) deviation"),
    "hip_flexion": _r(-30, 120, "thigh raised forward (+) / backward (-)"),
    "hip_abduction": _r(-30, 45, "leg out sideways (+) / across (-)"),
    "hip_rotation": _r(-45, 45, "femur internal (+) / external (-) rotation"),
    "knee_flexion": _r(0, 135, "knee bend, 0 = straight"),
    "ankle_flexion": _r(-50, 20, "dorsiflexion (+) / plantarflexion (-)"),
    "ankle_inversion": _r(-15, 35, "inversion (+) / eversion (-)"),
}

POSE_LIMITS: dict[str, tuple[float, float, str]] = {
    "root_yaw": _r(-180, 180, "whole body turned to its left (+)"),
    "root_pitch": _r(-180, 180, "whole body tilted forward (+); 90 = lying face down, 180 = upside down"),
    "root_roll": _r(-90, 90, "whole body tilted to its left (+); 90 = lying on its left side"),
    "spine_flexion": _r(-25, 80, "trunk bent forward (+) / back (-)"),
    "spine_lateral": _r(-35, 35, "trunk bent to its left (+)"),
    "spine_rotation": _r(-45, 45, "trunk twisted to its left (+)"),
    "neck_flexion": _r(-45, 45, "neck bent forward (+) / back (-)"),
    "neck_lateral": _r(-45, 45, "neck bent to its left (+)"),
    "neck_rotation": _r(-60, 60, "head turned to its left (+)"),
    "head_flexion": _r(-15, 15, "head nodded forward (+)"),
}
for _side in ("l", "r"):
    for _name, _lim in _SIDE_DOFS.items():
        POSE_LIMITS[f"{_side}_{_name}"] = (_lim[0], _lim[1], ("left " if _side == "l" else "right ") + _lim[2])

POSE_DOFS: tuple[str, ...] = tuple(POSE_LIMITS)

# A relaxed standing pose: arms slightly away from the trunk, elbows slightly bent.
_NEUTRAL = {
    "l_shoulder_abduction": 10 * _D,
    "r_shoulder_abduction": 10 * _D,
    "l_elbow_flexion": 10 * _D,
    "r_elbow_flexion": 10 * _D,
}


def neutral_pose() -> dict[str, float]:
    """The base pose (radians for every DOF)."""
    return {k: _NEUTRAL.get(k, 0.0) for k in POSE_DOFS}


# ---- keypoint conventions and joint centres ----------------------------------------

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
