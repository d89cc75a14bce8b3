"""Interval and box maths in the normalised space [-1, 1]^D: the Wilson interval of a
verification rate, box volumes, overlaps and distances. Reports and the recheck import
these; nothing here depends on the search's state."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (``scipy.stats.binomtest``);
    (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def box_log_volume(lo: np.ndarray, hi: np.ndarray) -> float:
    """log of the box's volume as a fraction of [-1, 1]^D."""
    width = np.maximum(hi - lo, 1e-12) / 2.0
    return float(np.sum(np.log(width)))


def box_overlap(lo_a, hi_a, lo_b, hi_b) -> float:
    """vol(A & B) / min(vol A, vol B), in [0, 1]."""
    inter = np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)
    if np.any(inter <= 0):
        return 0.0
    log_inter = float(np.sum(np.log(np.maximum(inter, 1e-12) / 2.0)))
    return float(math.exp(log_inter - min(box_log_volume(lo_a, hi_a), box_log_volume(lo_b, hi_b))))


def distance_to_boxes(U: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, B) L2 distance from each row of U (N, D) to each box (B, D)."""
    if len(lo) == 0:
        return np.full((len(U), 0), np.inf)
    gap = np.maximum(lo[None] - U[:, None], 0.0) + np.maximum(U[:, None] - hi[None], 0.0)
    return np.sqrt(np.sum(gap * gap, axis=2))
