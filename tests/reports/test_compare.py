"""diff and recheck: A's failure modes on another model are still failing, improved,
fixed, or joined by new ones."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from examiner.search.config import SearchConfig
from examiner.search.factory import build_evaluator
from examiner.search.runner import run_search
from examiner.app import report as cli
from examiner.app.report import recheck_run
from reports.compare import diff_runs
from reports.errors import ReportError
from reports.rundata import load_run
from simulator.params import ParamSpace
from tests.reports.conftest import write_synthetic_run

ROOT_PITCH_BOX = "analytic:box?dims=pose.root_pitch:0.7:1.0"


def _root_pitch_rank(run_dir) -> int:
    run = load_run(run_dir)
    i = run.space.names.index("pose.root_pitch")
    for m in run.modes:
        if m["lo"][i] > 0.5 and list(m.get("constrained", {})) == ["pose.root_pitch"]:
            return m["rank"]
    pytest.fail("the planted root-pitch mode was not found")


def test_recheck_on_the_same_model_keeps_every_mode(planted_run):
    cmp = recheck_run(planted_run, "analytic:planted", samples=30, probe=100, seed=1)
    assert cmp.modes and all(m.status == "still_failing" for m in cmp.modes)
    assert all(m.n_b == 30 and m.rate_b >= 0.8 for m in cmp.modes)
    assert cmp.probe["compared_with_a"] and cmp.probe["new_failures"] == 0
    assert cmp.counts()["new"] == 0


def test_recheck_on_a_model_that_fails_elsewhere(planted_run):
    """The box target fails only for root pitch in [0.7, 1]: that mode still fails, the
    others drop to the box's share of their volume; failures of the box target outside
    A's modes that pass on A are new."""
    cmp = recheck_run(planted_run, ROOT_PITCH_BOX, samples=40, probe=300, seed=2)
    rank = _root_pitch_rank(planted_run)
    by_rank = {m.rank: m for m in cmp.modes}
    assert by_rank[rank].status == "still_failing"
    for r, m in by_rank.items():
        if r != rank:
            assert m.status in ("improved", "fixed") and m.rate_b < 0.5, (r, m)
    # No new failures: the box lies inside A's root-pitch mode.
    assert cmp.probe["new_failures"] == 0


def test_recheck_finds_new_failures(planted_run):
    cmp = recheck_run(planted_run, "analytic:box?dims=camera.roll:-1.0:-0.6", samples=10, probe=300, seed=3)
    assert cmp.probe["new_failures"] > 20  # ~20% of the space fails only on the new model
    assert cmp.counts()["new"] == cmp.probe["new_failures"]


def test_diff_of_two_searches(planted_run, tmp_path):
    space = ParamSpace.from_groups("joints,camera")
    cfg = SearchConfig(strategy="random", budget=500, agents=4, seed=0, space="joints,camera").validate()
    spec = "analytic:box?dims=pose.root_pitch:0.7:1.0,camera.roll:-1.0:-0.6"
    run_search(cfg, build_evaluator(spec, space, cfg.failure_threshold, 0), space, tmp_path / "b", model_spec=spec)
    cmp = diff_runs(planted_run, tmp_path / "b")
    rank = _root_pitch_rank(planted_run)
    by_rank = {m.rank: m for m in cmp.modes}
    assert by_rank[rank].status == "still_failing" and by_rank[rank].matched
    assert all(m.status != "still_failing" for r, m in by_rank.items() if r != rank)
    # B's mode (root pitch and roll) overlaps A's root-pitch mode: not new.
    assert cmp.new == []
    # Reversed: A's root-pitch mode contains B's; B's other regions are not in A -> A's
    # view of B lists nothing new either, and every B mode is matched.
    back = diff_runs(tmp_path / "b", planted_run)
    assert all(m.status == "still_failing" for m in back.modes)


def test_diff_judges_by_the_confirmed_rate(planted_run, tmp_path):
    """A mode of B that passed verification but fails only half of its confirmation samples
    does not make A's mode "still failing"."""
    import shutil

    shutil.copytree(planted_run, tmp_path / "b")
    path = tmp_path / "b" / "modes.json"
    modes = json.loads(path.read_text())
    for m in modes["modes"]:
        assert m["verified"]["rate"] >= 0.8
        m["confirmed"] = {**m["confirmed"], "n": 40, "k": 20, "rate": 0.5, "interval": [0.35, 0.65]}
    path.write_text(json.dumps(modes))
    cmp = diff_runs(planted_run, tmp_path / "b")
    assert cmp.modes and all(m.status == "improved" and m.rate_b == 0.5 for m in cmp.modes)
    assert all(m.status == "still_failing" for m in diff_runs(planted_run, planted_run).modes)


def test_diff_refuses_different_spaces(planted_run, tmp_path):
    other = write_synthetic_run(tmp_path / "other", n=50, model="x")
    with pytest.raises(ReportError, match="different dimensions"):
        diff_runs(planted_run, other)


def test_compare_cli_gates_and_junit(planted_run, tmp_path, capsys):
    args = ["recheck", str(planted_run), "--model", ROOT_PITCH_BOX, "--samples", "20", "--probe", "0",
            "--out", str(tmp_path / "c.json"), "--junit", str(tmp_path / "c.xml")]
    assert cli.main(args) == 0
    assert cli.main(args + ["--fail-on", "still_failing>0"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: gate failed: still_failing>0 (still_failing = 1)"
    assert cli.main(args + ["--fail-on", "modes>0", "--fail-on", "fixedd>0"]) == 2
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["counts"]["still_failing"] == 1 and data["kind"] == "recheck"
    root = ET.parse(tmp_path / "c.xml").getroot()
    cases = list(root.iter("testcase"))
    failing = [c for c in cases if c.find("failure") is not None]
    assert len([c for c in cases if c.get("name").startswith("mode ")]) == len(data["modes"])
    # The file is from the second call (the third stopped at its bad rule before any
    # work): one mode still failing and the tripped gate.
    assert len(failing) == 2
    assert cli.main(["recheck", str(planted_run), "--model", "nonsense:x"]) == 2
    assert "unknown model spec" in capsys.readouterr().err
