"""Parallel evaluation backends: shard one batch across W workers.

Both wrappers are Evaluators themselves: the search still makes one `evaluate(U)` call
per round; the wrapper splits U into W contiguous shards, evaluates them in parallel and
concatenates the outcomes in row order. Workers build their own evaluator from a
picklable factory (e.g. `EvaluatorFactory`), once, when they start.

- `local`: `simulator.pool.WorkerPool` (spawned processes, so workers never inherit
  torch/OpenGL state from the parent).
- `ray`: W Ray actors on a local Ray instance (or the cluster `ray.init` finds through
  RAY_ADDRESS). `ray` is an optional dependency: `pip install poseexaminer[ray]`.
  The local instance we start listens on loopback only (`simulator.pool.import_ray`,
  `start_local_ray`) with no dashboard; connecting to a remote cluster (RAY_ADDRESS) stays
  the user's explicit choice.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from examiner.search.errors import BackendError
from examiner.search.outcome import Evaluator, Outcome, check_outcomes
from simulator import pool
from simulator.pool import LOOPBACK_RAY_ENV, import_ray, local_ray_init_kwargs  # noqa: F401  (re-exported)


def _evaluate_shard(evaluator: Evaluator, U: np.ndarray) -> list[Outcome]:
    return evaluator.evaluate(U)


def shard_bounds(n: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous, near-equal [a, b) shards of n rows for at most `workers` workers."""
    w = max(1, min(workers, n))
    edges = np.linspace(0, n, w + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


class ProcessPoolEvaluator:
    def __init__(self, factory: Callable[[], Evaluator], workers: int) -> None:
        if workers < 1:
            raise BackendError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool = pool.WorkerPool(workers, factory)

    def evaluate(self, U: np.ndarray) -> list[Outcome]:
        U = np.asarray(U, dtype=np.float64)
        if len(U) == 0:
            return []
        out: list[Outcome] = []
        for part in self._pool.imap(_evaluate_shard, [U[a:b] for a, b in shard_bounds(len(U), self.workers)]):
            out += part
        return check_outcomes(out, len(U))

    def close(self) -> None:
        self._pool.close()


def start_local_ray(ray, workers: int | None = None, init_kwargs: dict[str, Any] | None = None) -> bool:
    """`simulator.pool.start_local_ray`, refusing with BackendError."""
    return pool.start_local_ray(ray, workers, init_kwargs, error=BackendError)


class RayEvaluator:
    def __init__(self, factory: Callable[[], Evaluator], workers: int, init_kwargs: dict[str, Any] | None = None) -> None:
        ray = pool.require_ray(BackendError)
        if workers < 1:
            raise BackendError(f"workers must be at least 1, got {workers}")
        self._ray = ray
        self._owns_ray = start_local_ray(ray, init_kwargs=init_kwargs)

        @ray.remote(num_cpus=1)
        class _Worker:
            def __init__(self, factory):
                self.ev = factory()

            def evaluate(self, U):
                return self.ev.evaluate(U)

        self.workers = workers
        self._actors = [_Worker.remote(factory) for _ in range(workers)]

    def evaluate(self, U: np.ndarray) -> list[Outcome]:
        U = np.asarray(U, dtype=np.float64)
        if len(U) == 0:
            return []
        refs = [actor.evaluate.remote(U[a:b]) for actor, (a, b) in zip(self._actors, shard_bounds(len(U), self.workers))]
        out: list[Outcome] = []
        for part in self._ray.get(refs):
            out += part
        return check_outcomes(out, len(U))

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
        if self._owns_ray:
            self._ray.shutdown()


def make_evaluator(factory: Callable[[], Evaluator], backend: str = "local", workers: int = 1) -> Evaluator:
    """The evaluator for a backend: in-process for local with 1 worker, else a sharding
    wrapper over `workers` processes or Ray actors."""
    if backend == "ray":
        return RayEvaluator(factory, workers)
    if backend != "local":
        raise BackendError(f"unknown backend {backend!r}; choose local or ray")
    if workers <= 1:
        return factory()
    return ProcessPoolEvaluator(factory, workers)
