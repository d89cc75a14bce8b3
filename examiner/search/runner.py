"""`run_search`: one search run from config to failure modes, resumable after a kill."""

from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from examiner.search.boxes import wilson_interval
from examiner.search.config import SearchConfig
from examiner.search.errors import ResumeError
from examiner.search.outcome import Evaluator, check_outcomes
from examiner.search.records import normalise
from examiner.search.rng import isolated_global_rng
from examiner.search.events import ProgressEvent
from examiner.search.session import SearchSession
from examiner.search.strategies import get_strategy
from examiner.store import RunStore, StoreError
from simulator.params import ParamSpace

# Config fields a resume may change: they affect where and how fast evaluations run,
# never which points are evaluated. The budget may change only once a run has finished
# (to extend it): near the end of a budget, which jobs start depends on what is left, so
# an interrupted run must finish on its own budget for its replay to match.
RESUMABLE_CHANGES = ("backend", "workers")


@dataclass
class SearchResult:
    out_dir: Path
    evaluations: int
    budget: int
    modes: list[dict]
    failures: int
    jobs: list[dict]
    elapsed_s: float
    resumed_from: int | None
    search_failure_rate: float | None = None


# Layout of the pickled session and strategy state in checkpoints; bump it when the
# classes whose state is pickled (jobs, archives, strategies) change their fields.
# 3: region jobs and modes track implausible verification samples; 4: group-probe edges;
# 5: regions.py and the session split into modules (the pickled classes moved; a
# checkpoint naming the old modules does not load and the log replays from the start);
# 6: the MARL observation grew (env.OBS_VERSION 2: claim map and four more statistics).
# 7: log-fitted growth (growth_log.LogGrowth jobs; the session's evaluation log is rebuilt
# from the records up to the checkpoint, not pickled). 8: early verification (a round's
# samples drawn at once). 9: jobs pool their verification samples (the "peel" shrink).
# 10: the session counts the usable (plausible, no model error) search proposals.
STATE_VERSION = 10


def _versions() -> dict[str, str]:
    from simulator.batch import package_versions

    return package_versions(("poseexaminer", "numpy", "torch", "gymnasium", "stable-baselines3", "cma", "scipy"))


def _seeds(config: SearchConfig):
    root = np.random.SeedSequence(config.seed)
    session_seq, strategy_seq, agents_seq = root.spawn(3)
    agent_seqs = agents_seq.spawn(config.agents)
    record = {
        "root": config.seed,
        "session": list(session_seq.spawn_key),
        "strategy": list(strategy_seq.spawn_key),
        "agents": [list(s.spawn_key) for s in agent_seqs],
        "method": "numpy.random.SeedSequence(seed).spawn: session, strategy, agents(K)",
    }
    return session_seq, strategy_seq, agent_seqs, record


def _check_resume_config(stored: dict, config: SearchConfig, root: Path, finished: bool) -> None:
    # Options added after the run was started take their defaults (a run from before
    # `region.confirm_samples` resumes); a default that would change what the run does is
    # caught by the replay, which must reproduce the log.
    stored = SearchConfig.from_dict(stored, source=f"{root}/meta.json").to_dict()
    now = config.to_dict()
    for key in sorted(set(stored) | set(now)):
        if key in RESUMABLE_CHANGES or (key == "budget" and finished):
            continue
        if key == "budget" and stored.get(key) != now.get(key):
            raise ResumeError(
                f"run at {root} was interrupted before its budget of {stored.get(key)} was spent; resume it "
                "without --budget, then extend the finished run with a larger --budget"
            )
        if stored.get(key) != now.get(key):
            raise ResumeError(
                f"run at {root} was started with {key}={stored.get(key)!r}, not {now.get(key)!r}; "
                "resume with the run's own config (omit the option) or start a new run"
            )


def run_search(
    config: SearchConfig,
    evaluator: Evaluator,
    space: ParamSpace,
    out_dir: str | Path,
    resume: bool = False,
    progress: Callable[[ProgressEvent], None] | None = None,
    model_spec: str | None = None,
    threshold_rule: dict | None = None,
) -> SearchResult:
    """Search `space` for failure modes of `evaluator`; log everything under `out_dir`.

    resume=True continues the run in `out_dir` from its last checkpoint: evaluations logged
    after it are replayed (not repeated, not logged twice), so the finished log equals
    that of an uninterrupted run. `config` must then equal the run's own config except
    for RESUMABLE_CHANGES (budget may grow). threshold_rule: how the threshold was chosen
    (`examiner.search.reference.relative_threshold`), recorded in meta.json.
    """
    config = config.validate()
    out = Path(out_dir)
    t0 = time.perf_counter()
    session_seq, strategy_seq, agent_seqs, seed_record = _seeds(config)
    if resume:
        try:
            store = RunStore.open(out, repair=True)
        except StoreError as e:
            raise ResumeError(str(e)) from None
        _check_resume_config(store.metadata["config"], config, out, finished=store.summary() is not None)
        if store.metadata["space"] != _roundtrip(space.to_dict()):
            raise ResumeError(f"run at {out} searched a different parameter space; resume with the run's own --space")
    else:
        meta = {
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "strategy": config.strategy,
            "config": config.to_dict(),
            "metric": config.metric,
            "threshold": config.failure_threshold,
            "threshold_rule": threshold_rule,
            "space": space.to_dict(),
            "dimension_names": space.names,
            "model_spec": model_spec,
            "seeds": seed_record,
            "versions": _versions(),
        }
        try:
            store = RunStore.create(out, meta)
        except StoreError as e:
            raise ResumeError(str(e)) from None

    session = SearchSession(config, space, evaluator, store, session_seq, progress)
    strategy = get_strategy(config.strategy)(session, config, space, strategy_seq, agent_seqs)

    def checkpoint(done: bool = False) -> None:
        # done: the search under this budget is over (written after the drain, before the
        # post-processing); a resume goes straight to the post-processing.
        store.save_checkpoint({"state_version": STATE_VERSION, "session": session.state_dict(),
                               "strategy": strategy.state_dict(), **({"search_done": config.budget} if done else {})})
        store.write_modes([m.to_dict(space.names) for m in session.modes.modes])

    strategy.checkpoint = checkpoint
    resumed_from = None
    searched = False  # the search already ended under this budget (killed in the post-processing)
    if resume:
        ckpt = store.load_checkpoint()
        records = store.records()
        resumed_from = 0
        if ckpt is not None and ckpt[1].get("state_version") == STATE_VERSION:
            resumed_from, state = ckpt
            session.load_state_dict(state["session"])
            session.restore_log(records[:resumed_from])
            strategy.load_state_dict(state["strategy"])
            # Run again, its strategy would see the budget its last region-growing jobs had
            # reserved and not spent as free, and propose more: not the uninterrupted log.
            searched = state.get("search_done") == config.budget and resumed_from == len(records)
        # A checkpoint is a shortcut: without one we can use (none yet, or written by a
        # version of the search whose state differs), the whole log replays from the start
        # (deterministic; a log the current code cannot reproduce is a clean ResumeError).
        session.set_replay(records[resumed_from:])

    try:
        if not searched:
            strategy.run()
            session.drain(strategy.name)
            if session.replaying:
                raise ResumeError(
                    f"run at {out} logged more evaluations than this config reaches; resume with a budget of at "
                    f"least {store.n_evaluations}"
                )
            checkpoint(done=True)
        modes = [m.to_dict(space.names) for m in session.modes.modes]
        if (config.region.confirm_samples or config.region.simplify or config.region.importance) and modes:
            _simplify_and_confirm(modes, session, config, space)
            store.write_modes(modes)
        factors = _failure_factors(store, session, config, space) if config.region.factor_samples else None
        session.finish()
        summary = {
            "status": "complete",
            "evaluations": session.n_evals,
            "budget": config.budget,
            "unused_budget": session.remaining,
            "failures": session.n_failures,
            "search_failures": session.n_search_failures,
            "search_usable": session.n_search_usable,
            "search_failure_rate": _rate(session.n_search_failures, session.n_search_usable),
            "evaluations_by_phase": dict(session.evals_by_phase),
            "modes": len(modes),
            "factors": factors,
            "jobs": [vars(j) for j in session.job_log],
            "rounds": session.round,
            # Wall time of this process's part of the run (a resumed run: since the resume).
            "elapsed_s": round(time.perf_counter() - t0, 3),
        }
        store.write_summary(summary)
    finally:
        store.close()
        close = getattr(evaluator, "close", None)
        if callable(close):
            close()
    return SearchResult(
        out_dir=out, evaluations=session.n_evals, budget=config.budget,
        modes=modes, failures=session.n_failures,
        jobs=summary["jobs"], elapsed_s=time.perf_counter() - t0, resumed_from=resumed_from,
        search_failure_rate=summary["search_failure_rate"],
    )


def _simplify_and_confirm(modes: list[dict], session: SearchSession, config: SearchConfig, space: ParamSpace) -> None:
    """Release the constraints that do not matter (`region.simplify`), then confirm every
    mode on fresh samples (`region.confirm_samples`); a released box that confirms below
    the standard is put back to the searched box when that one meets it
    (examiner/search/simplify.py); then test each constraint alone (`region.importance`,
    examiner/search/importance.py)."""
    import copy

    from examiner.search.simplify import revert_unconfirmed, simplify_modes

    r = config.region
    searched = copy.deepcopy(modes)
    if r.simplify:
        simplify_modes(modes, lambda U: _evaluate_fresh(session, U), space, r, config.seed)
    if r.confirm_samples:
        _confirm_modes(modes, session, config)
        if r.simplify:
            revert_unconfirmed(modes, searched, r.min_failure_rate, lambda ms: _confirm_modes(ms, session, config))
    if r.importance:
        from examiner.search.importance import rank_constraints

        rank_constraints(modes, lambda U: _evaluate_fresh(session, U), space, r.importance, config.seed)


def _confirm_modes(modes: list[dict], session: SearchSession, config: SearchConfig) -> None:
    """Add "confirmed" to each mode: `region.confirm_samples` fresh uniform samples in its
    box (their own generator, seeded by the run seed and the mode id; outside the budget
    and the log), judged like every evaluation. Keys: n (plausible, no model error), k
    (failing), rate, interval (Wilson), implausible, model_errors, median (metric)."""
    from examiner.search.factors import count_model_errors

    n = config.region.confirm_samples
    U = np.concatenate([
        np.random.default_rng(np.random.SeedSequence([config.seed, 0xC0F1, int(m["id"])])).uniform(
            np.asarray(m["lo"]), np.asarray(m["hi"]), size=(n, len(m["lo"])))
        for m in modes])
    scored = _evaluate_fresh(session, U)
    for i, m in enumerate(modes):
        part = scored[i * n:(i + 1) * n]
        usable = [s for s in part if s.plausible and not s.model_error]
        k = sum(s.failed for s in usable)
        values = [s.value for s in usable if math.isfinite(s.value)]
        m["confirmed"] = {
            "n": len(usable), "k": int(k), "rate": (k / len(usable)) if usable else None,
            "interval": list(wilson_interval(int(k), len(usable), config.region.confidence)) if usable else [0.0, 1.0],
            "implausible": sum(not s.plausible for s in part), "model_errors": count_model_errors(part),
            "median": float(np.median(values)) if values else None, "samples": n,
        }


def _failure_factors(store: RunStore, session: SearchSession, config: SearchConfig,
                     space: ParamSpace) -> dict | None:
    """Conditions the search's proposals point at, tested on fresh samples, and the
    failure rate of uniform fresh samples of the whole space (examiner.search.factors);
    None when the search made no usable proposal."""
    from examiner.search import factors

    rows = [r for r in store.records() if r["phase"] == "search" and r["plausible"] and not r["model_error"]]
    if not rows:
        return None
    U = np.asarray([r["u"] for r in rows], np.float64)
    failed = np.asarray([bool(r["failed"]) for r in rows])
    conds, base = factors.candidates(space, U, failed, top=config.region.factors,
                                     ends_only=config.region.factor_slices == "ends")
    return factors.confirm(conds, lambda V: _evaluate_fresh(session, V), space, config.seed,
                           config.region.factor_samples, base, extend_steps=config.region.factor_extend)


def _evaluate_fresh(session: SearchSession, U: np.ndarray) -> list:
    """Score fresh samples outside the budget and the log, judged like every evaluation."""
    with isolated_global_rng():
        outcomes = [normalise(o) for o in check_outcomes(session.evaluator.evaluate(U), len(U))]
    return session.scorer.score(U, outcomes)


def _rate(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def _roundtrip(d: Any) -> Any:
    import json

    from examiner.store import dumps

    return json.loads(dumps(d))
