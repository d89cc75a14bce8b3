"""Worker processes and Ray, for every layer: the one process-pool implementation.

- `WorkerPool`: W spawned processes (GL contexts and torch do not survive fork), each
  building one per-process object once (`factory()`: a renderer, an evaluator, a dataset
  writer) and applying module-level functions `func(obj, item)` to items, in order
  (`imap`) or as they finish (`imap_unordered`). Users: `RenderPool` (below), the search's
  `examiner.search.backends.ProcessPoolEvaluator` and the generators' local backend.
- `torch_threads(n)` (simulator.threads): torch intra-op threads for a block; `set_worker_threads(n)`: the
  torch and llvmpipe threads of a worker process (W workers x default threads would
  oversubscribe the cores).
- Ray (optional dependency): `import_ray`, `require_ray`, `local_ray_init_kwargs`,
  `start_local_ray` keep a Ray instance this process starts on loopback.
- `RenderPool`: render scenes in worker processes (one GL context and body model each).
  Rendering on llvmpipe plus the Python around it keeps about one core busy per process,
  so W processes on W cores render close to W times faster than one. Results come back in
  input order; each worker renders whole chunks so the body model still runs batched.
"""

from __future__ import annotations

import functools
import ipaddress
import multiprocessing as mp
import os
import sys
from typing import Any, Callable, Iterable, Iterator, Sequence

from simulator.errors import PoseExaminerError
from simulator.params import SceneParams
from simulator.threads import torch_threads  # noqa: F401  (re-exported)


class PoolError(PoseExaminerError):
    """A worker pool or Ray is unavailable or misconfigured."""


# ---- threads ---------------------------------------------------------------------------


def set_worker_threads(threads: int) -> None:
    """A worker process's llvmpipe and torch threads (for the rest of the process)."""
    os.environ["LP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this worker when its parent dies, so a killed run leaves no orphan
    finishing work that a resumed run redoes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


# ---- the pool --------------------------------------------------------------------------

WATCH_S = 1.0  # how often a caller waiting for results checks that no worker died

_WORKER: dict[str, Any] = {}


def _init_worker(factory: Callable[[], Any], threads: int | None, parent_pid: int | None) -> None:
    if parent_pid is not None:
        die_with_parent(parent_pid)
    if threads is not None:
        set_worker_threads(threads)
    try:
        _WORKER["obj"] = factory()
    except Exception as e:  # raised by the first task: a failing initializer makes a Pool respawn forever
        _WORKER["error"] = e


def _apply(func: Callable[[Any, Any], Any], item: Any) -> Any:
    if "error" in _WORKER:
        raise _WORKER["error"]
    return func(_WORKER["obj"], item)


class WorkerPool:
    """`workers` spawned processes; each calls the picklable `factory()` once and keeps the
    result. threads: set each worker's torch/llvmpipe threads (None: leave them);
    die_with_parent: workers die with this process (Linux)."""

    def __init__(self, workers: int, factory: Callable[[], Any], threads: int | None = None,
                 die_with_parent: bool = False) -> None:
        if workers < 1:
            raise PoolError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        ctx = mp.get_context("spawn")
        self._pool = ctx.Pool(workers, initializer=_init_worker,
                              initargs=(factory, threads, os.getpid() if die_with_parent else None))
        # The worker processes as started. multiprocessing.Pool replaces a worker that dies
        # (a segfault in a GL driver, the OOM killer) and loses the task it held: the
        # caller would wait for that result forever. Our workers never exit on their own
        # before close, so any exit of one of these is a death, raised as PoolError.
        self._procs = list(self._pool._pool)  # private attribute, stable since Python 3.2

    def imap(self, func: Callable[[Any, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """func(obj, item) for each item in a worker, results in input order."""
        return self._watched(self._pool.imap(functools.partial(_apply, func), items))

    def imap_unordered(self, func: Callable[[Any, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """func(obj, item) for each item in a worker, results as they finish."""
        return self._watched(self._pool.imap_unordered(functools.partial(_apply, func), items))

    def _watched(self, it: Any) -> Iterator[Any]:
        """The results of `it`, checking every WATCH_S while waiting that no worker died."""
        while True:
            try:
                yield it.next(timeout=WATCH_S)
            except StopIteration:
                return
            except mp.TimeoutError:
                self._check_workers()

    def _check_workers(self) -> None:
        dead = [p for p in self._procs if p.exitcode is not None]
        if not dead:
            return
        code = dead[0].exitcode
        how = f"signal {-code}" + (" (segmentation fault)" if code == -11 else " (killed)" if code == -9 else "") \
            if code < 0 else f"exit code {code}"
        self.terminate()
        raise PoolError(f"a worker process died ({how}) and the task it held is lost; the pool was stopped. "
                        "Rerun: runs and datasets resume from what was saved")

    def close(self) -> None:
        """Let the workers finish and exit."""
        self._pool.close()
        self._pool.join()

    def terminate(self) -> None:
        """Stop the workers now."""
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.terminate()


# ---- Ray -------------------------------------------------------------------------------

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


def require_ray(error: type[Exception] = PoolError):
    """`import_ray`, or `error` naming the extra to install."""
    try:
        return import_ray()
    except ImportError as e:
        raise error(
            f"--backend ray needs the optional dependency ray ({e}); install it with `pip install poseexaminer[ray]`"
        ) from None


def start_local_ray(ray, workers: int | None = None, init_kwargs: dict[str, Any] | None = None,
                    error: type[Exception] = PoolError) -> bool:
    """Start a local Ray instance with `local_ray_init_kwargs` unless one is already
    initialised in this process; True when this call started (and so owns) it. Refuses
    (`error`) to start one whose services would listen beyond loopback, which happens when
    ray was imported before `import_ray` could set LOOPBACK_RAY_ENV."""
    if ray.is_initialized():
        return False
    kw = local_ray_init_kwargs(workers)
    kw.update(init_kwargs or {})
    if not os.environ.get("RAY_ADDRESS"):
        node_ip = ray.util.get_node_ip_address()
        if not _is_loopback(node_ip):
            var = next(iter(LOOPBACK_RAY_ENV))
            raise error(
                f"a local Ray instance would listen on {node_ip} (ray was imported before PoseExaminer "
                f"could set {var}=0, or it is set to 1); set {var}=0 before importing ray, "
                "or start Ray yourself and pass its address in RAY_ADDRESS"
            )
    ray.init(**kw)
    return True


# ---- rendering -------------------------------------------------------------------------


def _make_renderer(config):
    from simulator.renderer import Renderer

    if config is not None and getattr(config, "renderer", "pyrender") != "pyrender":
        from simulator.renderer import get_renderer

        return get_renderer(config)
    return Renderer(config)


def _render_chunk(renderer, params_dicts: list[dict]):
    return renderer.render_batch([SceneParams.from_dict(d) for d in params_dicts])


class RenderPool:
    """`with RenderPool(workers=2) as pool: samples = pool.render_batch(params)`."""

    def __init__(self, workers: int = 2, config=None, chunk: int = 16) -> None:
        if workers < 1:
            from simulator.errors import ParamError

            raise ParamError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.chunk = chunk
        if config is not None and getattr(config, "renderer", "pyrender") == "blender" and config.blender_threads == 0:
            import dataclasses

            # Cycles threads: the cores shared out among the workers (the pixels do not depend on it).
            config = dataclasses.replace(config, blender_threads=max(1, (os.cpu_count() or 1) // workers))
        self._pool = WorkerPool(workers, functools.partial(_make_renderer, config), threads=1)

    def render_batch(self, params_list: Sequence[SceneParams]):
        dicts = [p.to_dict() for p in params_list]
        chunks = [dicts[i:i + self.chunk] for i in range(0, len(dicts), self.chunk)]
        out = []
        for part in self._pool.imap(_render_chunk, chunks):
            out.extend(part)
        return out

    def close(self) -> None:
        self._pool.terminate()

    def __enter__(self) -> "RenderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
