"""Region-growing job scheduling: new failing points become seeds, seeds become jobs
(one `RegionGrowth` each) when no running job may already cover them and the budget can
reserve their cost, and finished jobs become claims and failure modes or tabu boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from examiner.search.archive import FailureArchive
from examiner.search.config import RegionConfig
from examiner.search.growth import GrownRegion, RegionGrowth
from examiner.search.growth_log import EvaluationLog, make_growth
from examiner.search.modes import ModeSet
from examiner.search.scorer import Scored


@dataclass
class JobSummary:
    job: int
    agent: int
    accepted: bool
    cost: int
    rate: float
    reason: str
    mode: int | None = None


# (agent, phase, job) of each row of a round
RowMeta = tuple[int, str, "int | None"]


class JobScheduler:
    """The running jobs, the seeds waiting for one, and the log of finished jobs.

    Jobs draw their verification samples from `grow_rng` (one generator all jobs share,
    so the state format pickles it once with the jobs)."""

    def __init__(self, cfg: RegionConfig, archive: FailureArchive, modes: ModeSet, grow_rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.archive = archive
        self.modes = modes
        self.grow_rng = grow_rng
        self.jobs: list[RegionGrowth] = []
        self.job_log: list[JobSummary] = []
        self.seed_queue: list[tuple[int, np.ndarray]] = []
        self.next_job = 0
        # The session's evaluations so far (log-fitted growth reads it; not in the state).
        self.log: EvaluationLog | None = None

    @property
    def committed(self) -> int:
        """Budget reserved for the running jobs to finish."""
        return sum(j.remaining_cost() for j in self.jobs)

    def queries(self, room: int, start: int, dim: int) -> tuple[list[np.ndarray], list[RowMeta], list[tuple[RegionGrowth, int, int]]]:
        """Every running job's queries of this round, as long as they fit in `room`
        evaluations (a job whose batch does not fit is aborted). Returns the rows, their
        (agent, phase, job) and each job's slice of the round (rows start at `start`)."""
        rows: list[np.ndarray] = []
        meta: list[RowMeta] = []
        slices: list[tuple[RegionGrowth, int, int]] = []
        for job in list(self.jobs):
            attach = getattr(job, "attach_log", None)
            if attach is not None:
                attach(self.log)
            qs = job.next_queries()
            if len(qs) > room:
                job.abort("budget exhausted")
                self.finish(job)
                continue
            room -= len(qs)
            rows.append(np.array([q.u for q in qs]).reshape(-1, dim))
            meta += [(job.agent, q.phase, job.job) for q in qs]
            slices.append((job, start, start + len(qs)))
            start += len(qs)
        return rows, meta, slices

    def consume(self, slices: Sequence[tuple[RegionGrowth, int, int]], scored: Sequence[Scored], provisional: bool) -> None:
        """Feed each job its answers; finish the jobs that are done. With `provisional`
        the provisional claim follows the job's confirmed box, so failures in a region
        being grown are neither new seeds nor rewarded as new."""
        for job, a, b in slices:
            job.consume(np.array([s.failed for s in scored[a:b]]), np.array([s.value for s in scored[a:b]]),
                        np.array([s.plausible for s in scored[a:b]]))
            if job.done:
                self.finish(job)
            elif provisional:
                self.archive.update_owner(job.job, "provisional", job.lo, job.hi)

    def offer(self, agent: int, u: np.ndarray) -> None:
        """A new failing point: a seed for a job."""
        self.seed_queue.append((int(agent), u.copy()))

    def finish(self, job: RegionGrowth) -> None:
        r: GrownRegion = job.result  # type: ignore[assignment]
        self.jobs = [j for j in self.jobs if j is not job]
        self.archive.remove_owner(job.job, "provisional")
        mode_id = None
        if r.accepted:
            self.archive.add(r.lo, r.hi, "claimed", job.job)
            mode_id = self.modes.add(r).id
        else:
            tol = self.cfg.bisection_tol
            self.archive.add(np.clip(r.seed_point - tol, -1, 1), np.clip(r.seed_point + tol, -1, 1), "tabu", job.job)
        self.job_log.append(JobSummary(job.job, job.agent, r.accepted, r.cost, r.rate, r.reason, mode_id))

    def start(self, remaining: int) -> None:
        """Start jobs from the queued seeds while `remaining` evaluations cover their
        estimated cost next to the running jobs'."""
        cfg = self.cfg
        kept: list[tuple[int, np.ndarray]] = []
        for agent, u in self.seed_queue:
            if self.archive.claimed(u[None])[0]:
                continue  # covered by a region grown meanwhile
            maybe_same = any(j.may_contain(u) for j in self.jobs)
            if maybe_same or len(self.jobs) >= cfg.max_jobs:
                kept.append((agent, u))  # decide after the nearby job finishes
                continue
            job = make_growth(self.next_job, agent, u, cfg, self.grow_rng, self.log)
            if remaining - self.committed < job.estimated_cost():
                continue
            self.next_job += 1
            self.jobs.append(job)
            self.archive.add(u, u, "provisional", job.job)
        self.seed_queue = kept[-4 * cfg.max_jobs:]
