"""Whole-run views computed from the evaluation table: sensitivity per parameter, a 2D map
of the evaluations with the modes outlined, per-joint errors and search progress."""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any

import numpy as np

from reports import svg
from reports.images import joint_errors
from reports.rundata import RunData
from simulator.params import Dimension

METRIC_UNITS = {"pa_mpjpe": "mm", "pa_mpjpe_scaled": "mm", "mpjpe": "mm", "mpjpe_abs": "mm", "pve": "mm", "pck": "", "oks": "", "error": ""}


# What a metric name means, for the report's failure line (the common ones need none).
METRIC_NOTES = {
    "pa_mpjpe_scaled": "PA-MPJPE rescaled to an adult's body size, so a child's smaller millimetres do not count as accuracy",
    "mpjpe_abs": "MPJPE in the camera frame, without root alignment",
    "pck_miss": "1 - PCK@0.1", "oks_miss": "1 - OKS",
}


def metric_unit(metric: str) -> str:
    return METRIC_UNITS.get(metric, "")


def metric_note(metric: str) -> str:
    return METRIC_NOTES.get(metric, "")


def display_value(dim: Dimension, v: np.ndarray) -> np.ndarray:
    """Physical values in display units (degrees for radians)."""
    v = np.asarray(v, float)
    if dim.warp:
        return np.asarray(dim.to_display(v), float)
    return np.degrees(v) if dim.unit == "rad" else v


def display_unit(dim: Dimension) -> str:
    if dim.warp:
        return dim.display_unit
    return "°" if dim.unit == "rad" else dim.unit


def physical(dim: Dimension, u: np.ndarray) -> np.ndarray:
    """Normalised (N,) -> physical values (N,); categorical dimensions -> choice index."""
    u = np.clip(np.asarray(u, float), -1.0, 1.0)
    if dim.choices:
        return np.minimum(((u + 1.0) / 2.0 * len(dim.choices)).astype(int), len(dim.choices) - 1).astype(float)
    return dim.physical_array(u)


def box_text(dim: Dimension, lo_u: float, hi_u: float) -> str:
    """A normalised interval in physical words: "33° to 60°" or "solid, noise"."""
    if dim.choices:
        a, b = int(physical(dim, np.array([lo_u]))[0]), int(physical(dim, np.array([hi_u]))[0])
        return ", ".join(dim.choices[a:b + 1])
    lo, hi = dim.to_physical(lo_u), dim.to_physical(hi_u)
    a, b = dim.format(lo), dim.format(hi)
    if dim.warp:
        return f"{a} to {b}"

    def finer(v: float) -> str:
        if dim.unit == "rad":
            return f"{math.degrees(v):.1f}°"
        if dim.unit == "sigma":
            return f"{v:+.3f}σ"
        return f"{v:.3f}{' m' if dim.unit == 'm' else ''}"

    if a == b and lo != hi:  # a band narrower than the display precision
        a, b = finer(lo), finer(hi)
    else:  # an end just inside the range must not read as the range's own end
        if lo_u > -1.0 + 1e-9 and a == dim.format(dim.low):
            a = finer(lo)
        if hi_u < 1.0 - 1e-9 and b == dim.format(dim.high):
            b = finer(hi)
    return f"{a} to {b}"


def full_range_text(dim: Dimension) -> str:
    if dim.choices:
        return " | ".join(dim.choices)
    return f"{dim.format(dim.low)} to {dim.format(dim.high)}"


# ---------------------------------------------------------------------------------------
# Sensitivity
# ---------------------------------------------------------------------------------------

@dataclass
class Sensitivity:
    name: str
    unit: str
    score: float  # max - min failure rate over bins with enough evaluations
    spark: str  # SVG
    plot: str | None  # SVG scatter for the top dimensions
    low: str
    high: str


def sensitivity(run: RunData, bins: int = 10, top: int = 8, min_count: int = 5) -> list[Sensitivity]:
    t = run.table
    usable = t.plausible & ~t.model_error & np.isfinite(run.values)
    if not usable.any():
        return []
    U, vals, failed = t.u[usable], run.values[usable], t.failed[usable]
    out: list[Sensitivity] = []
    edges = np.linspace(-1.0, 1.0, bins + 1)
    for d, dim in enumerate(run.space.dimensions):
        col = U[:, d]
        rates, counts = [], []
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            m = (col >= a) & ((col < b) if i < bins - 1 else (col <= b))
            c = int(m.sum())
            counts.append(c)
            rates.append(float(failed[m].mean()) if c else None)
        valid = [r for r, c in zip(rates, counts) if r is not None and c >= min_count]
        score = (max(valid) - min(valid)) if len(valid) >= 2 else 0.0
        out.append(Sensitivity(dim.name, display_unit(dim), score, svg.sparkbars(rates, counts, label=f"failure rate by {dim.name}"),
                               None, dim.format(dim.low) if not dim.choices else dim.choices[0],
                               dim.format(dim.high) if not dim.choices else dim.choices[-1]))
    out.sort(key=lambda s: -s.score)
    by_name = {dim.name: (i, dim) for i, dim in enumerate(run.space.dimensions)}
    for s in out[:top]:
        d, dim = by_name[s.name]
        x = display_value(dim, physical(dim, U[:, d]))
        lim = (float(display_value(dim, np.array([dim.low]))[0]), float(display_value(dim, np.array([dim.high]))[0])) \
            if not dim.choices else (0.0, float(len(dim.choices) - 1))
        unit = display_unit(dim)
        s.plot = svg.scatter(x, vals, failed, run.threshold, xlim=lim,
                             xlabel=f"{dim.name}" + (f" ({unit})" if unit else ""),
                             ylabel=f"{run.metric} ({metric_unit(run.metric)})" if metric_unit(run.metric) else run.metric,
                             label=f"{run.metric} against {dim.name}")
    return out


# ---------------------------------------------------------------------------------------
# 2D map
# ---------------------------------------------------------------------------------------

def _inside(U: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.all((U >= lo - 1e-12) & (U <= hi + 1e-12), axis=1)


def projection(U: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """(D, 2) projection and how many of its columns are discriminant directions. With at
    least one mode: Fisher discriminant directions separating the modes (labels >= 0)
    from each other and from the rest (label -1), completed by principal components of
    what they leave; otherwise plain PCA."""
    X = U - U.mean(0)
    D = U.shape[1]
    classes = [c for c in np.unique(labels)]
    dirs: list[np.ndarray] = []
    if len(classes) >= 2:
        Sw = np.zeros((D, D))
        Sb = np.zeros((D, D))
        mu = U.mean(0)
        for c in classes:
            Xc = U[labels == c]
            mc = Xc.mean(0)
            Sw += (Xc - mc).T @ (Xc - mc)
            Sb += len(Xc) * np.outer(mc - mu, mc - mu)
        Sw /= len(U)
        Sb /= len(U)
        Sw += 1e-3 * np.trace(Sw) / D * np.eye(D)
        # Whitening turns the generalised problem into a symmetric one.
        w, V = np.linalg.eigh(Sw)
        W = V / np.sqrt(np.maximum(w, 1e-12))
        e, E = np.linalg.eigh(W.T @ Sb @ W)
        for i in np.argsort(-e)[: min(2, len(classes) - 1)]:
            v = W @ E[:, i]
            dirs.append(v / np.linalg.norm(v))
    n_disc = len(dirs)
    while len(dirs) < 2:
        R = X.copy()
        for v in dirs:
            R -= np.outer(R @ v, v)
        _, _, Vt = np.linalg.svd(R, full_matrices=False)
        dirs.append(Vt[0] / np.linalg.norm(Vt[0]))
    P = np.stack(dirs, axis=1)
    for i in range(2):  # deterministic sign: the largest loading positive
        if P[np.argmax(np.abs(P[:, i])), i] < 0:
            P[:, i] *= -1
    return P, n_disc


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of (N, 2) points: (H, 2) vertices counter-clockwise from the
    lexicographically smallest, without collinear points; fewer than three distinct
    points, or all on one line, give the distinct ones (at most the two ends)."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.unique(np.asarray(points, float).round(9), axis=0)  # sorted rows
    if len(pts) <= 2:
        return pts
    try:
        vertices = ConvexHull(pts).vertices  # counter-clockwise in 2D
    except QhullError:  # all points on one line
        return pts[[0, -1]]
    return pts[np.roll(vertices, -int(np.argmin(vertices)))]


def evaluation_map(run: RunData) -> dict[str, Any] | None:
    """The 2D map (see `projection`), colour scale and projection kind; None below 3 evaluations."""
    t = run.table
    if len(t) < 3:
        return None
    U = t.u
    labels = np.full(len(U), -1)
    for m in reversed(run.modes):  # the worst mode wins where boxes overlap
        labels[_inside(U, np.asarray(m["lo"]), np.asarray(m["hi"]))] = m["rank"]
    P, n_disc = projection(U, labels)
    xy = (U - U.mean(0)) @ P
    polys = []
    for m in run.modes:
        inside = labels == m["rank"]
        if inside.sum() >= 3:
            polys.append((f"M{m['rank']}", convex_hull(xy[inside])))
        elif inside.any():
            polys.append((f"M{m['rank']}", xy[inside][:1]))
    vals = run.values
    fin = vals[np.isfinite(vals)]
    vmin, vmax = (float(np.quantile(fin, 0.02)), float(np.quantile(fin, 0.98))) if fin.size else (0.0, 1.0)
    names = run.space.names

    def axis_name(i: int) -> str:
        top = np.argsort(-np.abs(P[:, i]))[:2]
        return f"{'LD' if i < n_disc else 'PC'} {i + 1}: " + ", ".join(
            f"{'+' if P[j, i] > 0 else '-'}{names[j]}" for j in top)

    return {
        "svg": svg.evaluation_map(xy, vals, vmin, vmax, polys, axis_labels=(axis_name(0), axis_name(1)),
                                  label="map of all evaluations"),
        "colourbar": svg.colourbar(vmin, vmax, f"{run.metric} ({metric_unit(run.metric)}), threshold marked", threshold=run.threshold),
        "kind": "discriminant" if n_disc else "pca",
        "n": len(U),
    }


# ---------------------------------------------------------------------------------------
# Per-joint errors and progress
# ---------------------------------------------------------------------------------------

def per_joint(run: RunData) -> dict[str, Any] | None:
    """Mean error per joint over all usable evaluations and over failing ones, from the
    records' "joint_errors" (see reports.images)."""
    t = run.table
    sums: dict[str, dict[str, list[float]]] = {}
    unit = None
    for rec, failed in zip(t.records, t.failed):
        errs = joint_errors(rec)
        if not errs:
            continue
        u = "mm" if "mm" in errs else "px"
        unit = unit or u
        if u != unit:
            continue
        for name, v in errs[u].items():
            d = sums.setdefault(name, {"all": [], "fail": []})
            d["all"].append(v)
            if failed:
                d["fail"].append(v)
    if not sums:
        return None
    names = sorted(sums, key=lambda n: -float(np.mean(sums[n]["all"])))
    all_ = [float(np.mean(sums[n]["all"])) for n in names]
    fail = [float(np.mean(sums[n]["fail"])) if sums[n]["fail"] else None for n in names]
    table = [{"joint": n, "all": a, "failing": f, "n": len(sums[n]["all"])} for n, a, f in zip(names, all_, fail)]
    return {
        "unit": unit,
        "svg": svg.hbars(names, [all_, fail], ["#8c8c8c", svg.FAIL], ["all evaluations", "failing evaluations"],
                         unit or "", label="mean error per joint"),
        "table": table,
    }


def progress(run: RunData) -> dict[str, Any]:
    t = run.table
    n = len(t)
    x = np.arange(1, n + 1)
    cum_fail = np.cumsum(t.failed)
    cum_search = np.cumsum(t.failed & (t.phase == "search"))
    # When each mode was first accepted: the last evaluation of an accepted job.
    jobs = (run.summary or {}).get("jobs") or []
    first_seen: dict[int, int] = {}
    for j in jobs:
        if not j.get("accepted") or j.get("mode") is None:
            continue
        idx = np.flatnonzero(t.job == j["job"])
        if idx.size:
            at = int(idx.max()) + 1
            first_seen[j["mode"]] = min(first_seen.get(j["mode"], at), at)
    times = sorted(first_seen.values())
    mx = np.array([0] + times + [n], dtype=float)
    my = np.array([0] + list(range(1, len(times) + 1)) + [len(times)], dtype=float)
    return {
        "failures": svg.lines([
            ("failing evaluations (all phases)", x, cum_fail, svg.FAIL),
            ("failing strategy proposals", x, cum_search, svg.LINE),
        ], xlabel="evaluations", ylabel="cumulative failures", label="failures found against evaluations"),
        "modes": svg.lines([("failure modes found", mx, my, "#2ca02c")], xlabel="evaluations", ylabel="modes",
                           label="failure modes found against evaluations", step=True, h=180),
        "first_mode_at": times[0] if times else None,
    }
