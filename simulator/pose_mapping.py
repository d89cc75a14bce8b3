"""Anatomical pose angles -> joint rotations, shared by every body backend.

`anatomical_rotations` is the one definition of what each angle in
``simulator.joints.POSE_DOFS`` means as a rotation; a backend supplies its rest-pose
constants (measured on its own skeleton) and a bone map that says which of its bones
carries each rotation group. World frame: +Z up, the subject faces -Y, its left is +X.
"""

from __future__ import annotations

from typing import Mapping

from simulator.joints import POSE_DOFS
from simulator.rotations import axis_angle, rx, ry, rz

SIDES = ("l", "r")
# Rotation groups `anatomical_rotations` returns; the limb groups are prefixed "l_" / "r_".
TRUNK_GROUPS = ("root", "spine", "neck", "head")
LIMB_GROUPS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
# Rest-pose constants a backend measures per side (prefixed "l_" / "r_"): inverse rest
# rotations (3, 3) of the ball joints, hinge axes (3,) and rest angles (float, radians).
REST_CONSTANTS = ("shoulder_rest_inv", "elbow_axis", "elbow_rest", "wrist_flex_axis", "wrist_dev_axis",
                  "hip_rest_inv", "knee_rest")


def anatomical_rotations(pose, rest: Mapping[str, object], n_spine: int = 1, n_neck: int = 1) -> dict:
    """pose (B, len(POSE_DOFS)) tensor of radians -> {group: (B, 3, 3) tensor}.

    Groups: "root" (global orientation: yaw about Z, pitch about X, roll about Y),
    "spine" and "neck" (each of n_spine / n_neck bones carries 1/n of the bend),
    "head", and for side s in ("l", "r") "s_shoulder", "s_elbow", "s_wrist", "s_hip",
    "s_knee", "s_ankle". `rest` holds the backend's REST_CONSTANTS (torch tensors in
    pose's dtype, floats for the rest angles). Keeps dtype and autograd."""
    col = {n: pose[:, i] for i, n in enumerate(POSE_DOFS)}
    R = {
        "root": rz(col["root_yaw"]) @ rx(col["root_pitch"]) @ ry(col["root_roll"]),
        "spine": rz(col["spine_rotation"] / n_spine) @ ry(col["spine_lateral"] / n_spine)
        @ rx(col["spine_flexion"] / n_spine),
        "neck": rz(col["neck_rotation"] / n_neck) @ ry(col["neck_lateral"] / n_neck) @ rx(col["neck_flexion"] / n_neck),
        "head": rx(col["head_flexion"]),
    }
    for s in SIDES:
        side = -1.0 if s == "l" else 1.0  # abduction / internal rotation axis sign
        R[f"{s}_shoulder"] = (
            rx(-col[f"{s}_shoulder_flexion"])
            @ ry(side * col[f"{s}_shoulder_abduction"])
            @ rz(side * col[f"{s}_shoulder_rotation"])
            @ rest[f"{s}_shoulder_rest_inv"]
        )
        R[f"{s}_elbow"] = axis_angle(rest[f"{s}_elbow_axis"], col[f"{s}_elbow_flexion"] - rest[f"{s}_elbow_rest"])
        R[f"{s}_wrist"] = axis_angle(rest[f"{s}_wrist_flex_axis"], col[f"{s}_wrist_flexion"]) @ axis_angle(
            rest[f"{s}_wrist_dev_axis"], col[f"{s}_wrist_deviation"]
        )
        R[f"{s}_hip"] = (
            rx(-col[f"{s}_hip_flexion"])
            @ ry(side * col[f"{s}_hip_abduction"])
            @ rz(side * col[f"{s}_hip_rotation"])
            @ rest[f"{s}_hip_rest_inv"]
        )
        R[f"{s}_knee"] = rx(col[f"{s}_knee_flexion"] - rest[f"{s}_knee_rest"])
        R[f"{s}_ankle"] = rx(-col[f"{s}_ankle_flexion"]) @ ry(-side * col[f"{s}_ankle_inversion"])
    return R


def bone_rotations(pose, rest: Mapping[str, object], bone_map: Mapping[str, tuple[str, ...]]) -> dict:
    """`anatomical_rotations` spread over a backend's bones: bone_map {group: bone names}
    (the "spine" and "neck" groups split their bend evenly over their bones) ->
    {bone name: (B, 3, 3) tensor}. Groups missing from bone_map are left out."""
    groups = anatomical_rotations(pose, rest, n_spine=len(bone_map.get("spine", ())) or 1,
                                  n_neck=len(bone_map.get("neck", ())) or 1)
    return {bone: groups[g] for g, bones in bone_map.items() for bone in bones}

