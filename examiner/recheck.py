"""Re-evaluate a finished run's failure modes on another model (the computation behind
`examiner recheck`; `reports.compare` turns the result into a comparison).

- `recheck_modes(run, model_spec)`: fresh uniform samples inside each of the run's mode
  boxes, judged with the search's definition of failure, and optionally a probe of the
  whole space for failures that are new (fail on the new model, pass on run A's).
- `search_model(run, model_spec, budget, out)`: a full search of the new model with the
  run's configuration, into a new run directory.

`run` is any object with `root`, `meta`, `space` (ParamSpace), `modes` (dicts with `lo`,
`hi`, `rank`, `id`), `metric` and `threshold`, e.g. `reports.rundata.RunData`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from examiner.search.boxes import wilson_interval
from simulator.errors import PoseExaminerError


class RecheckError(PoseExaminerError):
    """A recheck option is out of range."""


@dataclass
class ModeSamples:
    """k of n fresh samples inside the box of run A's mode `id` fail on the new model, n
    counting the fair tests only, as the search's verification does: `excluded` samples
    were not plausible scenes (a self-penetrating body, or too few joints in view for the
    run's sim.joints); median: the median of the run's metric over the counted samples the
    model answered (None when it answered none)."""

    id: int
    k: int
    n: int
    median: float | None = None
    excluded: int = 0

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None


@dataclass
class RecheckResult:
    """modes: one ModeSamples per mode of run A (A's order); probe: the whole-space probe
    as a dict (see `recheck_modes`), or None; notes: caveats in words."""

    model_spec: str
    modes: list[ModeSamples]
    probe: dict | None = None
    notes: list[str] = field(default_factory=list)


def check_recheck_options(samples: int, probe: int, seed: int, search_budget: int = 0,
                          search_out: str | Path | None = None) -> None:
    if samples < 1:
        raise RecheckError("--samples must be at least 1")
    if probe < 0:
        raise RecheckError(f"--probe must be 0 or more, got {probe}")
    if search_budget < 0:
        raise RecheckError(f"--search-budget must be 0 (no search) or a positive number of evaluations, got {search_budget}")
    if seed < 0:
        raise RecheckError(f"--seed must be a non-negative integer, got {seed}")
    if search_budget > 0 and search_out is None:
        raise RecheckError("--search-budget needs --search-out DIR for the new run")


def evaluate_failures(evaluator: Any, U: np.ndarray, metric: str, threshold: float,
                      batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(failed (N,) bool, value (N,) float) of the rows of U (N, D) in [-1, 1], with the
    search's definition of failure."""
    failed, values, _ = evaluate_samples(evaluator, U, metric, threshold, batch)
    return failed, values


def evaluate_samples(evaluator: Any, U: np.ndarray, metric: str, threshold: float,
                     batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`evaluate_failures` plus plausible (N,) bool: the scenes that are a fair test (the
    search leaves the others out of every rate)."""
    from examiner.search.outcome import check_outcomes
    from examiner.search.scorer import judge

    failed, values, plausible = [], [], []
    for i in range(0, len(U), batch):
        chunk = U[i:i + batch]
        for o in check_outcomes(evaluator.evaluate(chunk), len(chunk)):
            v = float("nan") if o.model_error or o.missed else float(o.metrics.get(metric, o.error))
            values.append(v)
            failed.append(judge(o, v, threshold)[1])
            plausible.append(bool(o.plausible))
    return np.array(failed, bool), np.array(values, float), np.array(plausible, bool)


def _close(ev: Any) -> None:
    close = getattr(ev, "close", None)
    if callable(close):
        close()


def recheck_modes(
    run: Any,
    model_spec: str,
    samples: int = 40,
    probe: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    model_a: str | None = None,
) -> RecheckResult:
    """Evaluate `samples` fresh uniform samples inside each of the run's mode boxes on
    `model_spec`, then (probe > 0) `probe` uniform samples over the whole space.

    The probe dict: n, failures_b, outside_a_modes, new_failures (fail on the new model,
    outside A's modes and, when run A's model could be re-evaluated, passing on it),
    rate, interval, compared_with_a, examples (up to 5 `{"u": [...]}`).
    model_a: run A's model for the probe. Without it, the model named in A's meta.json is
    used only when it is a built-in (`safe_from_a_run`): a run directory someone sent
    never gets a command, module or file of its choosing started."""
    from examiner.search.factory import build_evaluator, safe_from_a_run

    check_recheck_options(samples, probe, seed)
    say = progress or (lambda _m: None)
    ev_b = build_evaluator(model_spec, run.space, run.threshold, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xEC4E]))
    modes: list[ModeSamples] = []
    notes: list[str] = []
    probe_result = None
    try:
        for m in run.modes:
            say(f"mode {m['rank']}")
            lo, hi = np.asarray(m["lo"]), np.asarray(m["hi"])
            U = rng.uniform(lo, hi, size=(samples, run.space.dim))
            failed, values, fair = evaluate_samples(ev_b, U, run.metric, run.threshold)
            counted = values[fair]
            med = float(np.nanmedian(counted)) if np.isfinite(counted).any() else None
            modes.append(ModeSamples(m["id"], int(failed[fair].sum()), int(fair.sum()), med, int((~fair).sum())))
        if probe > 0:
            say("probing the whole space")
            U = run.space.sample(rng, probe)
            fb, _ = evaluate_failures(ev_b, U, run.metric, run.threshold)
            outside = np.ones(len(U), bool)
            for m in run.modes:
                outside &= ~np.all((U >= np.asarray(m["lo"])) & (U <= np.asarray(m["hi"])), axis=1)
            fa = None
            spec_a = model_a or run.meta.get("model_spec")
            if spec_a and not model_a and not (isinstance(spec_a, str) and safe_from_a_run(spec_a)):
                notes.append(f"run A names the model {spec_a!r}, which is not started from a run directory; pass "
                             "--model-a to compare the probe with it; new failures are those outside A's modes")
                spec_a = None
            if spec_a:
                try:
                    ev_a = build_evaluator(spec_a, run.space, run.threshold, int((run.meta.get("seeds") or {}).get("root", 0)))
                    fa, _ = evaluate_failures(ev_a, U, run.metric, run.threshold)
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
    return RecheckResult(model_spec, modes, probe_result, notes)


def search_model(run: Any, model_spec: str, budget: int, out: str | Path,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Search `model_spec` for `budget` evaluations with run A's configuration and space,
    into the new run directory `out`; returns `out`."""
    from examiner.search.backends import make_evaluator
    from examiner.search.config import SearchConfig
    from examiner.search.factory import EvaluatorFactory
    from examiner.search.runner import run_search

    (progress or (lambda _m: None))(f"searching {model_spec} ({budget} evaluations)")
    cfg = dataclasses.replace(SearchConfig.from_dict(run.meta["config"], source=f"{run.root}/meta.json"),
                              budget=budget).validate()
    factory = EvaluatorFactory(model_spec, run.space.to_dict(), cfg.failure_threshold, cfg.seed, cfg.metric)
    evaluator = make_evaluator(factory, cfg.backend, cfg.workers)
    run_search(cfg, evaluator, run.space, Path(out), model_spec=model_spec)
    return Path(out)
