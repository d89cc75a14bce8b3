"""Cylindrical coordinates around the trunk and the limb chains (shoulder -> elbow ->
wrist, hip -> knee -> ankle), in which garment templates are measured and styled."""

from __future__ import annotations

import numpy as np

from simulator.garments.rig import CHAINS, BodyRig


CHAIN_ORDER = ("torso", "arm_l", "arm_r", "leg_l", "leg_r")
CHAIN_RADIUS = {"torso": 0.13, "arm_l": 0.04, "arm_r": 0.04, "leg_l": 0.06, "leg_r": 0.06}




def chain_points(heads: np.ndarray, rig: BodyRig, chain: str) -> np.ndarray:
    return np.stack([heads[rig.bone(b)] for b in CHAINS[chain]])


def chain_coords(p: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project points p (N, 3) onto the polyline pts (K, 3).

    Returns s (N,) arc length as a fraction of the polyline length (negative before its
    start), theta (N,) angle around the segment axis (0 = towards -Y, the body's front),
    segment index (N,)."""
    seg = pts[1:] - pts[:-1]
    lens = np.linalg.norm(seg, axis=1)
    total = lens.sum()
    best_d = np.full(len(p), np.inf)
    s = np.zeros(len(p))
    theta = np.zeros(len(p))
    segi = np.zeros(len(p), dtype=int)
    start = 0.0
    for k in range(len(seg)):
        t = seg[k] / lens[k]
        u = (p - pts[k]) @ t
        lo = -np.inf if k == 0 else 0.0
        hi = np.inf if k == len(seg) - 1 else lens[k]
        uc = np.clip(u, lo, hi)
        foot = pts[k] + uc[:, None] * t
        r = p - foot
        d = np.linalg.norm(r, axis=1)
        better = d < best_d
        f = np.array([0.0, -1.0, 0.0])
        f = f - (f @ t) * t
        f /= np.linalg.norm(f)
        b = np.cross(t, f)
        th = np.arctan2(r @ b, r @ f)
        best_d = np.where(better, d, best_d)
        s = np.where(better, (start + uc) / total, s)
        theta = np.where(better, th, theta)
        segi = np.where(better, k, segi)
        start += lens[k]
    return s, theta, segi


def chain_point_at(pts: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position and unit tangent at fractional arc length s (N,) along the polyline."""
    seg = pts[1:] - pts[:-1]
    lens = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(lens)]) / lens.sum()
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    u = (s - cum[k]) * lens.sum()
    t = seg[k] / lens[k][:, None]
    return pts[k] + u[:, None] * t, t


def torso_coords(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height z and angle around the vertical trunk axis (0 = front, -Y; + towards +X)."""
    return p[:, 2].copy(), np.arctan2(p[:, 0], -p[:, 1])
