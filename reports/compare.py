"""Robustness regression tests: compare run A's failure modes with another model.

- `diff_runs(A, B)`: two finished runs over the same space. Each of A's modes is matched
  against B's modes (box overlap) and against B's own evaluations inside A's box; B's
  modes that match none of A's are new.
- `recheck_comparison(A, result)`: A's modes against fresh samples of another model
  inside each box (`examiner.recheck` runs the model; `examiner recheck` composes the two).

A mode's rate is its confirmed rate where the run has one (fresh samples after the search),
else its verified rate (`reports.rundata.mode_evidence`).

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
from typing import Any, Sequence

import numpy as np

from examiner.search.boxes import box_overlap, wilson_interval
from reports import views
from reports.errors import ReportError
from reports.rundata import RunData, load_run, min_failure_rate, mode_evidence, mode_rate

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
    min_rate = min_failure_rate(a)
    usable_b = b.table.plausible & ~b.table.model_error
    checks = []
    matched_b: set[int] = set()
    for m in a.modes:
        lo, hi = np.asarray(m["lo"]), np.asarray(m["hi"])
        matches = [mb for mb in b.modes if box_overlap(lo, hi, np.asarray(mb["lo"]), np.asarray(mb["hi"])) >= overlap]
        matched_b.update(mb["id"] for mb in matches)
        inside = usable_b & np.all((b.table.u >= lo) & (b.table.u <= hi), axis=1) if len(b.table) else np.zeros(0, bool)
        n_in, k_in = int(inside.sum()), int(b.table.failed[inside].sum()) if len(b.table) else 0
        ev_a = mode_evidence(m)
        check = ModeCheck(m["rank"], m["id"], region_text(a, lo, hi), ev_a["rate"], list(ev_a["interval"]),
                          "not_found", matched=[mb["id"] for mb in matches])
        if matches:
            best = max(matches, key=mode_rate)
            v = mode_evidence(best)
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
        {"rank": mb["rank"], "id": mb["id"], "region": region_text(b, mb["lo"], mb["hi"]), "rate": mode_evidence(mb)["rate"],
         "interval": mode_evidence(mb)["interval"]}
        for mb in b.modes if mb["id"] not in matched_b
    ]
    notes = []
    if a.meta.get("model_spec") == b.meta.get("model_spec"):
        notes.append("both runs name the same model spec")
    return Comparison("diff", str(a.root), str(b.root), checks, new, None, notes)


def recheck_comparison(a: RunData, result: Any, new: Sequence[dict] = (), notes: Sequence[str] = (),
                       fixed_below: float = 0.1) -> Comparison:
    """The comparison for `examiner recheck`: run A's modes against the fresh samples of
    `result` (an `examiner.recheck.RecheckResult` over `a`), plus `new` modes and `notes`
    from a search of the new model (`diff_runs(a, search_out).new`)."""
    by_id = {s.id: s for s in result.modes}
    min_rate = min_failure_rate(a)
    checks = []
    for m in a.modes:
        s = by_id[m["id"]]
        k, n = s.k, s.n
        lo, hi = np.asarray(m["lo"]), np.asarray(m["hi"])
        excluded = getattr(s, "excluded", 0)
        left_out = f" ({excluded} more were no fair test: implausible scenes)" if excluded else ""
        checks.append(ModeCheck(  # no fair sample at all: no evidence of a fix, so still failing
            m["rank"], m["id"], region_text(a, lo, hi), mode_evidence(m)["rate"], list(mode_evidence(m)["interval"]),
            _status(k / n, min_rate, fixed_below) if n else "still_failing", n, k, k / n if n else 1.0,
            list(wilson_interval(k, n)),
            evidence=f"{k} of {n} fresh samples in the box fail on {result.model_spec}{left_out}",
        ))
    return Comparison("recheck", str(a.root), result.model_spec, checks, list(new), result.probe,
                      list(result.notes) + list(notes))
