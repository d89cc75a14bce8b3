"""The one worker-pool layer (`simulator.pool`): order, per-process state, failures, threads."""

from __future__ import annotations

import functools
import os

import pytest

from simulator.pool import PoolError, WorkerPool, torch_threads


def _scaled(factor: int, x: int) -> tuple[int, int]:
    return factor * x, os.getpid()


def _no_renderer() -> None:
    raise ValueError("no renderer in this worker")


def test_workers_build_their_object_once_and_map_in_order():
    with WorkerPool(2, functools.partial(int, 3)) as pool:
        got = list(pool.imap(_scaled, range(6)))
        assert [v for v, _ in got] == [0, 3, 6, 9, 12, 15]
        assert os.getpid() not in {pid for _, pid in got}
        assert sorted(v for v, _ in pool.imap_unordered(_scaled, range(6))) == [0, 3, 6, 9, 12, 15]


def test_a_failing_factory_is_raised_by_the_first_task_not_a_hang():
    pool = WorkerPool(1, _no_renderer)
    try:
        with pytest.raises(ValueError, match="no renderer in this worker"):
            list(pool.imap(_scaled, [1]))
    finally:
        pool.terminate()
    with pytest.raises(PoolError, match="at least 1"):
        WorkerPool(0, _no_renderer)


def test_torch_threads_restores_the_callers_count():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def _crash_on(bad: int, x: int) -> int:
    if x == bad:
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)  # what a GL driver's segfault does to a render worker
    return x


def test_a_worker_that_dies_is_an_error_not_a_hang():
    """multiprocessing.Pool replaces a dead worker and loses its task; the caller then
    waited forever (a render worker's segfault hung `examiner finetune`)."""
    import time

    pool = WorkerPool(2, functools.partial(int, 3))
    t = time.monotonic()
    try:
        with pytest.raises(PoolError, match=r"worker process died \(signal 11 \(segmentation fault\)\)"):
            list(pool.imap(_crash_on, range(8)))
    finally:
        pool.terminate()
    assert time.monotonic() - t < 60
    with WorkerPool(1, functools.partial(int, 3)) as pool:
        with pytest.raises(PoolError, match="died"):
            list(pool.imap_unordered(_crash_on, [5, 3, 2]))


def test_a_posed_body_does_not_depend_on_the_callers_thread_count():
    """The body model is built on one intra-op thread whatever the caller runs with (and
    poses alike on any): before, a model first built by a report on two threads posed
    bodies a few ulps away from one built inside a search's one-thread scope, a scene's
    error moved in the 5th digit, and a peel's stage 2 searched differently in the same
    process than resumed."""
    import numpy as np

    from simulator.body_model import get_body_model
    from simulator.joints import POSE_DOFS
    from simulator.params import ALL_SHAPE_NAMES

    rng = np.random.default_rng(3)
    pose = rng.uniform(-0.4, 0.4, (6, len(POSE_DOFS)))
    shape = rng.uniform(0.1, 0.9, (6, len(ALL_SHAPE_NAMES)))
    outs = []
    try:
        for built, posed in ((2, 2), (1, 2), (2, 1)):
            get_body_model.cache_clear()
            with torch_threads(built):
                body = get_body_model("anny")
            with torch_threads(posed):
                out = body.forward(pose, shape)
            outs.append((out.vertices, out.joints))
            del body
    finally:
        get_body_model.cache_clear()
    for v, j in outs[1:]:
        assert np.array_equal(v, outs[0][0]) and np.array_equal(j, outs[0][1])
