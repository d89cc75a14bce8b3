"""Failure factors: single conditions under which the model fails more often than over
the space as a whole, confirmed on fresh samples.

A verified mode is a box where the model fails at least `region.min_failure_rate` of fresh
samples. Many real models fail with a probability that rises smoothly with a condition
(how much of the person is cut off, how high the camera is) without reaching that rate in
any box: such a run reports few modes or none, yet the condition is a finding a
researcher can act on. This module finds those conditions and tests them honestly:

1. **Candidates** from the search's own proposals (phase "search", plausible, no model
   error): every dimension cut into `bins` equal slices of its normalised range (a choice
   dimension: one slice per choice). A slice is a candidate when its failure rate's Wilson
   interval lies above the proposals' base rate, with at least `min_count` proposals; the
   best slice of each dimension is kept, and the `top` dimensions by the interval's lower
   end. With `ends_only` (what `examiner peel` asks for) a continuous dimension offers
   only its two end slices: a peel cuts a factor at an end of a dimension or a choice,
   never a slice inside one, so an inner slice would spend a test (and a share of the
   Holm correction) on something the next stage searches again. The proposals lean
   towards what the strategy sought, so these rates only pick what to test.
2. **Confirmation** on fresh samples (drawn whether or not a candidate qualified: the
   reference is also the run's unbiased estimate of how much of the space fails, which
   the search's proposals are not: MARL steers away from regions it has claimed), outside the budget and the log: `samples` scenes
   uniform over the space except that the candidate's dimension is uniform in its slice,
   against `2 * samples` scenes uniform over the whole space (the reference), each from
   its own generator seeded by the run seed. A factor is confirmed when a one-sided
   Fisher exact test (fails more often than the reference) has a Holm-adjusted p-value
   below `alpha`.

Same run seed, same factors: the samples depend only on the seed, the space and which
candidates were picked (itself a function of the log).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from examiner.search.boxes import wilson_interval
from simulator.params import ParamSpace

# SeedSequence tag of the factor samples (the mode confirmation uses 0xC0F1).
_FACTOR_TAG = 0xFAC7


@dataclass(frozen=True)
class Condition:
    """One dimension restricted to [lo, hi] (normalised); `label` says it in words."""

    dim: int
    name: str
    lo: float
    hi: float
    label: str
    k: int  # failing search proposals inside
    n: int  # usable search proposals inside


def condition_label(space: ParamSpace, d: int, lo: float, hi: float) -> str:
    """'camera.elevation 26° to 38°' / 'occluder.kind = box' (normalised [lo, hi])."""
    dim = space.dimensions[d]
    if dim.choices:
        return f"{dim.name} = {dim.to_physical(0.5 * (lo + hi))}"
    return f"{dim.name} {dim.format(dim.to_physical(lo))} to {dim.format(dim.to_physical(hi))}"


def candidates(space: ParamSpace, U: np.ndarray, failed: np.ndarray, bins: int = 5, min_count: int = 20,
               top: int = 4, ends_only: bool = False) -> tuple[list[Condition], float]:
    """(candidate conditions, base rate) from the usable search proposals U / failed;
    ends_only: a continuous dimension's inner slices are not candidates."""
    n = len(failed)
    if n == 0:
        return [], float("nan")
    base = float(np.mean(failed))
    best: list[tuple[float, Condition]] = []
    for d, dim in enumerate(space.dimensions):
        col = U[:, d]
        if dim.choices:
            m = len(dim.choices)
            edges = np.linspace(-1.0, 1.0, m + 1)
        else:
            edges = np.linspace(-1.0, 1.0, bins + 1)
        pick = None
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            if ends_only and not dim.choices and 0 < i < len(edges) - 2:
                continue
            inside = (col >= a) & ((col < b) if i < len(edges) - 2 else (col <= b))
            c = int(inside.sum())
            if c < min_count:
                continue
            k = int(failed[inside].sum())
            lo_ci = wilson_interval(k, c)[0]
            if lo_ci > base and (pick is None or lo_ci > pick[0]):
                pick = (lo_ci, float(a), float(b), k, c)
        if pick is not None:
            lo_ci, a, b, k, c = pick
            best.append((lo_ci, Condition(d, dim.name, a, b, condition_label(space, d, a, b), k, c)))
    best.sort(key=lambda t: -t[0])
    return [c for _, c in best[:top]], base


def factor_samples(space: ParamSpace, seed: int, index: int, n: int, cond: Condition | None,
                   step: int = 0) -> np.ndarray:
    """The fresh samples of candidate `index` (0 = the reference, uniform over the space;
    the reference draws 2n): uniform, with the condition's dimension uniform in its slice.
    step > 0: the samples of the candidate's `step`-th extension slice (`extend`)."""
    key = [int(seed), _FACTOR_TAG, int(index)] + ([int(step)] if step else [])
    rng = np.random.default_rng(np.random.SeedSequence(key))
    U = rng.uniform(-1.0, 1.0, size=(n, space.dim))
    if cond is not None:
        U[:, cond.dim] = rng.uniform(cond.lo, cond.hi, size=n)
    return U


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def tally(scored: Sequence[Any]) -> dict[str, Any]:
    """Fresh samples counted like the search counts them: n usable (plausible, no model
    error), k failing, rate, Wilson interval, median metric, implausible, model errors."""
    usable = [s for s in scored if s.plausible and not s.model_error]
    k = int(sum(bool(s.failed) for s in usable))
    vals = [float(s.value) for s in usable if math.isfinite(float(s.value))]
    n = len(usable)
    return {"n": n, "k": k, "rate": (k / n) if n else None, "interval": list(wilson_interval(k, n)),
            "median": float(np.median(vals)) if vals else None,
            "implausible": sum(not s.plausible for s in scored), "model_errors": count_model_errors(scored)}


def count_model_errors(scored: Sequence[Any]) -> int:
    """Model errors among plausible scenes. An implausible scene often has no metric at all
    (e.g. under sim.joints=visible, too few joints in view to score), which the scorer
    marks unusable like a model error; it is counted once, as implausible, not as a crash."""
    return int(sum(bool(s.model_error) and bool(s.plausible) for s in scored))


def _greater(t: dict, ref: dict) -> float:
    """One-sided Fisher exact p-value that `t` fails more often than `ref` (tallies)."""
    from scipy.stats import fisher_exact

    if not t["n"] or not ref["n"]:
        return 1.0
    return float(fisher_exact([[t["k"], t["n"] - t["k"]], [ref["k"], ref["n"] - ref["k"]]],
                              alternative="greater").pvalue)


def _end(lo: float, hi: float) -> int:
    """+1 / -1: the slice [lo, hi] lies at the top / bottom end of a normalised range; 0: neither."""
    top, bottom = hi >= 1.0 - 1e-9, lo <= -1.0 + 1e-9
    return 0 if top == bottom else (1 if top else -1)


def extend(factors: list[dict], conds: Sequence[Condition], evaluate_scored, space: ParamSpace, seed: int,
           samples: int, ref_U: np.ndarray, ref_scored: Sequence[Any], steps: int, alpha: float = 0.05) -> None:
    """How far a confirmed factor at one end of a continuous dimension reaches inwards
    (in place: `extended` on each such factor). A model that fails gradually with a
    condition (the more of the person is cut off, the more often) has its confirmed slice
    at the end (truncation 0.28 to 0.35), but fails more often than elsewhere well inside.
    The next slice of the same width further in is drawn (`samples` fresh scenes, the rest
    uniform) and tested against the reference scenes outside what is reached so far (one-
    sided Fisher exact): the factor grows by the slice when it fails more often, and the
    next slice is tried, up to `steps`; the first slice that does not stops it. Each
    factor's slices are a fixed sequence (tested in their order, stopping at the first
    that fails: the sequence keeps the family-wise error at its level), and the factors
    extended share `alpha` (Bonferroni). All chains' next slices are evaluated in one batch."""
    chains = [(f, c, _end(c.lo, c.hi)) for f, c in zip(factors, conds)
              if f["confirmed"] and not space.dimensions[c.dim].choices and _end(c.lo, c.hi)]
    if not chains or steps < 1:
        return
    level = alpha / len(chains)
    for f, c, end in chains:
        f["extended"] = {"lo_u": c.lo, "hi_u": c.hi, "label": c.label, "alpha": level, "steps": []}
    live = list(chains)
    for step in range(1, steps + 1):
        todo = []
        for f, c, end in live:
            ext = f["extended"]
            width = c.hi - c.lo
            lo, hi = (ext["lo_u"] - width, ext["lo_u"]) if end > 0 else (ext["hi_u"], ext["hi_u"] + width)
            if lo < -1.0 + 1e-9 or hi > 1.0 - 1e-9:  # the slice would reach the other end
                continue
            sl = Condition(c.dim, c.name, lo, hi, condition_label(space, c.dim, lo, hi), 0, 0)
            todo.append((f, c, end, sl))
        if not todo:
            return
        blocks = [factor_samples(space, seed, int(f["index"]), samples, sl, step) for f, _, _, sl in todo]
        scored = evaluate_scored(np.concatenate(blocks))
        live = []
        for i, (f, c, end, sl) in enumerate(todo):
            ext = f["extended"]
            t = tally(scored[i * samples:(i + 1) * samples])
            col = ref_U[:, c.dim]
            outside = (col < ext["lo_u"]) if end > 0 else (col > ext["hi_u"])
            rest = tally([s for s, o in zip(ref_scored, outside) if o])
            p = _greater(t, rest)
            grows = p < level
            ext["steps"].append({"lo_u": sl.lo, "hi_u": sl.hi, "label": sl.label, "fresh": t, "rest": rest,
                                 "p_value": p, "confirmed": grows})
            if grows:
                ext["lo_u"], ext["hi_u"] = min(ext["lo_u"], sl.lo), max(ext["hi_u"], sl.hi)
                ext["label"] = condition_label(space, c.dim, ext["lo_u"], ext["hi_u"])
                live.append((f, c, end))
        if not live:
            return


def confirm(conds: Sequence[Condition], evaluate_scored, space: ParamSpace, seed: int, samples: int,
            base_rate: float, alpha: float = 0.05, extend_steps: int = 0) -> dict[str, Any]:
    """Evaluate every candidate's fresh samples and the reference in one batch; return the
    `factors` record of summary.json. `evaluate_scored(U) -> list[Scored]`.
    extend_steps > 0: how far each confirmed factor at an end of a dimension reaches
    inwards (`extend`)."""
    blocks = [factor_samples(space, seed, 0, 2 * samples, None)]
    blocks += [factor_samples(space, seed, i + 1, samples, c) for i, c in enumerate(conds)]
    scored = evaluate_scored(np.concatenate(blocks))
    ref = tally(scored[: 2 * samples])
    out = []
    start = 2 * samples
    for i, c in enumerate(conds):
        t = tally(scored[start + i * samples: start + (i + 1) * samples])
        p = _greater(t, ref)
        ratio = (t["rate"] / ref["rate"]) if t["rate"] is not None and ref["rate"] else None
        out.append({"dimension": c.name, "lo_u": c.lo, "hi_u": c.hi, "label": c.label,
                    "proposals": {"k": c.k, "n": c.n, "rate": c.k / c.n},
                    "fresh": t, "rate_ratio": ratio, "p_value": p, "index": i + 1})
    for f, p_adj in zip(out, holm([f["p_value"] for f in out])):
        f["p_adjusted"] = p_adj
        f["confirmed"] = bool(p_adj < alpha)
    if extend_steps:
        extend(out, conds, evaluate_scored, space, seed, samples, blocks[0], scored[: 2 * samples], extend_steps, alpha)
    return {"samples": samples, "reference_samples": 2 * samples, "alpha": alpha, "test": "one-sided Fisher exact, Holm",
            "base_rate_proposals": base_rate, "reference": ref, "factors": out,
            "seed": {"root": seed, "tag": _FACTOR_TAG, "method": "SeedSequence([seed, tag, index]); index 0 = reference"}}
