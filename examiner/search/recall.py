"""Recall measures of a finished run against known planted boxes (issue 20).

For a run whose target has planted regions (the analytic targets, `analytic:drawn`):
- when each planted region was recalled: the evaluation index at which the first
  accepted region-growing job that belongs to a mode matching the region finished (a mode
  matches a planted region when at least `purity` of the mode's box lies inside it, the
  rule of benchmarks/bench_search.py); every evaluation counts, search, probing,
  bisection and verification alike;
- evaluations to recall a fraction q of the planted regions: the index at which the
  ceil(q * R)-th region was recalled (None when the run never got there);
- box accuracy: IoU of the matching mode's box with the planted box, in the full
  normalised space (the planted box is [-1, 1] on the dimensions it does not name) and
  on the planted region's own dimensions;
- growth cost: evaluations outside the search phase (probe, bisect, verify) per
  accepted region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from examiner.store import RunStore


def box_iou(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray, dims=None) -> float:
    """Intersection over union of two axis-aligned boxes (on `dims` only, if given)."""
    sl = slice(None) if dims is None else np.asarray(dims)
    la, ha, lb, hb = lo_a[sl], hi_a[sl], lo_b[sl], hi_b[sl]
    w = np.minimum(ha, hb) - np.maximum(la, lb)
    if np.any(w <= 0):
        return 0.0
    log_i = float(np.sum(np.log(w)))
    log_a, log_b = float(np.sum(np.log(ha - la))), float(np.sum(np.log(hb - lb)))
    inter = math.exp(log_i - max(log_a, log_b))  # scaled by the larger volume
    rest = math.exp(min(log_a, log_b) - max(log_a, log_b))
    return inter / (1.0 + rest - inter)


def purity(lo: np.ndarray, hi: np.ndarray, p_lo: np.ndarray, p_hi: np.ndarray) -> float:
    """vol(mode & planted) / vol(mode)."""
    w = np.minimum(hi, p_hi) - np.maximum(lo, p_lo)
    if np.any(w <= 0):
        return 0.0
    return float(np.exp(np.sum(np.log(w) - np.log(np.maximum(hi - lo, 1e-12)))))


@dataclass
class RecallReport:
    planted: int
    found_at: list[int | None]  # per planted region, in planted order
    iou: list[float | None]  # full-space IoU of the matching mode's box
    iou_dims: list[float | None]  # IoU on the planted region's own dimensions
    evaluations: int
    accepted: int
    growth_evaluations: int
    false_modes: int
    names: list[str] = field(default_factory=list)

    def evals_to_recall(self, q: float) -> int | None:
        need = max(1, math.ceil(q * self.planted - 1e-9))
        found = sorted(i for i in self.found_at if i is not None)
        return found[need - 1] + 1 if len(found) >= need else None

    @property
    def evals_per_region(self) -> float | None:
        return self.growth_evaluations / self.accepted if self.accepted else None


def recall_report(run_dir: str | Path, planted: Sequence[tuple[str, np.ndarray, np.ndarray]],
                  purity_min: float = 0.5) -> RecallReport:
    """Score the finished run in `run_dir` against planted boxes [(name, lo, hi), ...]."""
    store = RunStore.open(run_dir)
    finish: dict[int, int] = {}
    growth = 0
    n = 0
    for r in store.iter_records():
        n += 1
        if r.get("job") is not None:
            finish[int(r["job"])] = int(r["i"])
        if r.get("phase") != "search":
            growth += 1
    summary = store.summary() or {}
    accepted = sum(bool(j["accepted"]) for j in summary.get("jobs", []))
    modes = store.modes()
    found: list[int | None] = []
    ious: list[float | None] = []
    ious_d: list[float | None] = []
    matched_modes: set[int] = set()
    for _, p_lo, p_hi in planted:
        dims = np.flatnonzero((p_lo > -1.0) | (p_hi < 1.0))
        best_t, best_iou, best_iou_d = None, None, None
        for m in modes:
            lo, hi = np.asarray(m["lo"], dtype=float), np.asarray(m["hi"], dtype=float)
            if purity(lo, hi, p_lo, p_hi) < purity_min:
                continue
            matched_modes.add(int(m["id"]))
            t = min((finish[j] for j in m["members"] if j in finish), default=None)
            if t is None:
                continue
            iou, iou_d = box_iou(lo, hi, p_lo, p_hi), box_iou(lo, hi, p_lo, p_hi, dims)
            if best_t is None or t < best_t:
                best_t = t
            if best_iou is None or iou > best_iou:
                best_iou, best_iou_d = iou, iou_d
        found.append(best_t)
        ious.append(best_iou)
        ious_d.append(best_iou_d)
    return RecallReport(
        planted=len(planted), found_at=found, iou=ious, iou_dims=ious_d, evaluations=n, accepted=accepted,
        growth_evaluations=growth, false_modes=len([m for m in modes if int(m["id"]) not in matched_modes]),
        names=[p[0] for p in planted],
    )
