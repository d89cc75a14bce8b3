"""Drawn analytic targets: `analytic:drawn?layout=N`.

The planted targets (`planted`, `hidden`, `many`) are fixed layouts, so a strategy (or a
default) can end up tuned to them. A drawn target's planted regions are drawn anew from
the layout seed N: how many regions (3-8), how many dimensions each constrains (2-4), the
width of each side, where it sits, and how wide its error halo is. Benchmarks run one
layout per seed, so no strategy sees the same layout twice.

The draw (docs/search-baselines.md has the reasoning):
- count: uniform in [3, 8];
- per region, constrained dimensions: 2 (35%), 3 (40%) or 4 (25%), drawn
  without replacement from the space's continuous dimensions; one dimension's group
  (the first part of its name, e.g. `pose`) is chosen first so that regions spread over
  the groups;
- sides: each side's width log-uniform in [0.12, 0.5] normalised units (at least about
  twice the default bisection tolerance, so a box can be resolved); a region whose
  volume fraction falls outside [1e-5, 3e-2] is redrawn (1e-5: hit once in 100,000
  uniform draws; 3e-2: no slab so large that uniform sampling trips over it at once);
- placement: each side's lower edge uniform in [-0.95, 0.95 - side]; a region is redrawn
  while vol(A & B) >= 5% of the smaller of it and an earlier region B (the boxes are free
  on the dimensions they do not name, so two regions always meet somewhere; this keeps
  them distinct modes under the 50% merge rule);
- halo: uniform in [0.5, 0.9] (the error rises towards the box, never to the threshold).

`drawn_regions` returns the layout as (name, bounds, halo) triples; `build_evaluator`
turns them into the `AnalyticEvaluator`'s `PlantedRegion`s (no implausible or
model-crash boxes, so that recall measures search alone). `planted_boxes(evaluator)`
gives any analytic evaluator's planted regions as (name, lo, hi) boxes in the full
normalised space, for scoring recall and box IoU (examiner.search.recall).

This module imports nothing from the evaluator module (which imports it), so that it
adds no import cycle.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from examiner.search.errors import SearchConfigError
from simulator.params import ParamSpace

COUNT_RANGE = (3, 8)
DIMS_CHOICES = (2, 3, 4)
DIMS_PROBS = (0.35, 0.40, 0.25)
SIDE_RANGE = (0.12, 0.5)
VOLUME_RANGE = (1e-5, 3e-2)
HALO_RANGE = (0.5, 0.9)
MAX_OVERLAP = 0.05
_MAX_REDRAWS = 200


def _continuous_names(space: ParamSpace) -> list[str]:
    return [d.name for d in space.dimensions if d.choices is None]


def _overlap(a: dict[str, tuple[float, float]], b: dict[str, tuple[float, float]]) -> float:
    """vol(A & B) / min(vol A, vol B) for boxes free on the dimensions they do not name."""
    log_inter, log_a, log_b = 0.0, 0.0, 0.0
    for d in set(a) | set(b):
        la, ha = a.get(d, (-1.0, 1.0))
        lb, hb = b.get(d, (-1.0, 1.0))
        w = min(ha, hb) - max(la, lb)
        if w <= 0:
            return 0.0
        log_inter += math.log(w / 2.0)
        log_a += math.log((ha - la) / 2.0)
        log_b += math.log((hb - lb) / 2.0)
    return math.exp(log_inter - min(log_a, log_b))


def drawn_regions(layout: int, space: ParamSpace) -> tuple[tuple[str, dict[str, tuple[float, float]], float], ...]:
    """The planted regions of layout `layout` over `space`'s continuous dimensions."""
    if not isinstance(layout, (int, np.integer)) or isinstance(layout, bool) or layout < 0:
        raise SearchConfigError(f"analytic:drawn layout must be a non-negative integer, got {layout!r}")
    names = _continuous_names(space)
    if len(names) < max(DIMS_CHOICES):
        raise SearchConfigError(
            f"analytic:drawn needs at least {max(DIMS_CHOICES)} continuous dimensions; the space has {len(names)}"
        )
    rng = np.random.default_rng(np.random.SeedSequence([int(layout), 2026_12_05]))
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n.split(".")[0], []).append(n)
    group_names = list(groups)
    count = int(rng.integers(COUNT_RANGE[0], COUNT_RANGE[1] + 1))
    out: list[tuple[str, dict[str, tuple[float, float]], float]] = []
    for j in range(count):
        for _ in range(_MAX_REDRAWS):
            k = int(rng.choice(DIMS_CHOICES, p=DIMS_PROBS))
            g = group_names[int(rng.integers(len(group_names)))]
            first = groups[g][int(rng.integers(len(groups[g])))]
            rest = [n for n in names if n != first]
            dims = [first] + [rest[int(i)] for i in rng.choice(len(rest), k - 1, replace=False)]
            sides = np.exp(rng.uniform(math.log(SIDE_RANGE[0]), math.log(SIDE_RANGE[1]), size=k))
            vol = float(np.prod(sides / 2.0))
            if not VOLUME_RANGE[0] <= vol <= VOLUME_RANGE[1]:
                continue
            bounds = {}
            for d, side in zip(dims, sides):
                lo = round(float(rng.uniform(-0.95, 0.95 - side)), 4)
                bounds[d] = (lo, round(lo + float(side), 4))
            if all(_overlap(bounds, r[1]) < MAX_OVERLAP for r in out):
                break
        else:  # pragma: no cover - a 51-dimensional space never gets here
            raise SearchConfigError(f"analytic:drawn layout {layout}: could not place region {j} apart from the others")
        halo = round(float(rng.uniform(*HALO_RANGE)), 3)
        out.append((f"d{layout}_{j}_{k}d", bounds, halo))
    return tuple(out)


def region_box(bounds: Mapping[str, tuple[float, float]], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A planted region's bounds as a box (lo, hi) in the full normalised space."""
    lo, hi = -np.ones(len(names)), np.ones(len(names))
    index = {n: i for i, n in enumerate(names)}
    for d, (a, b) in bounds.items():
        lo[index[d]], hi[index[d]] = a, b
    return lo, hi


def planted_boxes(evaluator: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, lo, hi) of each active planted region of an analytic evaluator (anything
    with `regions` of named `bounds` and the space's dimension `names`)."""
    regions = getattr(evaluator, "regions", None)
    if regions is None:
        raise SearchConfigError("this evaluator has no planted regions; use an analytic target (analytic:drawn?layout=N)")
    return [(r.name, *region_box(r.bounds, evaluator.names)) for r in regions]


def parse_layout(opts: dict[str, str], spec: str) -> int:
    """Pop and check the `layout` option of an `analytic:drawn` spec."""
    if "layout" not in opts:
        raise SearchConfigError("analytic:drawn needs ?layout=N (a non-negative integer that seeds the layout)")
    raw = opts.pop("layout")
    try:
        layout = int(raw)
    except ValueError:
        raise SearchConfigError(f"model spec {spec!r}: layout must be a non-negative integer, got {raw!r}") from None
    if layout < 0:
        raise SearchConfigError(f"model spec {spec!r}: layout must be a non-negative integer, got {raw!r}")
    return layout
