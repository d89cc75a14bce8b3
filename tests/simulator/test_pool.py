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
