"""Parallel evaluation backends: sharding keeps row order and values."""

import builtins
import importlib.util

import numpy as np
import pytest

from examiner.search import BackendError, EvaluatorFactory, SearchConfig, run_search
from examiner.search.backends import ProcessPoolEvaluator, make_evaluator, shard_bounds
from examiner.store import RunStore
from simulator.params import ParamSpace


def test_shard_bounds_cover_rows_in_order():
    assert shard_bounds(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert shard_bounds(2, 4) == [(0, 1), (1, 2)]
    assert shard_bounds(0, 2) == []


SPACE = ParamSpace.from_groups("camera,shape")


@pytest.fixture(scope="module")
def factory():
    return EvaluatorFactory("analytic:planted", SPACE.to_dict())


def test_process_pool_matches_in_process(factory):
    U = np.random.default_rng(0).uniform(-1, 1, size=(37, SPACE.dim))
    local = factory().evaluate(U)
    pool = ProcessPoolEvaluator(factory, workers=2)
    try:
        sharded = pool.evaluate(U)
    finally:
        pool.close()
    assert [o.error for o in sharded] == [o.error for o in local]
    assert [o.plausible for o in sharded] == [o.plausible for o in local]


def test_run_with_two_workers_logs_what_one_worker_logs(tmp_path, factory):
    space = ParamSpace.from_dict(factory.space)
    cfg = SearchConfig(strategy="random", budget=200, agents=4, space="camera,shape")
    run_search(cfg, factory(), space, tmp_path / "one")
    run_search(cfg.replace(workers=2), make_evaluator(factory, "local", 2), space, tmp_path / "two")
    strip = lambda out: [{k: v for k, v in r.items() if k != "timings"} for r in RunStore.open(out).records()]  # noqa: E731
    assert strip(tmp_path / "one") == strip(tmp_path / "two")


def test_missing_ray_names_the_extra(monkeypatch, factory):
    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(BackendError, match=r"pip install poseexaminer\[ray\]"):
        make_evaluator(factory, "ray", 2)


@pytest.mark.slow
def test_ray_backend_matches_in_process(factory):
    if importlib.util.find_spec("ray") is None:  # not importorskip: ray must first be imported by import_ray
        pytest.skip("ray is not installed (optional extra [ray])")
    U = np.random.default_rng(1).uniform(-1, 1, size=(9, SPACE.dim))
    ev = make_evaluator(factory, "ray", 2)
    try:
        got = ev.evaluate(U)
    finally:
        ev.close()
    assert [o.error for o in got] == [o.error for o in factory().evaluate(U)]
