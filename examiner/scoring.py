"""Scoring predictions against simulator ground truth: the one scoring code behind the
search (`examiner.search.sim_evaluator`), `examiner evaluate` and the benchmarks.

`score_batch` maps a `Prediction` and the rendered `Sample`s onto one joint set (default:
the twelve limb joints of ``examiner.conventions.COMMON_JOINTS``) and computes per-sample
metrics; `reference_scenes` and `calibrate` estimate a model's joint offsets on easy
scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from examiner import metrics
from examiner.conventions import COMMON_BONES, conversion_matrix, get_convention
from examiner.targets.base import Prediction, TargetBatch, TargetError, TargetModel, checked_predict
from examiner.targets.calibration import JointCalibration
from simulator.params import SceneParams

GT_SOURCES = ("coco17", "h36m17", "feet6")
# score_batch(joint_mask=...): with fewer than MIN_SCORED_JOINTS joints counted (of the 12
# common joints) the 3D metrics are NaN (a similarity fit to 3-5 points says little).
SEEN_JOINTS = ("in_frame", "visible")
MIN_SCORED_JOINTS = 6
# Body size of an adult: the summed length in metres of the COMMON_BONES segments on the
# simulator's ground truth for a 30-year-old with every other phenotype at its middle
# (adults of 18-64 years: 4.07-4.08 m; a 3-year-old 2.27 m; the default scene's
# 13-year-old 3.69 m). ``pa_mpjpe_scaled`` is PA-MPJPE times REFERENCE_SIZE / (the
# sample's own size): the error as it would be on an adult-sized body, so that one
# threshold means the same for a toddler and an adult. tests/examiner/test_scoring_scaled.py
# keeps the value so.
REFERENCE_SIZE = 4.08
REFERENCE_AGE_YEARS = 30.0


@dataclass
class GroundTruth:
    """Ground truth of B samples on one joint set (J joints).

    xyz (B, J, 3) m camera frame; xy (B, J, 2) px; visibility (B, J) int; valid (B, J) bool
    (the simulator provides that joint); boxes (B, 4) xyxy px; area (B,) px^2 (person mask
    pixels, else box area), for OKS."""

    joint_set: str
    xyz: np.ndarray
    xy: np.ndarray
    visibility: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray
    area: np.ndarray


def ground_truth(samples: Sequence[Any], joint_set: str = "common12") -> GroundTruth:
    """Collect the samples' keypoints on ``joint_set``: taken from that convention when the
    sample has it, else converted exactly from coco17 / h36m17 / feet6."""
    js = get_convention(joint_set)
    b, j = len(samples), js.num_joints
    xyz = np.full((b, j, 3), np.nan)
    xy = np.full((b, j, 2), np.nan)
    vis = np.zeros((b, j), np.int64)
    valid = np.zeros((b, j), bool)
    for i, s in enumerate(samples):
        sources = ([joint_set] if joint_set in s.keypoints else []) + [c for c in GT_SOURCES if c in s.keypoints]
        for src in sources:
            kp = s.keypoints[src]
            W, ok = conversion_matrix(src, js)
            rows = ok & ~valid[i]
            if not rows.any():
                continue
            xyz[i, rows] = W[rows] @ np.asarray(kp.xyz, np.float64)
            xy[i, rows] = W[rows] @ np.asarray(kp.xy, np.float64)
            v = np.asarray(kp.visibility, np.int64)
            for r in np.flatnonzero(rows):
                vis[i, r] = v[W[r] != 0].min()
            valid[i, rows] = True
    boxes = np.stack([np.asarray(s.bbox, np.float64) for s in samples])
    area = np.array(
        [
            float(np.count_nonzero(s.mask)) if getattr(s, "mask", None) is not None and np.any(s.mask)
            else float(max(bx[2] - bx[0], 0) * max(bx[3] - bx[1], 0))
            for s, bx in zip(samples, boxes)
        ]
    )
    return GroundTruth(joint_set, xyz, xy, vis, valid, boxes, area)


def joints_seen(samples: Sequence[Any], joint_set: str = "common12", which: str = "visible") -> np.ndarray:
    """(B, J) bool: the joints of each sample that are inside the image ("in_frame") or
    inside it and not hidden by an occluder or the body ("visible"), for
    score_batch(joint_mask=...)."""
    from simulator.sample import OUT_OF_FRAME, VISIBLE

    if which not in SEEN_JOINTS:
        raise TargetError(f"joints must be one of {', '.join(SEEN_JOINTS)}, got {which!r}")
    gt = ground_truth(samples, joint_set)
    return gt.valid & ((gt.visibility != OUT_OF_FRAME) if which == "in_frame" else (gt.visibility == VISIBLE))


@dataclass
class BatchScores:
    """Per-sample metrics (B,) and per-joint errors (B, J) on ``joints``; NaN where a sample
    failed or a metric does not apply. 3D in metres, 2D in pixels. size (B,): the ground
    truth's body size (`body_size`); pa_mpjpe_scaled: pa_mpjpe rescaled to REFERENCE_SIZE."""

    joints: tuple[str, ...]
    mpjpe: np.ndarray
    pa_mpjpe: np.ndarray
    mpjpe_abs: np.ndarray
    pve: np.ndarray
    pck: np.ndarray
    oks: np.ndarray
    joint_err3d: np.ndarray
    joint_err2d: np.ndarray
    size: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pa_mpjpe_scaled: np.ndarray = field(default_factory=lambda: np.zeros(0))
    failure_kind: list[str] = field(default_factory=list)
    failure_message: list[str] = field(default_factory=list)


def body_size(gt: GroundTruth) -> np.ndarray:
    """(B,) summed length in metres of the COMMON_BONES segments of the ground truth; NaN
    when the joint set lacks one of them."""
    index = {name: i for i, name in enumerate(get_convention(gt.joint_set).joints)}
    if not all(a in index and b in index for a, b in COMMON_BONES):
        return np.full(len(gt.xyz), np.nan)
    bones = np.array([(index[a], index[b]) for a, b in COMMON_BONES])
    return metrics.segment_length(gt.xyz, bones)


def prediction_on(pred: Prediction, joint_set: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Convert the prediction to the joint set: (joints3d (B, J, 3) | None, joints2d | None,
    valid (J,)) using exact mappings only."""
    W, valid = conversion_matrix(pred.convention, joint_set)
    j3 = None if pred.joints3d is None else np.einsum("ds,bsc->bdc", W, pred.joints3d.astype(np.float64))
    j2 = None if pred.joints2d is None else np.einsum("ds,bsc->bdc", W, pred.joints2d.astype(np.float64))
    return j3, j2, valid


def score_batch(
    pred: Prediction,
    samples: Sequence[Any],
    joint_set: str = "common12",
    calibration: JointCalibration | None = None,
    pck_alpha: float = 0.1,
    joint_mask: np.ndarray | None = None,
) -> BatchScores:
    """Score a prediction against the samples' ground truth on the joints the simulator
    and the model share. joint_mask (B, J) bool, optional: count only those joints (for
    example `joints_seen(samples, joint_set, "in_frame")`); a sample left with fewer than
    MIN_SCORED_JOINTS gets NaN 3D metrics."""
    js = get_convention(joint_set)
    gt = ground_truth(samples, joint_set)
    j3, j2, pvalid = prediction_on(pred, joint_set)
    if not pvalid.any():
        raise TargetError(f"prediction convention {pred.convention!r} has no joint of joint set {joint_set!r}")
    if calibration is not None and calibration.joint_set != joint_set:
        raise TargetError(f"calibration is for joint set {calibration.joint_set!r}, scoring uses {joint_set!r}")
    b, j = len(samples), js.num_joints
    mask = gt.valid & pvalid[None, :]
    too_few = np.zeros(b, bool)
    if joint_mask is not None:
        joint_mask = np.asarray(joint_mask, bool)
        if joint_mask.shape != (b, j):
            raise TargetError(f"joint_mask has shape {joint_mask.shape}, expected {(b, j)}")
        mask &= joint_mask
        too_few = mask.sum(1) < MIN_SCORED_JOINTS
        mask[too_few] = False
    ok = pred.ok
    nan = np.full(b, np.nan)
    out = BatchScores(js.joints, nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(),
                      np.full((b, j), np.nan), np.full((b, j), np.nan), body_size(gt), nan.copy())
    root_w = js.root_weights()
    if j3 is not None:
        if calibration is not None and ok.any():
            j3 = j3.copy()
            j3[ok] = calibration.apply3d(j3[ok])
        p_rr = metrics.root_relative(j3, root_w)
        g_rr = metrics.root_relative(gt.xyz, root_w)
        err = metrics.per_joint_error(p_rr, g_rr, mask)
        out.joint_err3d = err
        out.mpjpe = metrics.mpjpe(p_rr, g_rr, mask)
        safe = np.where(np.isfinite(p_rr), p_rr, 0.0)
        out.pa_mpjpe = np.where(ok, metrics.pa_mpjpe(safe, np.where(np.isfinite(g_rr), g_rr, 0.0), mask), np.nan)
        if pred.frame == "camera":
            out.mpjpe_abs = metrics.mpjpe(j3, gt.xyz, mask)
        gt_verts = [getattr(s, "vertices", None) for s in samples]
        if pred.vertices is not None and all(v is not None for v in gt_verts):
            gv = np.stack(gt_verts).astype(np.float64)
            if gv.shape == pred.vertices.shape:
                p_root = np.einsum("j,bjc->bc", root_w, j3)[:, None]
                g_root = np.einsum("j,bjc->bc", root_w, gt.xyz)[:, None]
                out.pve = metrics.pve(pred.vertices - p_root, gv - g_root)
    if j2 is not None:
        if calibration is not None and ok.any():
            j2 = j2.copy()
            j2[ok] = calibration.apply2d(j2[ok])
        vis2 = np.where(mask, gt.visibility, 0)
        out.joint_err2d = metrics.per_joint_error(j2, gt.xy, vis2 > 0)
        out.pck = metrics.pck(j2, gt.xy, gt.boxes, vis2, alpha=pck_alpha)
        out.oks = metrics.oks(j2, gt.xy, vis2, gt.area, js.sigmas)
    with np.errstate(invalid="ignore", divide="ignore"):
        out.pa_mpjpe_scaled = out.pa_mpjpe * REFERENCE_SIZE / out.size
    for name in ("mpjpe", "pa_mpjpe", "pa_mpjpe_scaled", "mpjpe_abs", "pve", "pck", "oks"):
        arr = getattr(out, name)
        arr[~ok] = np.nan
        if name in ("mpjpe", "pa_mpjpe", "pa_mpjpe_scaled", "mpjpe_abs"):
            arr[too_few] = np.nan
    out.joint_err3d[~ok] = np.nan
    out.joint_err2d[~ok] = np.nan
    failures = pred.failures or [None] * b
    out.failure_kind = [f.kind if f else "" for f in failures]
    out.failure_message = [f.message if f else "" for f in failures]
    return out


# ---------------------------------------------------------------------------------------
# Reference scenes and calibration
# ---------------------------------------------------------------------------------------


def reference_scenes(n: int, seed: int, base: SceneParams | None = None) -> list[SceneParams]:
    """Easy scenes for offset calibration: the base scene (neutral standing pose, frontal
    camera, no occluder) with every pose angle jittered by N(0, 5°) and the camera azimuth
    uniform in ±25°."""
    from simulator.params import default_dimensions

    base = base or SceneParams()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA1B]))
    pose_dims = [d for d in default_dimensions() if d.group == "joints"]  # the raw angles
    flat = base.flat()
    scenes = []
    for _ in range(n):
        values: dict[str, Any] = {}
        for d in pose_dims:
            v = flat[d.name] + rng.normal(0.0, math.radians(5))
            values[d.name] = float(np.clip(v, d.low, d.high))
        values["camera.azimuth"] = float(rng.uniform(-math.radians(25), math.radians(25)))
        scenes.append(base.with_values(values))
    return scenes


def calibrate(
    model: TargetModel,
    samples: Sequence[Any],
    joint_set: str = "common12",
) -> JointCalibration:
    """Estimate the model's joint offsets on reference samples (see
    ``examiner.targets.calibration`` for the method)."""
    batch = TargetBatch.from_samples(samples, with_ground_truth=model.needs_ground_truth)
    pred = checked_predict(model, batch)
    ok = pred.ok
    if ok.sum() < max(3, len(samples) // 4):
        raise TargetError(
            f"calibration needs usable predictions: the model failed on {int((~ok).sum())} of {len(samples)} reference scenes"
        )
    gt = ground_truth(samples, joint_set)
    j3, j2, _ = prediction_on(pred, joint_set)
    return JointCalibration.estimate(
        joint_set,
        None if j3 is None else j3[ok],
        gt.xyz[ok] if j3 is not None else None,
        None if j2 is None else j2[ok],
        gt.xy[ok] if j2 is not None else None,
        model=model.name,
    )
