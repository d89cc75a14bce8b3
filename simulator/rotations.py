"""Rotation helpers shared by the body-model backends (torch, batched, float64-safe)."""

from __future__ import annotations

import numpy as np


def _torch():
    import torch  # imported lazily: `simulator.params` and friends must not need torch

    return torch


def axis_angle(axis, angle):
    """axis (3,) unit tensor, angle (B,) -> (B, 3, 3) Rodrigues rotation."""
    torch = _torch()
    k = axis.to(angle.dtype)
    K = torch.zeros(3, 3, dtype=angle.dtype)
    K[0, 1], K[0, 2], K[1, 0], K[1, 2], K[2, 0], K[2, 1] = -k[2], k[1], k[2], -k[0], -k[1], k[0]
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    eye = torch.eye(3, dtype=angle.dtype)
    return eye + s * K + (1 - c) * (K @ K)


def rx(a):
    """(B,) angles -> (B, 3, 3) rotations about +X."""
    return axis_angle(_torch().tensor([1.0, 0.0, 0.0]), a)


def ry(a):
    """(B,) angles -> (B, 3, 3) rotations about +Y."""
    return axis_angle(_torch().tensor([0.0, 1.0, 0.0]), a)


def rz(a):
    """(B,) angles -> (B, 3, 3) rotations about +Z."""
    return axis_angle(_torch().tensor([0.0, 0.0, 1.0]), a)


def np_axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """One (3, 3) float64 numpy rotation."""
    torch = _torch()
    return axis_angle(torch.tensor(axis, dtype=torch.float64), torch.tensor([angle], dtype=torch.float64))[0].numpy()


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)
