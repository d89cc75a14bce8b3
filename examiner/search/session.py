"""The search session: the one place every evaluation goes through.

Every strategy hands the session one batch of proposals per round; the session adds the
queries of the region-growing jobs, evaluates everything in ONE evaluator call, scores it
(shared failure definition and collaboration term), logs it to the run store, feeds the
jobs, turns finished jobs into claims and failure modes, and starts new jobs from new
failing points. Budget accounting is therefore identical for all strategies: search
proposals, probes, bisection steps and verification samples all count.

On resume the session replays the evaluations logged after the last checkpoint: the
restored strategy proposes the same points again and gets the logged outcomes back
instead of new evaluations (each replayed point is checked against the log).
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from examiner.search.config import SearchConfig
from examiner.search.errors import EvaluatorError, ResumeError
from examiner.search.outcome import Evaluator, Outcome, check_outcomes
from examiner.search.archive import FailureArchive
from examiner.search.growth import GrownRegion, RegionGrowth
from examiner.search.modes import ModeSet
from examiner.search.rng import isolated_global_rng
from examiner.store import RunStore
from simulator.params import ParamSpace


@dataclass
class Scored:
    """A scored outcome. value: the failure metric (NaN on model error); score: the shaped
    objective every strategy maximises (see Scorer); new_failure: failed and not inside a
    claimed region."""

    value: float
    score: float
    failed: bool
    claimed: bool
    new_failure: bool
    plausible: bool
    model_error: bool
    claim_proximity: float


def judge(o: Outcome, value: float, threshold: float) -> tuple[bool, bool]:
    """(unusable, failed) for an outcome whose metric value is `value`: the one failure
    definition (a plausible scene without a model error whose value exceeds the
    threshold, or where the model found no person)."""
    missed = bool(o.missed) and not o.model_error
    err = bool(o.model_error) or (not math.isfinite(value) and not missed)
    return err, bool(o.plausible) and not err and (missed or value > threshold)


class Scorer:
    """The shared failure definition and reward shaping.

    failed = plausible and not model_error and (missed or value > threshold)
    score  = clip((value - threshold) / scale, -1, 1)        (-1 for model errors, +1 for misses)
             - implausible_penalty * (not plausible)
             - claim_penalty * proximity to claimed regions   (collaboration term)
    """

    def __init__(self, config: SearchConfig, archive: FailureArchive) -> None:
        self.metric = config.metric
        self.threshold = config.failure_threshold
        env = config.env
        self.scale = float(env.score_scale) if env.score_scale else abs(self.threshold) or 1.0
        self.claim_penalty = env.claim_penalty
        self.implausible_penalty = env.implausible_penalty
        self.archive = archive

    def value(self, o: Outcome) -> float:
        if o.model_error:
            return float("nan")
        if o.missed:
            return float("nan")
        if self.metric in o.metrics:
            return float(o.metrics[self.metric])
        raise EvaluatorError(
            f"the evaluator reports no metric {self.metric!r} (it reports: {', '.join(sorted(o.metrics)) or 'none'}); "
            "pass --metric with one of those"
        )

    def score(self, U: np.ndarray, outcomes: Sequence[Outcome]) -> list[Scored]:
        U = np.atleast_2d(U)
        prox = self.archive.proximity(U)
        claimed = self.archive.claimed(U)
        out = []
        for o, p, c in zip(outcomes, prox, claimed):
            v = self.value(o)
            ok = bool(o.plausible)
            missed = bool(o.missed) and not o.model_error
            err, failed = judge(o, v, self.threshold)
            if err:
                s = -1.0
            else:
                s = 1.0 if missed else float(np.clip((v - self.threshold) / self.scale, -1.0, 1.0))
            if not ok:
                s -= self.implausible_penalty
            s -= self.claim_penalty * float(p)
            out.append(Scored(v, s, failed, bool(c), failed and not bool(c), ok, err, float(p)))
        return out


@dataclass
class ProgressEvent:
    """What a progress display needs after each round."""

    evaluations: int
    budget: int
    failures: int
    modes: int
    evals_per_s: float
    rounds: int
    active_jobs: int
    replaying: bool
    strategy: str
    done: bool = False


@dataclass
class JobSummary:
    job: int
    agent: int
    accepted: bool
    cost: int
    rate: float
    reason: str
    mode: int | None = None


class SearchSession:
    def __init__(
        self,
        config: SearchConfig,
        space: ParamSpace,
        evaluator: Evaluator,
        store: RunStore | None,
        seed_seq: np.random.SeedSequence,
        progress: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        self.cfg = config
        self.space = space
        self.dim = space.dim
        self.evaluator = evaluator
        self.store = store
        self.progress = progress
        self.archive = FailureArchive(self.dim, config.env.claim_radius, config.region.claim_margin)
        self.scorer = Scorer(config, self.archive)
        self.modes = ModeSet(config.region)
        self.jobs: list[RegionGrowth] = []
        self.job_log: list[JobSummary] = []
        self.seed_queue: list[tuple[int, np.ndarray]] = []
        self.grow_rng = np.random.default_rng(seed_seq)
        self.n_evals = 0
        self.round = 0
        self.n_failures = 0  # failing evaluations of any phase
        self.n_search_failures = 0
        self.next_job = 0
        self.evals_by_phase: dict[str, int] = collections.Counter()
        self._replay: collections.deque[dict] = collections.deque()
        self._t0 = time.perf_counter()
        self._evals_at_t0 = 0

    # ---- budget ---------------------------------------------------------------------------
    @property
    def budget(self) -> int:
        return self.cfg.budget

    @property
    def remaining(self) -> int:
        return self.cfg.budget - self.n_evals

    @property
    def committed(self) -> int:
        """Budget reserved for the running region-growing jobs to finish."""
        return sum(j.remaining_cost() for j in self.jobs)

    def can_afford(self, n: int) -> bool:
        """Whether a round of n proposals fits next to the budget the jobs need."""
        return self.remaining - self.committed >= n

    # ---- resume ---------------------------------------------------------------------------
    def set_replay(self, records: Sequence[dict]) -> None:
        self._replay = collections.deque(records)

    @property
    def replaying(self) -> bool:
        return bool(self._replay)

    def state_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive, "modes": self.modes, "jobs": self.jobs, "job_log": self.job_log,
            "seed_queue": self.seed_queue, "grow_rng": self.grow_rng,  # jobs share this object
            "n_evals": self.n_evals, "round": self.round, "n_failures": self.n_failures,
            "n_search_failures": self.n_search_failures, "next_job": self.next_job,
            "evals_by_phase": dict(self.evals_by_phase),
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.archive = s["archive"]
        self.scorer.archive = self.archive
        self.modes, self.jobs, self.job_log, self.seed_queue = s["modes"], s["jobs"], s["job_log"], s["seed_queue"]
        self.grow_rng = s["grow_rng"]
        self.n_evals, self.round, self.n_failures = s["n_evals"], s["round"], s["n_failures"]
        self.n_search_failures, self.next_job = s["n_search_failures"], s["next_job"]
        self.evals_by_phase = collections.Counter(s["evals_by_phase"])
        self._evals_at_t0 = self.n_evals

    # ---- one round ------------------------------------------------------------------------
    def evaluate_round(self, proposals: np.ndarray, agent_ids: Sequence[int], strategy: str) -> list[Scored]:
        """Evaluate `proposals` (P, D) from agents `agent_ids` together with the pending
        region-growing queries in one evaluator call; return the proposals' scores."""
        P = np.asarray(proposals, dtype=np.float64).reshape(-1, self.dim)
        if len(P) > self.remaining:
            raise RuntimeError(f"round of {len(P)} proposals exceeds the remaining budget {self.remaining}")
        rows_u = [np.clip(P, -1.0, 1.0)]
        meta: list[tuple[int, str, int | None]] = [(int(a), "search", None) for a in agent_ids]
        room = self.remaining - len(P)
        job_slices: list[tuple[RegionGrowth, int, int]] = []
        start = len(P)
        for job in list(self.jobs):
            qs = job.next_queries()
            if len(qs) > room:
                job.abort("budget exhausted")
                self._finish(job)
                continue
            room -= len(qs)
            rows_u.append(np.array([q.u for q in qs]).reshape(-1, self.dim))
            meta += [(job.agent, q.phase, job.job) for q in qs]
            job_slices.append((job, start, start + len(qs)))
            start += len(qs)
        U = np.concatenate(rows_u, axis=0)
        outcomes = self._evaluate(U, meta)
        scored = self.scorer.score(U, outcomes)
        self._log(U, meta, outcomes, scored, strategy)
        self.round += 1

        for job, a, b in job_slices:
            job.consume(np.array([s.failed for s in scored[a:b]]), np.array([s.value for s in scored[a:b]]),
                        np.array([s.plausible for s in scored[a:b]]))
            if job.done:
                self._finish(job)
            elif self.cfg.region.grow_provisional:
                # The provisional claim follows the job's confirmed box, so failures in a
                # region being grown are neither new seeds nor rewarded as new.
                self.archive.update_owner(job.job, "provisional", job.lo, job.hi)
        for k, s in enumerate(scored[: len(P)]):
            if s.failed:
                self.n_search_failures += 1
            if s.new_failure:
                self.seed_queue.append((int(agent_ids[k]), U[k].copy()))
        self._start_jobs()
        self._emit()
        return scored[: len(P)]

    def drain(self, strategy: str) -> None:
        """After the strategy stops: let running jobs finish within the budget left."""
        while self.jobs and self.remaining > 0:
            self.evaluate_round(np.zeros((0, self.dim)), [], strategy)

    # ---- internals ------------------------------------------------------------------------
    def _evaluate(self, U: np.ndarray, meta: list[tuple[int, str, int | None]]) -> list[Outcome]:
        n = len(U)
        out: list[Outcome] = []
        while self._replay and len(out) < n:
            rec = self._replay.popleft()
            i = len(out)
            agent, phase, job = meta[i]
            expect = self.n_evals + i
            if (
                rec["i"] != expect or rec["agent"] != agent or rec["phase"] != phase or rec.get("job") != job
                or not np.array_equal(np.asarray(rec["u"], dtype=np.float64), U[i])
            ):
                raise ResumeError(
                    f"cannot resume deterministically: evaluation #{expect} differs from the log "
                    f"({rec['phase']} by agent {rec['agent']} logged, {phase} by agent {agent} proposed); "
                    "the evaluator, code or environment changed since the run started"
                )
            out.append(_outcome_from_record(rec))
        self._replayed = len(out)
        if len(out) < n:
            with isolated_global_rng():
                fresh = check_outcomes(self.evaluator.evaluate(U[len(out):]), n - len(out))
            out += [_normalise(o) for o in fresh]
        return out

    def _log(self, U, meta, outcomes, scored, strategy: str) -> None:
        records = []
        for i, ((agent, phase, job), o, s) in enumerate(zip(meta, outcomes, scored)):
            self.evals_by_phase[phase] += 1
            if s.failed:
                self.n_failures += 1
            if i < self._replayed:
                continue
            records.append({
                # Evaluator extras first (e.g. "prediction", "joint_errors" that reports
                # draw); the search's own keys below always win.
                **(o.extra or {}),
                "i": self.n_evals + i, "round": self.round, "agent": agent, "phase": phase, "job": job,
                "strategy": strategy, "seed": self.cfg.seed, "u": U[i].tolist(),
                "params": self.space.to_params(U[i]).to_dict(),
                "error": o.error, "value": s.value, "failed": s.failed, "metrics": o.metrics,
                "model_error": o.model_error, "model_error_message": o.model_error_message,
                "missed": o.missed, "plausible": o.plausible, "timings": o.timings,
            })
        if self.store is not None and records:
            self.store.append(records)
        self.n_evals += len(U)

    def _finish(self, job: RegionGrowth) -> None:
        r: GrownRegion = job.result  # type: ignore[assignment]
        self.jobs = [j for j in self.jobs if j is not job]
        self.archive.remove_owner(job.job, "provisional")
        mode_id = None
        if r.accepted:
            self.archive.add(r.lo, r.hi, "claimed", job.job)
            mode_id = self.modes.add(r).id
        else:
            tol = self.cfg.region.bisection_tol
            self.archive.add(np.clip(r.seed_point - tol, -1, 1), np.clip(r.seed_point + tol, -1, 1), "tabu", job.job)
        self.job_log.append(JobSummary(job.job, job.agent, r.accepted, r.cost, r.rate, r.reason, mode_id))

    def _start_jobs(self) -> None:
        cfg = self.cfg.region
        kept: list[tuple[int, np.ndarray]] = []
        for agent, u in self.seed_queue:
            if self.archive.claimed(u[None])[0]:
                continue  # covered by a region grown meanwhile
            maybe_same = any(j.may_contain(u) for j in self.jobs)
            if maybe_same or len(self.jobs) >= cfg.max_jobs:
                kept.append((agent, u))  # decide after the nearby job finishes
                continue
            job = RegionGrowth(self.next_job, agent, u, cfg, self.grow_rng)
            if self.remaining - self.committed < job.estimated_cost():
                continue
            self.next_job += 1
            self.jobs.append(job)
            self.archive.add(u, u, "provisional", job.job)
        self.seed_queue = kept[-4 * cfg.max_jobs:]

    def _emit(self, done: bool = False) -> None:
        if self.progress is None:
            return
        dt = time.perf_counter() - self._t0
        rate = (self.n_evals - self._evals_at_t0) / dt if dt > 0 else 0.0
        self.progress(ProgressEvent(
            evaluations=self.n_evals, budget=self.budget, failures=self.n_failures, modes=len(self.modes),
            evals_per_s=rate, rounds=self.round, active_jobs=len(self.jobs), replaying=self.replaying,
            strategy=self.cfg.strategy, done=done,
        ))

    def finish(self) -> None:
        self._emit(done=True)


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _normalise(o: Outcome) -> Outcome:
    """The outcome as it reads back from the log (plain floats), so a fresh run and a
    replayed one compute with identical values."""
    return Outcome(
        error=_num(o.error) if o.error is not None else float("nan"),
        metrics={str(k): _num(v) if v is None or math.isfinite(float(v)) else float("nan") for k, v in o.metrics.items()},
        model_error=bool(o.model_error),
        model_error_message=None if o.model_error_message is None else str(o.model_error_message),
        plausible=bool(o.plausible),
        timings={str(k): float(v) for k, v in o.timings.items()},
        extra=o.extra,
        missed=bool(o.missed),
    )


def _outcome_from_record(rec: dict) -> Outcome:
    return Outcome(
        error=_num(rec.get("error")),
        metrics={k: _num(v) for k, v in (rec.get("metrics") or {}).items()},
        model_error=bool(rec["model_error"]),
        model_error_message=rec.get("model_error_message"),
        plausible=bool(rec["plausible"]),
        timings=dict(rec.get("timings") or {}),
        missed=bool(rec.get("missed", False)),
    )
