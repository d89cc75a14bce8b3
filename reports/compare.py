"""Robustness regression tests: compare run A's failure modes with another model.

- `diff_runs(A, B)`: two finished runs over the same space. Each of A's modes is matched
  against B's modes (box overlap) and against B's own evaluations inside A's box; B's
  modes that match none of A's are new.
- `recheck_run(A, model_spec)`: re-evaluate each of A's modes on another model with fresh
  uniform samples inside its box, probe the whole space for failures that are new (fail
  on B, pass on A), and optionally run a full search on B and diff it with A.

Status of one of A's modes on B (`rate` = B's failing fraction of the samples):
  still_failing  rate >= A's acceptance level (`region.min_failure_rate`, default 0.8)
  fixed          rate <= fixed_below (default 0.1)
  improved       in between
  not_found      (diff only) B has no overlapping mode and fewer than `min_evidence` of
                 its evaluations inside the box: fixed, or missed by B's search
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from examiner.search.regions import box_overlap, wilson_interval
from reports import views
from reports.errors import ReportError
from reports.rundata import RunData, load_run
from simulator.errors import PoseExaminerError

STATUSES = ("still_failing", "improved", "fixed", "not_found")


@dataclass
class ModeCheck:
    """One of run A's modes on B. rate_b / interval_b: B's failing fraction of `n_b`
    samples in the box (None when not measured); matched: ids of B's overlapping modes."""

    rank: int
    id: int
    region: str
    rate_a: float
    interval_a: list[float]
    status: str
    n_b: int = 0
    k_b: int = 0
    rate_b: float | None = None
    interval_b: list[float] | None = None
    matched: list[int] = field(default_factory=list)
    evidence: str = ""


@dataclass
class Comparison:
    """kind: diff | recheck; a: run A's directory; b: run B's directory or the model spec;
    modes: one ModeCheck per mode of A (A's order, worst first); new: new failure modes
    (diff, or recheck with a search) as dicts; probe: new failures found by probing the
    whole space (recheck), or None; notes: caveats in words."""

    kind: str
    a: str
    b: str
    modes: list[ModeCheck]
    new: list[dict] = field(default_factory=list)
    probe: dict | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = {s: sum(1 for m in self.modes if m.status == s) for s in STATUSES}
        c["modes"] = len(self.modes)
        c["new"] = len(self.new) + (int(self.probe["new_failures"]) if self.probe else 0)
        return c

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "poseexaminer-comparison", "schema_version": 1, "kind": self.kind, "a": self.a, "b": self.b,
            "counts": self.counts(), "modes": [asdict(m) for m in self.modes], "new": self.new,
            "probe": self.probe, "notes": self.notes,
        }


def _status(rate: float, min_rate: float, fixed_below: float) -> str:
    if rate >= min_rate:
        return "still_failing"
    if rate <= fixed_below:
        return "fixed"
    return "improved"


def region_text(run: RunData, lo: Sequence[float], hi: Sequence[float], limit: int = 4) -> str:
    """The constrained dimensions of a box in physical units, narrowest first."""
    rows = []
    for i, dim in enumerate(run.space.dimensions):
        a, b = float(lo[i]), float(hi[i])
        if a > -1.0 + 1e-9 or b < 1.0 - 1e-9:
            rows.append(((b - a), f"{dim.name} {views.box_text(dim, a, b)}"))
    rows.sort()
    text = ", ".join(r for _, r in rows[:limit])
    return text + (f" (+{len(rows) - limit} more)" if len(rows) > limit else "") if rows else "whole space"


def _min_rate(run: RunData) -> float:
    return float(((run.meta.get("config") or {}).get("region") or {}).get("min_failure_rate", 0.8))


def _check_same_space(a: RunData, b: RunData) -> None:
    da, db = a.meta["space"]["dimensions"], b.meta["space"]["dimensions"]
    if [d["name"] for d in da] != [d["name"] for d in db]:
        raise ReportError(f"runs {a.root} and {b.root} searched different dimensions; compare runs over the same --space")
    for x, y in zip(da, db):
        if (x.get("low"), x.get("high"), x.get("choices")) != (y.get("low"), y.get("high"), y.get("choices")):
            raise ReportError(f"runs {a.root} and {b.root} use different bounds for {x['name']}; compare runs over the same space")


def diff_runs(run_a: str | Path, run_b: str | Path, overlap: float = 0.25, fixed_below: float = 0.1,
              min_evidence: int = 10) -> Comparison:
    """Compare two runs over the same space (see module docstring)."""
    if not (isinstance(overlap, (int, float)) and math.isfinite(overlap) and 0.0 < overlap <= 1.0):
        raise ReportError(f"--overlap must be a fraction in (0, 1], got {overlap}")
    a, b = load_run(run_a), load_run(run_b)
    _check_same_space(a, b)
    if a.metric != b.metric or not math.isclose(a.threshold, b.threshold):
        note = (f"the runs define failure differently (A: {a.metric} > {a.threshold:g}, "
                f"B: {b.metric} > {b.threshold:g})")
        raise ReportError(note + "; compare runs with the same --metric and --threshold")
    min_rate = _min_rate(a)
    usable_b = b.table.plausible & ~b.table.model_error
    checks = []
    matched_b: set[int] = set()
    for m in a.modes:
        lo, hi = np.asarray(m["lo"]), np.asarray(m["hi"])
        matches = [mb for mb in b.modes if box_overlap(lo, hi, np.asarray(mb["lo"]), np.asarray(mb["hi"])) >= overlap]
        matched_b.update(mb["id"] for mb in matches)
        inside = usable_b & np.all((b.table.u >= lo) & (b.table.u <= hi), axis=1) if len(b.table) else np.zeros(0, bool)
        n_in, k_in = int(inside.sum()), int(b.table.failed[inside].sum()) if len(b.table) else 0
        check = ModeCheck(m["rank"], m["id"], region_text(a, lo, hi), m["verified"]["rate"], list(m["verified"]["interval"]),
                          "not_found", matched=[mb["id"] for mb in matches])
        if matches:
            best = max(matches, key=lambda mb: mb["verified"]["rate"])
            v = best["verified"]
            check.n_b, check.k_b, check.rate_b, check.interval_b = v["n"], v["k"], v["rate"], list(v["interval"])
            check.status = _status(v["rate"], min_rate, fixed_below)
            check.evidence = f"B's mode {best['rank']} overlaps it"
        elif n_in >= min_evidence:
            check.n_b, check.k_b, check.rate_b = n_in, k_in, k_in / n_in
            check.interval_b = list(wilson_interval(k_in, n_in))
            check.status = _status(k_in / n_in, min_rate, fixed_below)
            check.evidence = f"{k_in} of B's {n_in} evaluations inside the box fail"
        else:
            check.evidence = f"B has no overlapping mode and only {n_in} evaluations inside the box; recheck to verify"
        checks.append(check)
    new = [
        {"rank": mb["rank"], "id": mb["id"], "region": region_text(b, mb["lo"], mb["hi"]), "rate": mb["verified"]["rate"],
         "interval": mb["verified"]["interval"]}
        for mb in b.modes if mb["id"] not in matched_b
    ]
    notes = []
    if a.meta.get("model_spec") == b.meta.get("model_spec"):
        notes.append("both runs name the same model spec")
    return Comparison("diff", str(a.root), str(b.root), checks, new, None, notes)


def _evaluate(evaluator: Any, U: np.ndarray, metric: str, threshold: float, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(failed (N,), value (N,)) with the search's definition of failure."""
    from examiner.search.evaluator import check_outcomes
    from examiner.search.session import judge

    failed, values = [], []
    for i in range(0, len(U), batch):
        chunk = U[i:i + batch]
        for o in check_outcomes(evaluator.evaluate(chunk), len(chunk)):
            v = float("nan") if o.model_error or o.missed else float(o.metrics.get(metric, o.error))
            values.append(v)
            failed.append(judge(o, v, threshold)[1])
    return np.array(failed, bool), np.array(values, float)


def recheck_run(
    run_a: str | Path,
    model_spec: str,
    samples: int = 40,
    probe: int = 200,
    seed: int = 0,
    fixed_below: float = 0.1,
    search_budget: int = 0,
    search_out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    model_a: str | None = None,
) -> Comparison:
    """Re-evaluate run A's failure modes on `model_spec` (see module docstring).

    samples: fresh uniform samples per mode box; probe: uniform samples over the whole
    space looking for new failures (0 = none); search_budget > 0 runs a full search on
    the new model into `search_out` with run A's configuration and diffs it with A.
    model_a: run A's model for the probe. Without it, the model named in A's meta.json is
    used only when it is a built-in (`safe_from_a_run`): a run directory someone sent
    never gets a command, module or file of its choosing started."""
    from examiner.search.evaluator import build_evaluator, safe_from_a_run

    say = progress or (lambda _m: None)
    if samples < 1:
        raise ReportError("--samples must be at least 1")
    if probe < 0:
        raise ReportError(f"--probe must be 0 or more, got {probe}")
    if search_budget < 0:
        raise ReportError(f"--search-budget must be 0 (no search) or a positive number of evaluations, got {search_budget}")
    if seed < 0:
        raise ReportError(f"--seed must be a non-negative integer, got {seed}")
    if search_budget > 0 and search_out is None:
        raise ReportError("--search-budget needs --search-out DIR for the new run")
    a = load_run(run_a)
    ev_b = build_evaluator(model_spec, a.space, a.threshold, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xEC4E]))
    min_rate = _min_rate(a)
    checks = []
    try:
        for m in a.modes:
            say(f"mode {m['rank']}")
            lo, hi = np.asarray(m["lo"]), np.asarray(m["hi"])
            U = rng.uniform(lo, hi, size=(samples, a.space.dim))
            failed, _ = _evaluate(ev_b, U, a.metric, a.threshold)
            k, n = int(failed.sum()), len(failed)
            checks.append(ModeCheck(
                m["rank"], m["id"], region_text(a, lo, hi), m["verified"]["rate"], list(m["verified"]["interval"]),
                _status(k / n, min_rate, fixed_below), n, k, k / n, list(wilson_interval(k, n)),
                evidence=f"{k} of {n} fresh samples in the box fail on {model_spec}",
            ))
        probe_result = None
        notes: list[str] = []
        if probe > 0:
            say("probing the whole space")
            U = a.space.sample(rng, probe)
            fb, _ = _evaluate(ev_b, U, a.metric, a.threshold)
            outside = np.ones(len(U), bool)
            for m in a.modes:
                outside &= ~np.all((U >= np.asarray(m["lo"])) & (U <= np.asarray(m["hi"])), axis=1)
            fa = None
            spec_a = model_a or a.meta.get("model_spec")
            if spec_a and not model_a and not (isinstance(spec_a, str) and safe_from_a_run(spec_a)):
                notes.append(f"run A names the model {spec_a!r}, which is not started from a run directory; pass "
                             "--model-a to compare the probe with it; new failures are those outside A's modes")
                spec_a = None
            if spec_a:
                try:
                    ev_a = build_evaluator(spec_a, a.space, a.threshold, int((a.meta.get("seeds") or {}).get("root", 0)))
                    fa, _ = _evaluate(ev_a, U, a.metric, a.threshold)
                    _close(ev_a)
                except PoseExaminerError as e:
                    notes.append(f"run A's model {spec_a!r} could not be re-evaluated ({e}); new failures are "
                                 "those outside A's modes")
            new_mask = fb & outside & (~fa if fa is not None else True)
            k = int(new_mask.sum())
            probe_result = {
                "n": int(len(U)), "failures_b": int(fb.sum()), "outside_a_modes": int(outside.sum()),
                "new_failures": k, "rate": k / len(U), "interval": list(wilson_interval(k, len(U))),
                "compared_with_a": fa is not None,
                "examples": [{"u": U[i].tolist()} for i in np.flatnonzero(new_mask)[:5]],
            }
    finally:
        _close(ev_b)
    new: list[dict] = []
    if search_budget > 0:
        new, run_notes = _search_and_diff(a, model_spec, search_budget, Path(search_out), say)  # type: ignore[arg-type]
        notes += run_notes
    return Comparison("recheck", str(a.root), model_spec, checks, new, probe_result, notes)


def _close(ev: Any) -> None:
    close = getattr(ev, "close", None)
    if callable(close):
        close()


def _search_and_diff(a: RunData, model_spec: str, budget: int, out: Path, say) -> tuple[list[dict], list[str]]:
    import dataclasses

    from examiner.search.backends import make_evaluator
    from examiner.search.config import SearchConfig
    from examiner.search.evaluator import EvaluatorFactory
    from examiner.search.runner import run_search

    say(f"searching {model_spec} ({budget} evaluations)")
    cfg = dataclasses.replace(SearchConfig.from_dict(a.meta["config"], source=f"{a.root}/meta.json"), budget=budget).validate()
    factory = EvaluatorFactory(model_spec, a.space.to_dict(), cfg.failure_threshold, cfg.seed)
    evaluator = make_evaluator(factory, cfg.backend, cfg.workers)
    run_search(cfg, evaluator, a.space, out, model_spec=model_spec)
    d = diff_runs(a.root, out)
    return d.new, [f"new modes come from a {budget}-evaluation search of {model_spec} in {out}"]
