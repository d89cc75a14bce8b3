"""The root commands not covered elsewhere: `-v` tracebacks, `space`, `evaluate` and
`train-baseline` (tiny), through the real command line in process."""

from __future__ import annotations

import csv
import json

import pytest

from examiner.app.cli import main
from examiner.targets.baseline import baseline_available
from simulator.errors import PoseExaminerError


def test_a_user_error_is_one_line_and_v_shows_the_traceback(capsys):
    assert main(["space", "--space", "no_such_group"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_group" in err and "\n" not in err and "Traceback" not in err
    with pytest.raises(PoseExaminerError, match="no_such_group"):  # the script prints its traceback
        main(["-v", "space", "--space", "no_such_group"])
    assert main(["space", "--space", "no_such_group"]) == 2  # -v does not stick to the next command


def test_space_lists_dimensions_with_units_and_bounds(capsys):
    from simulator.params import ParamSpace

    assert main(["space", "--space", "camera", "--json"]) == 0
    dims = json.loads(capsys.readouterr().out)
    expected = ParamSpace.from_groups("camera")
    assert [d["name"] for d in dims] == expected.names
    for d, dim in zip(dims, expected.dimensions):
        assert d["unit"] == dim.unit and d["low"] == dim.low and d["high"] == dim.high
    from examiner import console

    with console.console.capture() as captured:
        assert main(["space", "--space", "camera"]) == 0
    table = captured.get()  # rich may wrap long names at the terminal's width
    assert "dimension" in table and "unit" in table and "camera.az" in table and "choice" in table


@pytest.mark.skipif(not baseline_available(), reason="baseline weights not in assets/baseline/")
def test_evaluate_writes_a_table_and_summary(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--model", "baseline", "--n", "3", "--space", "camera", "--seed", "2",
                 "--render-workers", "0", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 3 and json.loads((out / "summary.json").read_text())["n"] == 3
    with open(out / "evaluations.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert main(["-q", "evaluate", "--model", "baseline", "--n", "3", "--out", str(out)]) == 2  # not empty


@pytest.mark.slow
def test_train_baseline_with_a_tiny_config(tmp_path, capsys):
    out = tmp_path / "baseline"
    assert main(["-q", "train-baseline", "--n", "6", "--val-n", "3", "--epochs", "1", "--workers", "1",
                 "--out", str(out)]) == 0
    for name in ("baseline.onnx", "baseline.yaml", "MODEL_CARD.md"):
        assert (out / name).stat().st_size > 0, name
    assert main(["-q", "train-baseline", "--n", "0", "--out", str(tmp_path / "x")]) == 2
