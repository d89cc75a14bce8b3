"""Per-model joint-offset calibration (joint-definition mismatch).

A model trained on one dataset places "left hip" where that dataset's annotators or
regressor put it; the simulator's hip is elsewhere by a few centimetres, consistently
relative to the body. Without correction that mismatch looks like error everywhere.

Method (3D). For each prediction we build a body frame from the *prediction itself*
(so the correction can be applied later without ground truth):
  origin = root (hip midpoint); x = unit(left_hip - right_hip);
  y = unit(thorax - root) made orthogonal to x (thorax = shoulder midpoint); z = x × y.
With R = [x y z] (columns, camera axes), the offset of joint j in sample b is
  o_bj = R_b^T ((gt_bj - gt_root_b) - (pred_bj - pred_root_b))     [metres, body frame]
and the calibration is the per-joint, per-axis median over the reference samples (robust
to the odd failed sample). Applying it: pred_bj += R_b o_j. Because both skeletons are
root-relative, an offset shared by both hips is absorbed by the root: what is recovered
is the offset relative to the hip midpoint.

Method (2D). The same in the image plane, in units of the 2D torso length
|thorax - root| px: y = unit(thorax - root), x = the perpendicular that points from the
right hip towards the left hip, offsets o_j = R^T (gt_rr - pred_rr) / torso_length.

Use easy scenes for the reference set (everyday poses, frontal camera, no occluder), so
that the median measures the definition difference and not the model's failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from examiner.conventions import Convention, get_convention


def _indices(conv: Convention) -> tuple[int, int, int, int]:
    return tuple(conv.index(n) for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))  # type: ignore[return-value]


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def body_frames_3d(joints: np.ndarray, convention: str | Convention) -> tuple[np.ndarray, np.ndarray]:
    """joints (B, J, 3) m -> (root (B, 3), R (B, 3, 3) whose columns are the body x, y, z axes)."""
    lh, rh, ls, rs = _indices(get_convention(convention))
    j = np.asarray(joints, dtype=np.float64)
    root = 0.5 * (j[:, lh] + j[:, rh])
    thorax = 0.5 * (j[:, ls] + j[:, rs])
    x = _unit(j[:, lh] - j[:, rh])
    up = thorax - root
    y = _unit(up - np.sum(up * x, axis=-1, keepdims=True) * x)
    z = np.cross(x, y)
    return root, np.stack([x, y, z], axis=-1)


def body_frames_2d(joints2d: np.ndarray, convention: str | Convention) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """joints2d (B, J, 2) px -> (root (B, 2), R (B, 2, 2) columns x, y, torso length (B,) px)."""
    lh, rh, ls, rs = _indices(get_convention(convention))
    j = np.asarray(joints2d, dtype=np.float64)
    root = 0.5 * (j[:, lh] + j[:, rh])
    spine = 0.5 * (j[:, ls] + j[:, rs]) - root
    length = np.linalg.norm(spine, axis=-1)
    y = _unit(spine)
    x = np.stack([-y[:, 1], y[:, 0]], axis=-1)
    flip = np.sign(np.sum(x * (j[:, lh] - j[:, rh]), axis=-1))
    x = x * np.where(flip == 0, 1.0, flip)[:, None]
    return root, np.stack([x, y], axis=-1), length


def estimate_offsets_3d(pred: np.ndarray, gt: np.ndarray, convention: str | Convention) -> np.ndarray:
    """pred, gt (B, J, 3) m (any frame: both are made root-relative) -> (J, 3) offsets, m,
    in the prediction's body frame. Samples with non-finite values are skipped."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    ok = np.isfinite(pred).all(axis=(1, 2)) & np.isfinite(gt).all(axis=(1, 2))
    if not ok.any():
        raise ValueError("no finite reference sample to calibrate on")
    pred, gt = pred[ok], gt[ok]
    root_p, R = body_frames_3d(pred, convention)
    root_g, _ = body_frames_3d(gt, convention)
    diff = (gt - root_g[:, None]) - (pred - root_p[:, None])
    local = np.einsum("bci,bjc->bji", R, diff)
    return np.median(local, axis=0)


def apply_offsets_3d(pred: np.ndarray, offsets: np.ndarray, convention: str | Convention) -> np.ndarray:
    """pred (B, J, 3) m + offsets (J, 3) in the body frame -> corrected (B, J, 3)."""
    pred = np.asarray(pred, dtype=np.float64)
    _, R = body_frames_3d(pred, convention)
    return pred + np.einsum("bci,ji->bjc", R, np.asarray(offsets, dtype=np.float64))


def estimate_offsets_2d(pred2d: np.ndarray, gt2d: np.ndarray, convention: str | Convention) -> np.ndarray:
    """pred2d, gt2d (B, J, 2) px -> (J, 2) offsets in torso lengths, 2D body frame."""
    pred2d = np.asarray(pred2d, dtype=np.float64)
    gt2d = np.asarray(gt2d, dtype=np.float64)
    ok = np.isfinite(pred2d).all(axis=(1, 2)) & np.isfinite(gt2d).all(axis=(1, 2))
    if not ok.any():
        raise ValueError("no finite reference sample to calibrate on")
    pred2d, gt2d = pred2d[ok], gt2d[ok]
    root_p, R, length = body_frames_2d(pred2d, convention)
    root_g, _, _ = body_frames_2d(gt2d, convention)
    diff = (gt2d - root_g[:, None]) - (pred2d - root_p[:, None])
    local = np.einsum("bci,bjc->bji", R, diff) / np.maximum(length, 1e-9)[:, None, None]
    return np.median(local, axis=0)


def apply_offsets_2d(pred2d: np.ndarray, offsets: np.ndarray, convention: str | Convention) -> np.ndarray:
    pred2d = np.asarray(pred2d, dtype=np.float64)
    _, R, length = body_frames_2d(pred2d, convention)
    return pred2d + length[:, None, None] * np.einsum("bci,ji->bjc", R, np.asarray(offsets, dtype=np.float64))


@dataclass
class JointCalibration:
    """Offsets for one model on one joint set (the joint set metrics are computed on)."""

    joint_set: str
    offsets3d: np.ndarray | None  # (J, 3) metres, body frame
    offsets2d: np.ndarray | None  # (J, 2) torso lengths, 2D body frame
    n_reference: int
    model: str = ""

    @classmethod
    def estimate(
        cls,
        joint_set: str,
        pred3d: np.ndarray | None,
        gt3d: np.ndarray | None,
        pred2d: np.ndarray | None = None,
        gt2d: np.ndarray | None = None,
        model: str = "",
    ) -> "JointCalibration":
        o3 = estimate_offsets_3d(pred3d, gt3d, joint_set) if pred3d is not None and gt3d is not None else None
        o2 = estimate_offsets_2d(pred2d, gt2d, joint_set) if pred2d is not None and gt2d is not None else None
        n = len(pred3d) if pred3d is not None else (len(pred2d) if pred2d is not None else 0)
        return cls(joint_set, o3, o2, n, model)

    def apply3d(self, pred3d: np.ndarray) -> np.ndarray:
        return pred3d if self.offsets3d is None else apply_offsets_3d(pred3d, self.offsets3d, self.joint_set)

    def apply2d(self, pred2d: np.ndarray) -> np.ndarray:
        return pred2d if self.offsets2d is None else apply_offsets_2d(pred2d, self.offsets2d, self.joint_set)

    def to_dict(self) -> dict[str, Any]:
        conv = get_convention(self.joint_set)
        return {
            "joint_set": self.joint_set,
            "model": self.model,
            "n_reference": self.n_reference,
            "joints": list(conv.joints),
            "offsets3d_m": None if self.offsets3d is None else np.round(self.offsets3d, 5).tolist(),
            "offsets2d_torso": None if self.offsets2d is None else np.round(self.offsets2d, 5).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JointCalibration":
        return cls(
            joint_set=d["joint_set"],
            offsets3d=None if d.get("offsets3d_m") is None else np.asarray(d["offsets3d_m"], np.float64),
            offsets2d=None if d.get("offsets2d_torso") is None else np.asarray(d["offsets2d_torso"], np.float64),
            n_reference=int(d.get("n_reference", 0)),
            model=d.get("model", ""),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "JointCalibration":
        return cls.from_dict(json.loads(Path(path).read_text()))
