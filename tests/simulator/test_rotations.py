"""One rotation module and one pose mapping for every body backend."""

import math

import numpy as np
import pytest

from simulator.pose_mapping import LIMB_GROUPS, SIDES, TRUNK_GROUPS, anatomical_rotations, bone_rotations
from simulator.rotations import axis_angle, axis_angle_matrix, rotvec_matrices


def test_axis_angle_matrix_is_a_right_handed_rotation():
    R = axis_angle_matrix(np.array([0.0, 0.0, 2.0]), math.pi / 2)  # any axis length
    assert R.dtype == np.float64 and R.shape == (3, 3)
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)
    rng = np.random.default_rng(0)
    axis = rng.normal(size=3)
    R = axis_angle_matrix(axis, 1.3)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(R @ axis, axis, atol=1e-15)  # the axis is fixed
    np.testing.assert_allclose(rotvec_matrices((axis / np.linalg.norm(axis) * 1.3)[None])[0], R, atol=1e-15)


def test_numpy_and_torch_rotations_agree():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angles = rng.uniform(-4, 4, 16)
    T = axis_angle(torch.tensor(axis), torch.tensor(angles, dtype=torch.float64)).numpy()
    N = np.stack([axis_angle_matrix(axis, a) for a in angles])
    np.testing.assert_allclose(T, N, atol=1e-14)


def test_every_backend_maps_every_rotation_group():
    from simulator.body import AnnyBody
    from simulator.smpl_body import _BONE_MAP as SMPL_BONES

    groups = set(TRUNK_GROUPS) | {f"{s}_{g}" for s in SIDES for g in LIMB_GROUPS}
    assert set(AnnyBody._bone_map) == groups
    assert set(SMPL_BONES) == groups
    for bone_map in (AnnyBody._bone_map, SMPL_BONES):
        bones = [b for bs in bone_map.values() for b in bs]
        assert len(bones) == len(set(bones))  # one rotation per bone


def test_spine_bend_is_spread_over_its_bones():
    torch = pytest.importorskip("torch")
    from simulator.joints import POSE_DOFS

    pose = torch.zeros(1, len(POSE_DOFS), dtype=torch.float64)
    pose[0, POSE_DOFS.index("spine_flexion")] = 0.6
    eye = torch.eye(3, dtype=torch.float64).expand(1, 3, 3)
    rest = {f"{s}_{k}": eye[0] for s in SIDES for k in ("shoulder_rest_inv", "hip_rest_inv")}
    rest.update({f"{s}_{k}": torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
                 for s in SIDES for k in ("elbow_axis", "wrist_flex_axis", "wrist_dev_axis")})
    rest.update({f"{s}_{k}": 0.0 for s in SIDES for k in ("elbow_rest", "knee_rest")})
    one = anatomical_rotations(pose, rest)["spine"]
    R = bone_rotations(pose, rest, {"spine": ("a", "b", "c")})
    assert set(R) == {"a", "b", "c"}
    total = R["a"] @ R["b"] @ R["c"]
    np.testing.assert_allclose(total.numpy(), one.numpy(), atol=1e-14)
