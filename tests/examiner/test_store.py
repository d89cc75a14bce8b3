"""The append-only run store."""

import json
import math

import numpy as np
import pytest

from examiner.store import EVAL_FILE, RunStore, StoreError


def rec(i, dim=3, err=50.0):
    return {"i": i, "round": i // 2, "agent": i % 2, "phase": "search", "job": None, "strategy": "random",
            "seed": 0, "u": [0.1 * i] * dim, "params": {}, "error": err, "value": err, "failed": err > 90,
            "metrics": {"pa_mpjpe": err}, "model_error": False, "model_error_message": None,
            "plausible": True, "timings": {"model": 0.001}}


def test_append_open_and_columns(tmp_path):
    s = RunStore.create(tmp_path / "r", {"config": {"seed": 0}, "space": {"dimensions": [{}, {}, {}]}})
    s.append([rec(0), rec(1, err=float("nan"))])
    s.append([rec(2, err=120.0)])
    s.close()
    t = RunStore.open(tmp_path / "r").evaluations()
    assert t.u.shape == (3, 3) and t.index.tolist() == [0, 1, 2]
    assert np.isnan(t.error[1]) and t.failed.tolist() == [False, False, True]
    assert t.metrics["pa_mpjpe"][2] == 120.0
    # NaN is stored as JSON null: the file is strict JSON
    line = (tmp_path / "r" / EVAL_FILE).read_text().splitlines()[1]
    assert json.loads(line)["error"] is None


def test_torn_last_line_is_ignored_then_repaired(tmp_path):
    s = RunStore.create(tmp_path / "r", {"space": {"dimensions": [{}, {}, {}]}})
    s.append([rec(0), rec(1)])
    s.close()
    path = tmp_path / "r" / EVAL_FILE
    good = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"i": 2, "round": 1, "agent"')  # a kill in the middle of a write
    assert RunStore.open(tmp_path / "r").n_evaluations == 2
    assert path.read_bytes() != good  # plain open does not modify
    s = RunStore.open(tmp_path / "r", repair=True)
    assert path.read_bytes() == good
    s.append([rec(2)])
    s.close()
    assert [r["i"] for r in RunStore.open(tmp_path / "r").records()] == [0, 1, 2]


def test_checkpoint_round_trip_and_consistency(tmp_path):
    s = RunStore.create(tmp_path / "r", {})
    assert s.load_checkpoint() is None
    s.append([rec(0)])
    s.save_checkpoint({"x": np.arange(3)})
    n, state = s.load_checkpoint()
    assert n == 1 and state["x"].tolist() == [0, 1, 2]
    s.close()
    (tmp_path / "r" / EVAL_FILE).write_text("")  # the log lost lines the checkpoint counts
    with pytest.raises(StoreError, match="damaged"):
        RunStore.open(tmp_path / "r").load_checkpoint()


def test_create_refuses_existing_run_and_open_refuses_non_run(tmp_path):
    RunStore.create(tmp_path / "r", {}).close()
    with pytest.raises(StoreError, match="already holds a run"):
        RunStore.create(tmp_path / "r", {})
    with pytest.raises(StoreError, match="not a run directory"):
        RunStore.open(tmp_path / "nothing")


def test_modes_and_summary_are_replaced_atomically(tmp_path):
    s = RunStore.create(tmp_path / "r", {})
    s.write_modes([{"id": 0, "rate": math.nan}])
    s.write_modes([{"id": 0}, {"id": 1}])
    assert [m["id"] for m in s.modes()] == [0, 1]
    assert not list((tmp_path / "r").glob("*.tmp"))
