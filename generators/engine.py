"""Sharded, resumable dataset writing shared by every generator.

A dataset directory:

    OUT/
      manifest.json          kind, config, seeds, versions, layout, status (atomic)
      index.json             complete shards: first sample, count, directory (atomic)
      shards/shard-00000/    samples [0, S), written as shards/.shard-00000.partial-<pid>
      shards/shard-00001/    and renamed when complete (a rename is atomic)
      ...                    + the generator's merged outputs (annotations.json, data.yaml)

Sample i belongs to shard i // shard_size and nowhere else. Its random stream is
`numpy.random.default_rng(SeedSequence(seed, spawn_key=(i,)))` -- the i-th child
`SeedSequence(seed).spawn` would give -- so any sample can be regenerated alone
(`regenerate_sample`). `resume=True` keeps complete shards, deletes partial ones and
renders only the missing shards: a kill at any moment loses at most the shards in
flight and never duplicates a sample. Merged outputs are rebuilt from the shards' own
`shard.json` files at the end.

Backends: in-process (workers=1), `workers` spawned processes (one renderer each), or
Ray actors (`backend="ray"`, optional dependency).
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import shutil
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from examiner.store import fsync_dir
from generators.base import (  # noqa: F401  (the shard layout, re-exported for readers of datasets)
    DATASET_FORMAT, DATASET_VERSION, INDEX, MANIFEST, SHARD_FILE, SHARDS, CommonConfig, GeneratorSpec, SampleWriter,
    atomic_write_text, complete_shards, config_from_dict, config_to_dict, dumps, iter_shards, read_shard,
    remove_partial_shards, sample_rng, sample_seed_sequence, shard_dir, shard_name,
)
from generators.errors import GeneratorError
from generators.registry import generator_spec
from simulator.batch import SIMULATOR_PACKAGES, package_versions
from simulator.errors import PoseExaminerError
from simulator.pool import WorkerPool, require_ray, set_worker_threads, start_local_ray, torch_threads


def make_writer(kind: str, config) -> SampleWriter:
    return generator_spec(kind).writer(config)


# --------------------------------------------------------------------------------------
# Writing one shard (runs in a worker)
# --------------------------------------------------------------------------------------


def write_shard(
    kind: str,
    config,
    out: Path,
    k: int,
    writer: SampleWriter,
    tick: Callable[[int], None] | None = None,
) -> dict:
    """Render shard k into a partial directory, then rename it into place."""
    out = Path(out)
    first = k * config.shard_size
    last = min(config.n, first + config.shard_size)
    final = shard_dir(out, k)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    records = []
    rel = f"{SHARDS}/{final.name}"
    step = max(1, int(getattr(writer, "batch_size", 1)))
    for a in range(first, last, step):
        idx = list(range(a, min(a + step, last)))
        records += writer.write_batch(idx, [sample_rng(config.seed, i) for i in idx], tmp, rel)
        if tick:
            tick(len(idx))
    shard = {
        "kind": kind,
        "shard": k,
        "first": first,
        "count": last - first,
        "dir": rel,
        "seconds": round(time.perf_counter() - t0, 3),
        "records": records,
    }
    with open(tmp / SHARD_FILE, "w") as f:
        f.write(dumps(shard))
        f.flush()
        os.fsync(f.fileno())
    for p in tmp.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    try:
        os.rename(tmp, final)  # atomic; fails if a complete shard k is already in place
    except OSError:
        if not (final / SHARD_FILE).is_file():
            raise
        # A worker orphaned by a killed run finished the same (deterministic) shard first.
        shutil.rmtree(tmp, ignore_errors=True)
        return {k2: v for k2, v in read_shard(final).items() if k2 != "records"}
    fsync_dir(final.parent)
    return {k2: v for k2, v in shard.items() if k2 != "records"}


# ---- local process pool ----------------------------------------------------------------------

class _ShardWorker:
    """A worker process's generator state (built once per process by `WorkerPool`)."""

    def __init__(self, kind: str, config, out: str, queue) -> None:
        self.kind, self.config, self.out, self.queue = kind, config, Path(out), queue
        self.writer = make_writer(kind, config)


def _write_shard_in_worker(worker: _ShardWorker, k: int) -> dict:
    q = worker.queue
    return write_shard(worker.kind, worker.config, worker.out, k, worker.writer, tick=q.put if q is not None else None)


def _run_local(kind, config, out: Path, todo: list[int], workers: int, on_progress, on_shard) -> None:
    if workers <= 1:
        with torch_threads(1):  # the body model at small batches beside the GL rasteriser
            writer = make_writer(kind, config)
            for k in todo:
                on_shard(write_shard(kind, config, out, k, writer, tick=on_progress))
        return
    queue = mp.get_context("spawn").Queue()
    stop = threading.Event()

    def drain() -> None:
        import queue as q_mod

        while not stop.is_set():
            try:
                n = queue.get(timeout=0.1)
            except q_mod.Empty:
                continue
            except (EOFError, OSError):
                return
            on_progress(n)

    th = threading.Thread(target=drain, daemon=True)
    th.start()
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = WorkerPool(workers, functools.partial(_ShardWorker, kind, config, str(out), queue), threads=threads,
                      die_with_parent=True)
    try:
        for summary in pool.imap_unordered(_write_shard_in_worker, todo):
            on_shard(summary)
        pool.close()
    finally:
        pool.terminate()
        stop.set()
        th.join(timeout=2)


def _run_ray(kind, config, out: Path, todo: list[int], workers: int, on_progress, on_shard) -> None:
    ray = require_ray(GeneratorError)
    # a local instance listening on loopback only; an existing cluster (RAY_ADDRESS) sizes itself
    owns = start_local_ray(ray, workers, error=GeneratorError)

    @ray.remote(num_cpus=1)
    class ShardActor:
        def __init__(self, kind, config, out):
            set_worker_threads(1)
            self.kind, self.config, self.out = kind, config, Path(out)
            self.writer = make_writer(kind, config)

        def run(self, k):
            return write_shard(self.kind, self.config, self.out, k, self.writer)

    actors = [ShardActor.remote(kind, config, str(out)) for _ in range(max(1, min(workers, len(todo))))]
    try:
        pending = {}
        queue = list(todo)
        for a in actors:
            if queue:
                pending[a.run.remote(queue.pop(0))] = a
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            actor = pending.pop(ref)
            try:
                summary = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                cause = getattr(e, "cause", None)
                if isinstance(cause, PoseExaminerError):  # a user error stays one line
                    raise cause from None
                raise
            on_progress(summary["count"])
            on_shard(summary)
            if queue:
                pending[actor.run.remote(queue.pop(0))] = actor
    finally:
        for a in actors:
            ray.kill(a)
        if owns:
            ray.shutdown()


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    return package_versions(SIMULATOR_PACKAGES + ("pycocotools", "pillow", "ray"))


def _comparable(config_dict: dict) -> dict:
    """JSON round trip, so tuples and lists compare equal."""
    return json.loads(json.dumps(config_dict))


def run_dataset(
    kind: str,
    config,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    backend: str = "local",
    resume: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Generate (or resume) dataset `kind` with `config` into `out`; returns a summary."""
    gen = generator_spec(kind)
    config.check()
    if workers < 1:
        raise GeneratorError(f"--workers must be at least 1, got {workers}")
    if backend not in ("local", "ray"):
        raise GeneratorError(f"unknown backend {backend!r}; choose local or ray")
    if backend == "ray":
        require_ray(GeneratorError)
    gen.prepare(config)  # validate inputs (run directory, space) before any work
    out = Path(out)
    cfg = config_to_dict(config)
    man_path = out / MANIFEST
    if man_path.exists():
        try:
            old = json.loads(man_path.read_text())
        except json.JSONDecodeError:
            raise GeneratorError(f"{man_path} is damaged; remove {out} or choose another --out") from None
        if not resume:
            raise GeneratorError(f"{out} already holds a dataset; pass --resume to finish it or choose another --out")
        if old.get("kind") != kind or _comparable(old.get("config", {})) != _comparable(cfg):
            raise GeneratorError(
                f"--resume with a different configuration than {out} was started with; "
                "use the same options (see its manifest.json) or another --out"
            )
        created = old.get("created")
    else:
        if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
            raise GeneratorError(f"{out} is not empty and holds no dataset; choose an empty or new --out")
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        return _run_locked(gen, kind, config, out, cfg, created, workers, backend, on_progress)
    finally:
        lock.close()


def _lock(out: Path):
    """An exclusive lock on OUT/.lock for the whole run (released by the kernel on kill)."""
    import fcntl

    f = open(out / ".lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise GeneratorError(f"another generator is writing {out}; wait for it or choose another --out") from None
    return f


def _run_locked(gen, kind, config, out: Path, cfg: dict, created, workers, backend, on_progress) -> dict:
    man_path = out / MANIFEST
    (out / SHARDS).mkdir(exist_ok=True)
    n_shards = (config.n + config.shard_size - 1) // config.shard_size
    manifest = {
        "format": DATASET_FORMAT,
        "format_version": DATASET_VERSION,
        "kind": kind,
        "created": created,
        "config": cfg,
        "seeds": {
            "root": int(config.seed),
            "per_sample": "numpy.random.default_rng(numpy.random.SeedSequence(root, spawn_key=(index,)))",
        },
        "n": config.n,
        "shard_size": config.shard_size,
        "n_shards": n_shards,
        "layout": gen.layout,
        "versions": versions(),
        "status": "incomplete",
    }
    atomic_write_text(man_path, dumps(manifest, indent=1))
    removed = remove_partial_shards(out)
    done = complete_shards(out)
    todo = [k for k in range(n_shards) if k not in done]
    skipped = sum(min(config.n, (k + 1) * config.shard_size) - k * config.shard_size for k in done if k < n_shards)
    summaries: dict[int, dict] = {k: {key: v for key, v in read_shard(d).items() if key != "records"} for k, d in done.items()}

    def write_index() -> None:
        index = {"n_shards": n_shards, "complete": [summaries[k] for k in sorted(summaries)]}
        atomic_write_text(out / INDEX, dumps(index, indent=1))

    def on_shard(summary: dict) -> None:
        summaries[summary["shard"]] = summary
        write_index()

    progress = on_progress or (lambda n: None)
    t0 = time.perf_counter()
    if todo:
        runner = _run_ray if backend == "ray" else _run_local
        runner(kind, config, out, todo, workers, progress, on_shard)
    elapsed = time.perf_counter() - t0
    write_index()
    merged = gen.finalize(config, out)
    rendered = config.n - skipped
    manifest.update(
        status="complete",
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        outputs=merged,
        last_run={"workers": workers, "backend": backend, "rendered": rendered, "skipped": skipped,
                  "partial_shards_removed": removed, "seconds": round(elapsed, 3),
                  "images_per_second": round(rendered / elapsed, 3) if elapsed > 0 and rendered else None},
    )
    atomic_write_text(man_path, dumps(manifest, indent=1))
    return {"out": str(out), "kind": kind, "n": config.n, "rendered": rendered, "skipped": skipped,
            "seconds": elapsed, "outputs": merged}


def regenerate_sample(out: str | os.PathLike, index: int, dest: str | os.PathLike) -> dict:
    """Render sample `index` of the dataset in `out` again, alone, into `dest`; returns its
    record (equal to the stored one: per-sample seeds make it independent of the rest)."""
    out = Path(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        raise GeneratorError(f"{out} holds no readable {MANIFEST}; is it a generated dataset?") from None
    gen = generator_spec(manifest["kind"])
    config = config_from_dict(gen.config_class, manifest["config"])
    if not 0 <= index < config.n:
        raise GeneratorError(f"sample index {index} is outside 0..{config.n - 1}")
    k = index // config.shard_size
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    writer = make_writer(manifest["kind"], config)
    return writer.write_batch([index], [sample_rng(config.seed, index)], dest, f"{SHARDS}/{shard_name(k)}")[0]
