"""The search session: the one place every evaluation goes through.

Every strategy hands the session one batch of proposals per round; the session adds the
queries of the region-growing jobs, evaluates everything in ONE evaluator call, scores it
(shared failure definition and claim-distance penalty), logs it to the run store, feeds
the jobs, turns finished jobs into claims and failure modes, and starts new jobs from new
failing points. Budget accounting is therefore identical for all strategies: search
proposals, probes, bisection steps and verification samples all count.

On resume the session replays the evaluations logged after the last checkpoint: the
restored strategy proposes the same points again and gets the logged outcomes back
instead of new evaluations (each replayed point is checked against the log).

SearchSession composes the parts, each in its own module: `budget.Budget` (accounting),
`replay.Replay` (resume), `jobs.JobScheduler` (region-growing jobs), `records` (the
log's records), `scorer.Scorer` (failure definition and shaping) and
`events.ProgressEvent` (progress display).
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Sequence

import numpy as np

from examiner.search.archive import FailureArchive
from examiner.search.budget import Budget
from examiner.search.config import SearchConfig
from examiner.search.events import ProgressClock, ProgressEvent
from examiner.search.growth import RegionGrowth
from examiner.search.growth_log import EvaluationLog
from examiner.search.jobs import JobScheduler, JobSummary, RowMeta
from examiner.search.modes import ModeSet
from examiner.search.outcome import Evaluator, Outcome, check_outcomes
from examiner.search.records import evaluation_record, normalise
from examiner.search.replay import Replay
from examiner.search.rng import isolated_global_rng
from examiner.search.scorer import Scored, Scorer, judge
from examiner.store import RunStore
from simulator.params import ParamSpace

# Kept importable from here for code written against the one-module session.
__all__ = ["JobSummary", "ProgressEvent", "Scored", "Scorer", "SearchSession", "judge"]


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
        archive = FailureArchive(self.dim, config.env.claim_radius, config.region.claim_margin)
        self.scorer = Scorer(config, archive)
        self.scheduler = JobScheduler(config.region, archive, ModeSet(config.region), np.random.default_rng(seed_seq))
        self.log = EvaluationLog(self.dim)  # every evaluation's (u, failed, plausible)
        self.scheduler.log = self.log
        self._budget = Budget(config.budget)
        self.round = 0
        self.n_failures = 0  # failing evaluations of any phase
        self.n_search_failures = 0
        self.n_search_usable = 0  # the strategy's proposals that are plausible, without a model error
        self.evals_by_phase: dict[str, int] = collections.Counter()
        self._replay = Replay()
        self._clock = ProgressClock()

    # ---- the parts, by their old names -------------------------------------------------------
    @property
    def archive(self) -> FailureArchive:
        return self.scheduler.archive

    @property
    def modes(self) -> ModeSet:
        return self.scheduler.modes

    @property
    def jobs(self) -> list[RegionGrowth]:
        return self.scheduler.jobs

    @property
    def job_log(self) -> list[JobSummary]:
        return self.scheduler.job_log

    @property
    def n_evals(self) -> int:
        return self._budget.spent

    # ---- budget ---------------------------------------------------------------------------
    @property
    def budget(self) -> int:
        return self._budget.total

    @property
    def remaining(self) -> int:
        return self._budget.remaining

    @property
    def committed(self) -> int:
        """Budget reserved for the running region-growing jobs to finish."""
        return self.scheduler.committed

    def can_afford(self, n: int) -> bool:
        """Whether a round of n proposals fits next to the budget the jobs need."""
        return self._budget.can_afford(n, self.committed)

    # ---- resume ---------------------------------------------------------------------------
    def restore_log(self, records: Sequence[dict]) -> None:
        """After loading a checkpoint: the evaluation log up to it, from the run store's
        records (the log is not part of the pickled state)."""
        self.log = EvaluationLog.from_records(self.dim, records)
        self.scheduler.log = self.log

    def set_replay(self, records: Sequence[dict]) -> None:
        self._replay = Replay(records)

    @property
    def replaying(self) -> bool:
        return bool(self._replay)

    def state_dict(self) -> dict[str, Any]:
        j = self.scheduler
        return {
            "archive": j.archive, "modes": j.modes, "jobs": j.jobs, "job_log": j.job_log,
            "seed_queue": j.seed_queue, "grow_rng": j.grow_rng,  # jobs share this object
            "n_evals": self.n_evals, "round": self.round, "n_failures": self.n_failures,
            "n_search_failures": self.n_search_failures, "n_search_usable": self.n_search_usable, "next_job": j.next_job,
            "evals_by_phase": dict(self.evals_by_phase),
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        j = self.scheduler
        j.archive = s["archive"]
        self.scorer.archive = j.archive
        j.modes, j.jobs, j.job_log, j.seed_queue = s["modes"], s["jobs"], s["job_log"], s["seed_queue"]
        j.grow_rng = s["grow_rng"]
        j.next_job = s["next_job"]
        self._budget.spent = s["n_evals"]
        self.round, self.n_failures = s["round"], s["n_failures"]
        self.n_search_failures, self.n_search_usable = s["n_search_failures"], s["n_search_usable"]
        self.evals_by_phase = collections.Counter(s["evals_by_phase"])
        self._clock.restart(self.n_evals)

    # ---- one round ------------------------------------------------------------------------
    def evaluate_round(self, proposals: np.ndarray, agent_ids: Sequence[int], strategy: str) -> list[Scored]:
        """Evaluate `proposals` (P, D) from agents `agent_ids` together with the pending
        region-growing queries in one evaluator call; return the proposals' scores."""
        P = np.asarray(proposals, dtype=np.float64).reshape(-1, self.dim)
        if len(P) > self.remaining:
            raise RuntimeError(f"round of {len(P)} proposals exceeds the remaining budget {self.remaining}")
        meta: list[RowMeta] = [(int(a), "search", None) for a in agent_ids]
        rows, job_meta, job_slices = self.scheduler.queries(self.remaining - len(P), len(P), self.dim)
        U = np.concatenate([np.clip(P, -1.0, 1.0)] + rows, axis=0)
        meta += job_meta
        outcomes, n_replayed = self._evaluate(U, meta)
        scored = self.scorer.score(U, outcomes)
        self._log(U, meta, outcomes, scored, strategy, n_replayed)
        self.round += 1

        self.scheduler.consume(job_slices, scored, self.cfg.region.grow_provisional)
        for k, s in enumerate(scored[: len(P)]):
            self.n_search_usable += s.plausible and not s.model_error
            if s.failed:
                self.n_search_failures += 1
            if s.new_failure:
                self.scheduler.offer(int(agent_ids[k]), U[k])
        self.scheduler.start(self.remaining)
        self._emit()
        return scored[: len(P)]

    def drain(self, strategy: str) -> None:
        """After the strategy stops: let running jobs finish within the budget left."""
        while self.jobs and self.remaining > 0:
            self.evaluate_round(np.zeros((0, self.dim)), [], strategy)

    # ---- internals ------------------------------------------------------------------------
    def _evaluate(self, U: np.ndarray, meta: list[RowMeta]) -> tuple[list[Outcome], int]:
        """Outcomes of all rows (the leading ones replayed from the log while resuming)
        and how many were replayed."""
        n = len(U)
        out = self._replay.take(U, meta, self.n_evals)
        replayed = len(out)
        if len(out) < n:
            with isolated_global_rng():
                fresh = check_outcomes(self.evaluator.evaluate(U[len(out):]), n - len(out))
            out += [normalise(o) for o in fresh]
        return out, replayed

    def _log(self, U, meta, outcomes, scored, strategy: str, n_replayed: int) -> None:
        records = []
        for i, ((agent, phase, job), o, s) in enumerate(zip(meta, outcomes, scored)):
            self.evals_by_phase[phase] += 1
            if s.failed:
                self.n_failures += 1
            if i < n_replayed:
                continue
            records.append(evaluation_record(self.n_evals + i, self.round, agent, phase, job, strategy,
                                             self.cfg.seed, U[i], self.space, o, s))
        self.log.append(U, np.array([s.failed for s in scored], bool),
                        np.array([s.plausible and not s.model_error for s in scored], bool))
        if self.store is not None and records:
            self.store.append(records)
        self._budget.spend(len(U))

    def _emit(self, done: bool = False) -> None:
        if self.progress is None:
            return
        self.progress(ProgressEvent(
            evaluations=self.n_evals, budget=self.budget, failures=self.n_failures, modes=len(self.modes),
            evals_per_s=self._clock.rate(self.n_evals), rounds=self.round, active_jobs=len(self.jobs),
            replaying=self.replaying, strategy=self.cfg.strategy, done=done,
        ))

    def finish(self) -> None:
        self._emit(done=True)
