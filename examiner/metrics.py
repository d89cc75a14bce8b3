"""Pose metrics as pure numpy functions.

Shapes: B samples, J joints, V vertices. 3D inputs are metres, 2D inputs pixels; every
function returns metres / pixels / fractions as documented (multiply by 1000 for mm).
A ``mask`` (B, J) bool selects the joints that count; a sample with no valid joint gets NaN.

Definitions
- MPJPE: mean Euclidean distance over joints after both skeletons are made root-relative
  (root = hip midpoint unless a convention says otherwise; see ``examiner.conventions``).
- PA-MPJPE: MPJPE after the similarity transform (scale, rotation, translation) that best
  aligns the prediction to the ground truth in the least-squares sense (Umeyama 1991).
- PVE: mean per-vertex distance, for meshes that share a topology, root-relative.
- PCK@alpha: fraction of joints whose 2D error is below ``alpha * max(box width, box
  height)`` of the ground-truth person box (alpha = 0.1 by default); only labelled joints
  (visibility > 0, i.e. in frame) count.
- Body size: the summed length of a skeleton's segments (``segment_length``); pose
  barely changes it, shape (age, height) does. PA-MPJPE in millimetres grows with it.
- OKS: COCO object keypoint similarity, ``mean_j exp(-d_j^2 / (2 s^2 k_j^2))`` over labelled
  joints, with ``s^2`` the object area in px^2 and ``k_j = 2 sigma_j`` (COCO sigmas).
"""

from __future__ import annotations

import numpy as np


def _as_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    return np.broadcast_to(mask, shape)


def root_relative(joints: np.ndarray, root_weights: np.ndarray) -> np.ndarray:
    """joints (B, J, C), root_weights (J,) summing to 1 -> joints minus the weighted root."""
    joints = np.asarray(joints, dtype=np.float64)
    root = np.einsum("j,bjc->bc", np.asarray(root_weights, dtype=np.float64), joints)
    return joints - root[:, None, :]


def per_joint_error(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(B, J, C) x2 -> (B, J) Euclidean distance (same unit as the input), NaN where masked."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    err = np.linalg.norm(pred - gt, axis=-1)
    m = _as_mask(mask, err.shape)
    return np.where(m, err, np.nan)


def _masked_mean(values: np.ndarray) -> np.ndarray:
    """(B, J) with NaN for excluded -> (B,), NaN when a row has nothing."""
    count = np.sum(~np.isnan(values), axis=1)
    total = np.nansum(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """pred, gt (B, J, 3) metres, already in the same (e.g. root-relative) frame -> (B,) metres."""
    return _masked_mean(per_joint_error(pred, gt, mask))


def procrustes_transform(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity transform that maps pred onto gt: ``s * R @ p + t``.

    pred, gt (B, J, 3); mask (B, J). Returns scale (B,), rotation (B, 3, 3) with det +1,
    translation (B, 3). Umeyama (1991) closed form over the masked joints; samples with
    fewer than 3 valid joints get the identity. Batched: one SVD call over all samples."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    b, j, _ = pred.shape
    m = _as_mask(mask, (b, j)).astype(np.float64)
    n = m.sum(axis=1)
    ok = n >= 3
    n_safe = np.where(ok, n, 1.0)
    # Joints outside the mask (and whole samples with fewer than 3) contribute exact zeros,
    # whatever their values; one batched SVD over all samples.
    w = np.where(ok[:, None], m, 0.0)[..., None]
    p = np.where(w > 0, pred, 0.0)
    g = np.where(w > 0, gt, 0.0)
    mu_p = p.sum(axis=1) / n_safe[:, None]
    mu_g = g.sum(axis=1) / n_safe[:, None]
    xp = (p - mu_p[:, None]) * w
    xg = (g - mu_g[:, None]) * w
    var_p = np.einsum("bjc,bjc->b", xp, xp) / n_safe
    cov = np.einsum("bji,bjk->bik", xg, xp) / n_safe[:, None, None]
    cov[~ok] = np.eye(3)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones((b, 3))
    sign[:, -1] = np.where(np.linalg.det(u) * np.linalg.det(vt) < 0, -1.0, 1.0)
    rot = np.einsum("bij,bj,bjk->bik", u, sign, vt)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(var_p > 0, (d * sign).sum(axis=1) / np.where(var_p > 0, var_p, 1.0), 1.0)
    trans = mu_g - scale[:, None] * np.einsum("bij,bj->bi", rot, mu_p)
    scale = np.where(ok, scale, 1.0)
    rot[~ok] = np.eye(3)
    trans[~ok] = 0.0
    return scale, rot, trans


def procrustes_align(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """pred (B, J, 3) aligned onto gt (B, J, 3) by the best similarity transform."""
    s, r, t = procrustes_transform(pred, gt, mask)
    pred = np.asarray(pred, dtype=np.float64)
    return s[:, None, None] * np.einsum("bij,bkj->bki", r, pred) + t[:, None, :]


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(B, J, 3) x2 metres -> (B,) metres after Procrustes alignment."""
    return mpjpe(procrustes_align(pred, gt, mask), gt, mask)


def pve(pred_vertices: np.ndarray, gt_vertices: np.ndarray) -> np.ndarray:
    """(B, V, 3) x2 metres, same topology and same (root-relative) frame -> (B,) metres."""
    return mpjpe(pred_vertices, gt_vertices)


def segment_length(joints: np.ndarray, bones: np.ndarray) -> np.ndarray:
    """joints (B, J, 3), bones (K, 2) joint index pairs -> (B,) summed segment length
    (input unit); NaN when a segment's joint is missing (NaN)."""
    joints = np.asarray(joints, dtype=np.float64)
    bones = np.asarray(bones, dtype=np.int64).reshape(-1, 2)
    if len(bones) == 0:
        return np.full(joints.shape[0], np.nan)
    return np.linalg.norm(joints[:, bones[:, 0]] - joints[:, bones[:, 1]], axis=-1).sum(axis=1)


def box_size(boxes: np.ndarray) -> np.ndarray:
    """(B, 4) xyxy px -> (B,) max(width, height) px."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def pck(
    pred2d: np.ndarray,
    gt2d: np.ndarray,
    boxes: np.ndarray,
    visibility: np.ndarray,
    alpha: float = 0.1,
) -> np.ndarray:
    """PCK@alpha: pred2d, gt2d (B, J, 2) px; boxes (B, 4) xyxy px; visibility (B, J)
    (0 = out of frame, not counted). -> (B,) fraction in [0, 1], NaN with no labelled joint."""
    err = per_joint_error(pred2d, gt2d, np.asarray(visibility) > 0)
    thr = alpha * box_size(boxes)
    hit = np.where(np.isnan(err), np.nan, (err < thr[:, None]).astype(np.float64))
    return _masked_mean(hit)


def oks(
    pred2d: np.ndarray,
    gt2d: np.ndarray,
    visibility: np.ndarray,
    area: np.ndarray,
    sigmas: np.ndarray,
) -> np.ndarray:
    """COCO OKS: pred2d, gt2d (B, J, 2) px; visibility (B, J) (> 0 counts); area (B,) px^2;
    sigmas (J,) (NaN = joint has no sigma, not counted). -> (B,) in [0, 1]."""
    pred2d = np.asarray(pred2d, dtype=np.float64)
    gt2d = np.asarray(gt2d, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    d2 = ((pred2d - gt2d) ** 2).sum(-1)
    k2 = (2.0 * sigmas) ** 2
    area = np.asarray(area, dtype=np.float64)
    e = d2 / (2.0 * k2[None, :] * (area[:, None] + np.spacing(1)))
    m = (np.asarray(visibility) > 0) & np.isfinite(sigmas)[None, :]
    sim = np.where(m, np.exp(-e), np.nan)
    return _masked_mean(sim)
