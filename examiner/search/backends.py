"""Parallel evaluation backends: shard one batch across W workers.

Both wrappers are Evaluators themselves: the search still makes one `evaluate(U)` call
per round; the wrapper splits U into W contiguous shards, evaluates them in parallel and
concatenates the outcomes in row order. Workers build their own evaluator from a
picklable factory (e.g. `EvaluatorFactory`), once, when they start.

- `local`: a `concurrent.futures.ProcessPoolExecutor` (spawn context, so workers never
  inherit torch/OpenGL state from the parent).
- `ray`: W Ray actors on a local Ray instance (or the cluster `ray.init` finds through
  RAY_ADDRESS). `ray` is an optional dependency: `pip install poseexaminer[ray]`.
  The local instance we start listens on loopback only (`import_ray`, `start_local_ray`)
  with no dashboard; connecting to a remote cluster (RAY_ADDRESS) stays the user's
  explicit choice.
"""

from __future__ import annotations

import ipaddress
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

import numpy as np

from examiner.search.errors import BackendError
from examiner.search.evaluator import Evaluator, Outcome, check_outcomes

_WORKER_EVALUATOR: Evaluator | None = None


def _init_worker(factory: Callable[[], Evaluator]) -> None:
    global _WORKER_EVALUATOR
    _WORKER_EVALUATOR = factory()


def _worker_evaluate(U: np.ndarray) -> list[Outcome]:
    assert _WORKER_EVALUATOR is not None
    return _WORKER_EVALUATOR.evaluate(U)


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
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(factory,)
        )

    def evaluate(self, U: np.ndarray) -> list[Outcome]:
        U = np.asarray(U, dtype=np.float64)
        if len(U) == 0:
            return []
        futures = [self._pool.submit(_worker_evaluate, U[a:b]) for a, b in shard_bounds(len(U), self.workers)]
        out: list[Outcome] = []
        for f in futures:
            out += f.result()
        return check_outcomes(out, len(U))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# Every Ray service (GCS, raylet node manager and object manager, each worker's and the
# driver's core-worker server, the runtime-env agent) binds to the node IP, or to all
# interfaces when the node IP is not loopback. Ray picks the node IP from the host's
# outward route and `ray.init` turns `_node_ip_address="127.0.0.1"` back into that address,
# unless this variable is "0" (despite its name it applies on Linux too). Ray reads it once,
# when `ray` is imported.
LOOPBACK_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_ray_init_kwargs(workers: int | None = None) -> dict[str, Any]:
    """`ray.init` arguments for a Ray instance this process starts: loopback node IP, no
    dashboard, quiet. With RAY_ADDRESS set, Ray connects to that cluster instead and these
    node options do not apply. The node IP only stays loopback when ray was imported by
    `import_ray` (see LOOPBACK_RAY_ENV); `start_local_ray` checks that."""
    kw: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True, "log_to_driver": False,
                          "configure_logging": False}
    if not os.environ.get("RAY_ADDRESS"):
        kw["_node_ip_address"] = "127.0.0.1"
        if workers is not None:
            kw["num_cpus"] = max(int(workers), 1)
    return kw


def import_ray():
    """Import ray (ImportError when it is not installed). When this is ray's first import in
    the process and RAY_ADDRESS is unset, it happens under LOOPBACK_RAY_ENV, so a local
    instance started later listens on loopback only; the variable is restored afterwards
    (a value the user set is kept), and the Ray processes get their node IP explicitly."""
    if "ray" in sys.modules or os.environ.get("RAY_ADDRESS"):
        import ray

        return ray
    saved = {k: os.environ.get(k) for k in LOOPBACK_RAY_ENV}
    for k, v in LOOPBACK_RAY_ENV.items():
        os.environ.setdefault(k, v)
    try:
        import ray
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return ray


def start_local_ray(ray, workers: int | None = None, init_kwargs: dict[str, Any] | None = None) -> bool:
    """Start a local Ray instance with `local_ray_init_kwargs` unless one is already
    initialised in this process; True when this call started (and so owns) it. Refuses
    (BackendError) to start one whose services would listen beyond loopback, which happens
    when ray was imported before `import_ray` could set LOOPBACK_RAY_ENV."""
    if ray.is_initialized():
        return False
    kw = local_ray_init_kwargs(workers)
    kw.update(init_kwargs or {})
    if not os.environ.get("RAY_ADDRESS"):
        node_ip = ray.util.get_node_ip_address()
        if not _is_loopback(node_ip):
            var = next(iter(LOOPBACK_RAY_ENV))
            raise BackendError(
                f"a local Ray instance would listen on {node_ip} (ray was imported before PoseExaminer "
                f"could set {var}=0, or it is set to 1); set {var}=0 before importing ray, "
                "or start Ray yourself and pass its address in RAY_ADDRESS"
            )
    ray.init(**kw)
    return True


def _import_ray():
    try:
        return import_ray()
    except ImportError as e:
        raise BackendError(
            f"--backend ray needs the optional dependency ray ({e}); install it with `pip install poseexaminer[ray]`"
        ) from None


class RayEvaluator:
    def __init__(self, factory: Callable[[], Evaluator], workers: int, init_kwargs: dict[str, Any] | None = None) -> None:
        ray = _import_ray()
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
