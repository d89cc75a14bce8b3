"""A run as the reports see it: metadata, evaluations, failure modes worst first, and the
run-level numbers (failure rate with interval, model errors, wall time)."""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from examiner.search.boxes import wilson_interval
from examiner.store import MODES_FILE, SUMMARY_FILE, EvaluationTable, RunStore, StoreError, check_modes
from reports.errors import ReportError
from simulator.errors import ParamError
from simulator.params import ParamSpace


@dataclass
class RunData:
    """root: the run directory; meta: meta.json; space: the searched ParamSpace;
    table: all evaluations; modes: failure modes, worst first, each with "rank" (1 = worst);
    summary: summary.json or None (unfinished run); values: (N,) the failure metric."""

    root: Path
    meta: dict
    space: ParamSpace
    table: EvaluationTable
    modes: list[dict]
    summary: dict | None
    values: np.ndarray
    _by_u: dict[bytes, int] = field(default_factory=dict, repr=False)

    @property
    def metric(self) -> str:
        return str(self.meta.get("metric") or "error")

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold") or 0.0)

    @property
    def model_spec(self) -> str:
        return str(self.meta.get("model_spec") or "(not recorded)")

    def record_for(self, u: Any) -> dict | None:
        """The logged evaluation of exactly this vector (mode examples are logged
        verification samples), or None."""
        if not self._by_u:
            self._by_u = {np.asarray(r["u"], np.float64).tobytes(): i for i, r in enumerate(self.table.records)}
        i = self._by_u.get(np.asarray(u, np.float64).tobytes())
        return None if i is None else self.table.records[i]


def mode_evidence(mode: dict) -> dict:
    """The mode's failure-rate record ({n, k, rate, interval}): the confirmation samples
    drawn after the search when the run has them (unbiased), else the verification round
    that accepted it."""
    c = mode.get("confirmed") or {}
    return c if c.get("rate") is not None else mode["verified"]


def mode_rate(mode: dict) -> float:
    """`mode_evidence`'s rate (0 when there is none)."""
    rate = mode_evidence(mode)["rate"]
    return float(rate) if rate is not None else 0.0


def mode_sort_key(mode: dict) -> tuple:
    """Worst first: highest failure rate (`mode_rate`), then highest median error, then
    the largest box."""
    q = (mode.get("errors") or {}).get("quantiles") or {}
    med = q.get("0.5")
    return (
        -mode_rate(mode),
        -(float(med) if med is not None else -math.inf),
        -float(mode.get("volume_fraction") or 0.0),
        int(mode["id"]),
    )


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory (see docs/run_store.md); raise ReportError with a one-line
    reason when it is not a readable run."""
    root = Path(run_dir)
    try:
        store = RunStore.open(root)
        table = store.evaluations()
        modes = store.modes()
        summary = store.summary()
    except StoreError as e:
        raise ReportError(str(e)) from None
    meta = store.metadata
    try:
        space = ParamSpace.from_dict(meta["space"])
    except (KeyError, TypeError, ValueError, AttributeError, ParamError) as e:
        raise ReportError(f"{root}/meta.json has no usable parameter space ({e}); the run directory is damaged") from None
    try:
        check_modes(modes, space.dim, root / MODES_FILE)
    except StoreError as e:
        raise ReportError(str(e)) from None
    if len(table) and table.u.shape[1] != space.dim:
        raise ReportError(f"{root}: the logged vectors have {table.u.shape[1]} dimensions, the run's space "
                          f"{space.dim}; the run directory is damaged")
    for key in ("metric", "threshold"):
        bad = meta.get(key) is not None and not isinstance(meta[key], str if key == "metric" else (int, float))
        if bad or isinstance(meta.get(key), bool):
            raise ReportError(f"{root}/meta.json: {key!r} has the wrong type ({type(meta[key]).__name__}); "
                              "the run directory is damaged")
    modes = sorted(modes, key=mode_sort_key)
    for rank, m in enumerate(modes, 1):
        m["rank"] = rank
    metric = meta.get("metric")
    values = table.metrics.get(metric, table.error) if metric else table.error
    if len(values) != len(table):
        values = np.full(len(table), np.nan)
    return RunData(root, meta, space, table, modes, summary, np.asarray(values, np.float64))


def incomplete_reason(run: RunData) -> str | None:
    """Why the run is not a finished, consistent run a CI gate may judge, or None.
    Unfinished (no summary.json, or a status other than complete), modes.json missing,
    or an evaluation count that disagrees with summary.json."""
    s = run.summary
    if s is None:
        return f"{run.root} has no {SUMMARY_FILE} (the run is unfinished or was killed; resume it)"
    if s.get("status") != "complete":
        return f"{run.root}/{SUMMARY_FILE} says status {s.get('status')!r}, not 'complete'"
    if not (run.root / MODES_FILE).is_file():
        return f"{run.root} has no {MODES_FILE} (the failure modes are missing)"
    if s.get("evaluations") != len(run.table):
        return (f"{run.root}/{SUMMARY_FILE} counts {s.get('evaluations')!r} evaluations but the log holds "
                f"{len(run.table)}")
    return None


def wall_time_s(run: RunData) -> tuple[float | None, bool]:
    """(seconds, exact). Exact when summary.json records elapsed_s; otherwise the time
    from meta.json's `created` to summary.json's modification (approximate), or None."""
    s = run.summary or {}
    if s.get("elapsed_s") is not None:
        return float(s["elapsed_s"]), True
    created = run.meta.get("created")
    path = run.root / SUMMARY_FILE
    if not created or not path.exists():
        return None, False
    try:
        t0 = _dt.datetime.fromisoformat(created).timestamp()
    except ValueError:
        return None, False
    return max(path.stat().st_mtime - t0, 0.0), False


def _quantiles(v: np.ndarray) -> dict[str, float | None]:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "p10": None, "median": None, "p90": None, "max": None}
    return {
        "mean": float(v.mean()), "p10": float(np.quantile(v, 0.1)), "median": float(np.median(v)),
        "p90": float(np.quantile(v, 0.9)), "max": float(v.max()),
    }


def min_failure_rate(run: RunData) -> float:
    """The run's acceptance standard for a mode (`region.min_failure_rate`)."""
    return float(((run.meta.get("config") or {}).get("region") or {}).get("min_failure_rate", 0.8))


def run_stats(run: RunData) -> dict[str, Any]:
    """Run-level numbers. failure_rate is measured on the strategy's own proposals
    (phase "search", plausible, no model error): for the random strategy an unbiased
    estimate of the failing fraction of the space; for guided strategies it is biased,
    either way (MARL steers away from the regions it has claimed: on MediaPipe in the
    default space 21% of its proposals fail against 46% of uniform scenes). Region-growing
    evaluations (probe / bisect / verify) are excluded: they sample inside candidate
    failure boxes on purpose. space_failure_rate: the uniform fresh samples drawn after
    the search (summary.json factors.reference), the unbiased estimate; None without."""
    t = run.table
    n = len(t)
    usable = t.plausible & ~t.model_error
    search = (t.phase == "search") & usable if n else np.zeros(0, bool)
    basis = "search"
    if not search.any():
        search, basis = usable, "all"
    k, m = int(t.failed[search].sum()), int(search.sum())
    lo, hi = wilson_interval(k, m) if m else (0.0, 1.0)
    ref = ((run.summary or {}).get("factors") or {}).get("reference") or {}
    space_rate = ({"k": ref["k"], "n": ref["n"], "rate": ref["rate"], "interval": ref["interval"], "basis": "uniform"}
                  if ref.get("n") else None)
    messages = Counter(str(r.get("model_error_message") or "unknown") for r, e in zip(t.records, t.model_error) if e)
    modes = run.modes
    wall, exact = wall_time_s(run)
    return {
        "evaluations": n,
        "budget": (run.summary or {}).get("budget", run.meta.get("config", {}).get("budget")),
        "status": (run.summary or {}).get("status", "unfinished"),
        "failures": int(t.failed.sum()),
        "failure_rate": {"k": k, "n": m, "rate": (k / m) if m else None, "interval": [lo, hi], "basis": basis},
        "space_failure_rate": space_rate,
        "model_errors": int(t.model_error.sum()),
        "model_error_rate": float(t.model_error.mean()) if n else 0.0,
        "model_error_messages": messages.most_common(5),
        "missed": sum(bool(r.get("missed")) for r in t.records),
        "implausible": int((~t.plausible).sum()),
        # of those, scenes left unscored by sim.joints (too few joints in view)
        "unscored": sum(bool(r.get("unscored")) for r in t.records),
        "phases": dict(Counter(t.phase.tolist())),
        "error": _quantiles(run.values[usable]) if n else _quantiles(np.zeros(0)),
        "modes": len(modes),
        "reliable_modes": sum(mode_rate(x) >= min_failure_rate(run) for x in modes),
        "worst_mode_rate": max((mode_rate(x) for x in modes), default=0.0),
        "failure_volume": min(sum(float(x.get("volume_fraction") or 0.0) for x in modes), 1.0),
        "wall_time_s": wall,
        "wall_time_exact": exact,
    }
