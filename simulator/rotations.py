"""Axis-angle rotations, the only place the simulator builds them.

numpy: scipy's `Rotation` (`axis_angle_matrix`, `rotvec_matrices`), float64.
torch (batched, keeps dtype and autograd, used by the body backends' pose mapping):
`axis_angle`, `rx`, `ry`, `rz`. smplx's `batch_rodrigues` is not used for these: it adds
1e-8 to every rotation vector before taking its norm, a bias of up to 1e-8 rad (float64)
and 4e-7 (float32) per joint that would change rendered samples; the formula below is
the one the backends have always used.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def lazy_torch():
    """The torch module, imported on first use: `simulator.params` and friends must not need torch."""
    import torch

    return torch


def axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """axis (3,) any non-zero length, angle radians (right-handed) -> (3, 3) float64 rotation."""
    a = np.asarray(axis, dtype=np.float64)
    return Rotation.from_rotvec(a / np.linalg.norm(a) * float(angle)).as_matrix()


def rotvec_matrices(rotvecs: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors (direction = axis, length = radians) -> (..., 3, 3) float64."""
    r = np.asarray(rotvecs, dtype=np.float64)
    return Rotation.from_rotvec(r.reshape(-1, 3)).as_matrix().reshape(r.shape[:-1] + (3, 3))


def axis_angle(axis, angle):
    """axis (3,) unit tensor, angle (B,) tensor radians -> (B, 3, 3) tensor in angle's dtype."""
    torch = lazy_torch()
    k = axis.to(angle.dtype)
    K = torch.zeros(3, 3, dtype=angle.dtype)
    K[0, 1], K[0, 2], K[1, 0], K[1, 2], K[2, 0], K[2, 1] = -k[2], k[1], k[2], -k[0], -k[1], k[0]
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    eye = torch.eye(3, dtype=angle.dtype)
    return eye + s * K + (1 - c) * (K @ K)


def rx(a):
    """(B,) angles -> (B, 3, 3) rotations about +X."""
    return axis_angle(lazy_torch().tensor([1.0, 0.0, 0.0]), a)


def ry(a):
    """(B,) angles -> (B, 3, 3) rotations about +Y."""
    return axis_angle(lazy_torch().tensor([0.0, 1.0, 0.0]), a)


def rz(a):
    """(B,) angles -> (B, 3, 3) rotations about +Z."""
    return axis_angle(lazy_torch().tensor([0.0, 0.0, 1.0]), a)


def unit(v: np.ndarray) -> np.ndarray:
    """v (3,) scaled to unit length."""
    return v / np.linalg.norm(v)
