"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from examiner import metrics


def _rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


def test_mpjpe_hand_computed():
    pred = np.array([[[0, 0, 0], [3, 4, 0], [0, 0, 1]]], float)
    gt = np.zeros((1, 3, 3))
    assert metrics.mpjpe(pred, gt)[0] == pytest.approx((0 + 5 + 1) / 3)
    assert metrics.mpjpe(pred, gt, mask=np.array([[True, False, True]]))[0] == pytest.approx(0.5)
    assert np.isnan(metrics.mpjpe(pred, gt, mask=np.zeros((1, 3), bool))[0])
    np.testing.assert_allclose(metrics.per_joint_error(pred, gt)[0], [0, 5, 1])


def test_root_relative_uses_weights():
    j = np.array([[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [10.0, 0.0, 0.0]]])
    rr = metrics.root_relative(j, np.array([0.5, 0.5, 0.0]))
    np.testing.assert_allclose(rr[0, 2], [8.0, -2.0, -2.0])


def test_procrustes_recovers_rotation_scale_translation_exactly():
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(1, 12, 3))
    R = _rotation([1.0, 2.0, -0.5], math.radians(40))
    s, t = 1.7, np.array([0.3, -0.2, 1.5])
    pred = s * gt @ R.T + t
    assert metrics.mpjpe(pred, gt)[0] > 0.5
    assert metrics.pa_mpjpe(pred, gt)[0] == pytest.approx(0.0, abs=1e-10)
    s_hat, R_hat, t_hat = metrics.procrustes_transform(pred, gt)
    assert s_hat[0] == pytest.approx(1 / s)
    np.testing.assert_allclose(R_hat[0], R.T, atol=1e-10)
    np.testing.assert_allclose(t_hat[0], -(1 / s) * R.T @ t, atol=1e-10)


def test_procrustes_hand_computed_residual():
    # Square in the xy plane; prediction moves one corner 0.4 along x. Best similarity fit
    # of a square to this kite is computed by hand: centroids shift by 0.1, scale and
    # rotation stay (the perturbation is symmetric about the x axis).
    gt = np.array([[[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]]], float)
    pred = gt.copy()
    pred[0, 0, 0] = 1.4
    # pred centred: (1.3,0),(−0.1,1),(−1.1,0),(−0.1,−1); gt centred = gt.
    # cov trace term: sum(gt·pred_c) = 1.3 + 1 + 1.1 + 1 = 4.4; var(pred_c) = 1.69+1.01+1.21+1.01 = 4.92
    # scale maps pred -> gt: s = 4.4 / 4.92; residuals gt - s*pred_c.
    s = 4.4 / 4.92
    pc = pred[0] - pred[0].mean(0)
    expected = np.linalg.norm(gt[0] - s * pc, axis=1).mean()
    assert metrics.pa_mpjpe(pred, gt)[0] == pytest.approx(expected, rel=1e-9)
    assert metrics.procrustes_transform(pred, gt)[0][0] == pytest.approx(s)


def test_procrustes_never_reflects():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(1, 10, 3))
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    _, R, _ = metrics.procrustes_transform(mirrored, gt)
    assert np.linalg.det(R[0]) == pytest.approx(1.0)
    assert metrics.pa_mpjpe(mirrored, gt)[0] > 0.1


def test_procrustes_respects_mask():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(1, 8, 3))
    pred = gt.copy()
    pred[0, 7] += 10.0  # an outlier that the mask removes
    mask = np.ones((1, 8), bool)
    mask[0, 7] = False
    assert metrics.pa_mpjpe(pred, gt, mask)[0] == pytest.approx(0.0, abs=1e-10)


def test_pck_threshold_is_tenth_of_longest_box_side():
    gt = np.zeros((1, 4, 2))
    pred = np.array([[[5, 0], [0, 9.99], [10, 0], [20, 0]]], float)
    boxes = np.array([[0, 0, 100, 50]], float)  # longest side 100 -> threshold 10 px
    vis = np.array([[2, 1, 2, 0]])  # last joint out of frame: not counted
    assert metrics.pck(pred, gt, boxes, vis)[0] == pytest.approx(2 / 3)
    assert metrics.pck(pred, gt, boxes, vis, alpha=0.2)[0] == pytest.approx(1.0)


def test_oks_hand_computed():
    gt = np.zeros((1, 3, 2))
    pred = np.array([[[10, 0], [0, 0], [50, 50]]], float)
    vis = np.array([[2, 2, 0]])
    sigmas = np.array([0.079, np.nan, 0.079])  # the second joint has no sigma: not counted
    area = np.array([10000.0])
    # e = d^2 / (2 * area * (2 sigma)^2) = 100 / (2 * 10000 * 0.024964) = 100 / 499.28
    expected = math.exp(-100 / 499.28)
    assert metrics.oks(pred, gt, vis, area, sigmas)[0] == pytest.approx(expected, rel=1e-6)
    assert metrics.oks(gt, gt, vis, area, sigmas)[0] == pytest.approx(1.0)


def test_pve_is_mean_vertex_distance():
    gt = np.zeros((2, 4, 3))
    pred = np.zeros((2, 4, 3))
    pred[1, :, 2] = 0.02
    np.testing.assert_allclose(metrics.pve(pred, gt), [0.0, 0.02])


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        metrics.mpjpe(np.zeros((1, 3, 3)), np.zeros((1, 4, 3)))


def _procrustes_loop(pred, gt, mask):
    """The per-sample loop procrustes_transform replaced (reference for the batched one)."""
    b = len(pred)
    scale, rot, trans = np.ones(b), np.tile(np.eye(3), (b, 1, 1)), np.zeros((b, 3))
    for i in range(b):
        w = mask[i].astype(float)
        n = w.sum()
        if n < 3:
            continue
        mu_p = (w[:, None] * pred[i]).sum(0) / n
        mu_g = (w[:, None] * gt[i]).sum(0) / n
        xp = (pred[i] - mu_p) * w[:, None]
        xg = (gt[i] - mu_g) * w[:, None]
        var_p = (xp**2).sum() / n
        u, d, vt = np.linalg.svd(xg.T @ xp / n)
        sign = np.ones(3)
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            sign[-1] = -1.0
        r = u @ np.diag(sign) @ vt
        s = (d * sign).sum() / var_p if var_p > 0 else 1.0
        scale[i], rot[i], trans[i] = s, r, mu_g - s * r @ mu_p
    return scale, rot, trans


def test_batched_procrustes_matches_the_per_sample_loop():
    rng = np.random.default_rng(0)
    b, j = 500, 17
    gt = rng.normal(size=(b, j, 3))
    pred = gt @ np.stack([_rotation(rng.normal(size=3), rng.uniform(-3, 3)) for _ in range(b)]) * rng.uniform(0.5, 2, (b, 1, 1))
    pred += rng.normal(scale=0.3, size=pred.shape) + rng.normal(size=(b, 1, 3))
    pred[: b // 10] *= np.array([-1.0, 1.0, 1.0])  # mirrored: the reflection case
    mask = rng.random((b, j)) < 0.8
    mask[:20] = rng.random((20, j)) < 0.1  # some samples with fewer than 3 joints
    pred[:5, 0] = 0.0
    pred[:5, 1:] = 0.0  # a degenerate (zero-variance) prediction
    mask[:5] = True
    for got, want in zip(metrics.procrustes_transform(pred, gt, mask), _procrustes_loop(pred, gt, mask)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(metrics.pa_mpjpe(pred, gt, mask), metrics.mpjpe(
        (lambda s, r, t: s[:, None, None] * np.einsum("bij,bkj->bki", r, pred) + t[:, None])(*_procrustes_loop(pred, gt, mask)),
        gt, mask), rtol=0, atol=1e-9)
    assert (mask.sum(1) < 3).any() and ((pred[:, :, 0] < 0).any())
