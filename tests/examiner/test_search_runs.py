"""End-to-end search runs: determinism, budgets, bad configs, resume after kill -9."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from examiner.search import (
    PPOConfig, ResumeError, SearchConfig, SearchConfigError, build_evaluator, run_search,
)
from examiner.app.run import main as cli_main
from examiner.store import RunStore
from simulator.errors import ParamError, PoseExaminerError
from simulator.params import ParamSpace

TINY_PPO = PPOConfig(n_steps=6, batch_size=24, n_epochs=2, net_arch=(32, 32))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def space():
    return ParamSpace.from_groups("joints,shape,camera")


def config(strategy, budget=400, seed=0, agents=4):
    return SearchConfig(strategy=strategy, budget=budget, agents=agents, seed=seed, ppo=TINY_PPO, checkpoint_every=5)


def log(out):
    """The evaluation log without wall-clock timings."""
    return [{k: v for k, v in r.items() if k != "timings"} for r in RunStore.open(out).records()]


@pytest.mark.parametrize("strategy", ["marl", "random", "cmaes", "reinforce", "hillclimb", "qd"])
def test_same_seed_gives_identical_log(tmp_path, space, strategy):
    ev = build_evaluator("analytic:planted", space)
    a = run_search(config(strategy), ev, space, tmp_path / "a")
    b = run_search(config(strategy), ev, space, tmp_path / "b")
    la, lb = log(tmp_path / "a"), log(tmp_path / "b")
    assert la == lb and len(la) == a.evaluations <= 400
    assert [r["i"] for r in la] == list(range(len(la)))
    c = run_search(config(strategy, seed=1), ev, space, tmp_path / "c")
    assert log(tmp_path / "c") != la
    assert a.modes == b.modes
    store = RunStore.open(tmp_path / "a")
    assert store.metadata["seeds"]["root"] == 0 and store.metadata["versions"]["numpy"]
    assert store.summary()["evaluations"] == a.evaluations
    # every strategy gets its region growing from the same shared machinery
    phases = set(store.evaluations().phase.tolist())
    assert "search" in phases and "probe" in phases


def test_error_value_and_metric_are_one_quantity(tmp_path, space):
    """Outcome.error, Scored.value (the log's "value") and metrics[--metric] are the same
    number: the evaluator is built for the run's metric, and an evaluator whose error is
    another metric is refused instead of logging two different numbers."""
    from examiner.search import EvaluatorError, Outcome
    from examiner.search.factory import EvaluatorFactory

    cfg = SearchConfig(strategy="random", budget=60, agents=4, seed=0, metric="mpjpe", threshold=110.0)
    ev = EvaluatorFactory("analytic:planted", space.to_dict(), cfg.failure_threshold, cfg.seed, cfg.metric)()
    run_search(cfg, ev, space, tmp_path / "a")
    recs = [r for r in log(tmp_path / "a") if not r["model_error"]]
    assert recs and all(r["error"] == r["value"] == r["metrics"]["mpjpe"] for r in recs)
    assert any(r["metrics"]["mpjpe"] != r["metrics"]["pa_mpjpe"] for r in recs)

    class OtherMetric:  # error is pa_mpjpe, the run's metric mpjpe
        def evaluate(self, U):
            return [Outcome(50.0, {"pa_mpjpe": 50.0, "mpjpe": 70.0}) for _ in U]

    with pytest.raises(EvaluatorError, match="is not its mpjpe"):
        run_search(cfg, OtherMetric(), space, tmp_path / "b")
    with pytest.raises(SearchConfigError, match="analytic targets report pa_mpjpe and mpjpe"):
        build_evaluator("analytic:planted", space, metric="pck")


def _box_iou(lo, hi, bounds, names):
    """IoU of a mode's box with a planted region's box (free dimensions span [-1, 1])."""
    plo, phi = -np.ones(len(names)), np.ones(len(names))
    for d, (a, b) in bounds.items():
        plo[names.index(d)], phi[names.index(d)] = a, b
    inter = np.prod(np.clip(np.minimum(hi, phi) - np.maximum(lo, plo), 0.0, None))
    return float(inter / (np.prod(hi - lo) + np.prod(phi - plo) - inter))


def test_marl_recovers_every_planted_region_as_a_box_and_logs_complete_records(tmp_path, space):
    """Not a MARL-vs-random comparison (random search recovers these three large regions
    too; that comparison is benchmarks/bench_search.py's): the whole pipeline, search,
    region growing, verification and merging, must return each planted box and nothing
    else. Measured IoUs 0.40-0.49 (edges are kept conservative, within the bisection
    tolerance of 1/16 per side)."""
    from examiner.search.analytic import PLANTED_REGIONS, AnalyticEvaluator

    regions = PLANTED_REGIONS[:3]  # 1, 2 and 3 constrained dimensions
    ev = AnalyticEvaluator(space, regions=regions)
    res = run_search(config("marl", budget=1200, agents=8), ev, space, tmp_path / "m")
    iou = np.array([[_box_iou(np.array(m["lo"]), np.array(m["hi"]), r.bounds, space.names) for r in regions]
                    for m in res.modes])
    assert len(res.modes) == len(regions)
    assert (iou.max(axis=0) >= 0.3).all(), iou  # every planted region recovered as a box
    assert (iou.max(axis=1) >= 0.3).all(), iou  # every mode is one of them
    for m in res.modes:
        v = m["verified"]
        # all 40 samples, or the first 20 when their Wilson interval already clears 0.8
        assert v["rate"] >= 0.8 and v["n"] + v["implausible"] in (20, 40) and v["n"] >= 10
        assert v["n"] + v["implausible"] == 40 or v["interval"][0] >= 0.8
        assert m["verified"]["interval"][0] <= m["verified"]["rate"] <= m["verified"]["interval"][1]
    t = RunStore.open(tmp_path / "m").evaluations()
    assert t.u.shape == (res.evaluations, space.dim)
    assert set(t.agent[t.phase == "search"].tolist()) == set(range(8))
    r = t.records[0]
    assert set(r) >= {"u", "params", "metrics", "model_error", "timings", "agent", "strategy", "seed", "i"}
    # The logged scene maps back to the logged vector (categorical dimensions to their bin).
    back = space.to_vector(__import__("simulator.params", fromlist=["SceneParams"]).SceneParams.from_dict(r["params"]))
    cont = np.array([d.choices is None for d in space.dimensions])
    assert np.allclose(back[cont], np.asarray(r["u"])[cont])
    assert [space.dimensions[i].to_physical(back[i]) for i in np.flatnonzero(~cont)] == \
        [space.dimensions[i].to_physical(r["u"][i]) for i in np.flatnonzero(~cont)]


def test_many_target_has_small_regions_in_every_group(space):
    from examiner.search.analytic import MANY_REGIONS

    ev = build_evaluator("analytic:many", space)
    assert len(ev.regions) == len(MANY_REGIONS) == 32  # all in the benchmark space
    vols = np.array([r.volume_fraction() for r in MANY_REGIONS])
    assert vols.max() < 0.03 and (vols <= 1e-4 + 1e-12).sum() == 24
    groups = {d.group for r in MANY_REGIONS for d in space.dimensions if d.name in r.bounds}
    assert groups == {"joints", "shape", "camera"}
    rng = np.random.default_rng(0)
    for r in MANY_REGIONS[::5]:  # a point inside fails, one just outside does not (halo)
        u = rng.uniform(-0.5, 0.5, space.dim)
        for d, (lo, hi) in r.bounds.items():
            u[space.names.index(d)] = 0.5 * (lo + hi)
        err_in, inside = ev.error_field(u[None])
        assert err_in[0] > 90 and inside[0].any()
        d0 = next(iter(r.bounds))
        u[space.names.index(d0)] = r.bounds[d0][1] + 0.05
        err_out, inside = ev.error_field(u[None])
        if not inside[0].any():
            assert 60 < err_out[0] < 90


class CrashingEvaluator:
    """Raises (like a dying renderer) once `limit` rows have been evaluated."""

    def __init__(self, inner, limit):
        self.inner, self.limit, self.done = inner, limit, 0

    def evaluate(self, U):
        if self.done + len(U) > self.limit:
            raise RuntimeError("renderer died")
        self.done += len(U)
        return self.inner.evaluate(U)


@pytest.mark.parametrize("strategy", ["marl", "cmaes", "random", "hillclimb", "qd"])
def test_resume_after_crash_replays_and_matches_uninterrupted_run(tmp_path, space, strategy):
    ev = build_evaluator("analytic:planted", space)
    run_search(config(strategy), ev, space, tmp_path / "ref")
    reference = log(tmp_path / "ref")
    # Crash points where evaluations were logged after the last checkpoint (the case
    # that needs replay); a crash right after a checkpoint is tried on the next limit.
    for limit in (290, 263, 241, 219, 197):
        run = tmp_path / f"run{limit}"
        with pytest.raises(RuntimeError, match="renderer died"):
            run_search(config(strategy), CrashingEvaluator(ev, limit), space, run)
        store = RunStore.open(run)
        n_logged = store.n_evaluations
        n_ckpt, _ = store.load_checkpoint()
        if 0 < n_ckpt < n_logged:
            break
    assert 0 < n_ckpt < n_logged <= limit
    with open(run / "evaluations.jsonl", "ab") as f:
        f.write(b'{"i": 999, "torn')  # and the last write was torn
    res = run_search(config(strategy), ev, space, run, resume=True)
    assert res.resumed_from == n_ckpt
    assert log(run) == reference  # nothing lost, nothing duplicated, same decisions


def test_checkpoint_from_another_state_version_replays_the_whole_log(tmp_path, space):
    ev = build_evaluator("analytic:planted", space)
    run_search(config("marl"), ev, space, tmp_path / "ref")
    reference = log(tmp_path / "ref")
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="renderer died"):
        run_search(config("marl"), CrashingEvaluator(ev, 241), space, run)
    store = RunStore.open(run)
    n_ckpt, state = store.load_checkpoint()
    assert n_ckpt > 0
    state["state_version"] = -1  # as if written by a search whose job objects differ
    store.save_checkpoint(state)
    res = run_search(config("marl"), ev, space, run, resume=True)
    assert res.resumed_from == 0
    assert log(run) == reference


def test_checkpoint_naming_moved_classes_replays_the_whole_log(tmp_path, space, monkeypatch):
    """A checkpoint pickled before regions.py was split names examiner.search.regions,
    which no longer exists: resume must replay the log, not fail."""
    import sys
    import types

    ev = build_evaluator("analytic:planted", space)
    run_search(config("random"), ev, space, tmp_path / "ref")
    reference = log(tmp_path / "ref")
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="renderer died"):
        run_search(config("random"), CrashingEvaluator(ev, 241), space, run)
    store = RunStore.open(run)
    n_ckpt, state = store.load_checkpoint()
    assert n_ckpt > 0
    old = types.ModuleType("examiner.search.regions")

    class RegionGrowth:  # the old home of the job class
        pass

    RegionGrowth.__module__, RegionGrowth.__qualname__ = old.__name__, "RegionGrowth"
    old.RegionGrowth = RegionGrowth
    with monkeypatch.context() as m:
        m.setitem(sys.modules, old.__name__, old)
        state["session"]["jobs"] = [RegionGrowth()]
        store.save_checkpoint(state)
    assert "examiner.search.regions" not in sys.modules
    assert store.load_checkpoint() is None
    res = run_search(config("random"), ev, space, run, resume=True)
    assert res.resumed_from == 0
    assert log(run) == reference


@pytest.mark.parametrize("strategy", ["marl", "random", "qd"])
def test_a_run_killed_after_its_search_resumes_to_the_uninterrupted_results(tmp_path, space, strategy):
    """Killed in the post-processing (mode confirmation, constraint tests, failure factors:
    minutes for a real model), after the search's last checkpoint: the resume goes
    straight on to the post-processing. Before, the strategy ran again and spent the budget
    its last region-growing jobs had reserved (381 -> 397 evaluations for MARL at 400)."""
    ev = build_evaluator("analytic:planted", space)
    ref = run_search(config(strategy), ev, space, tmp_path / "ref")
    assert ref.evaluations < 400  # budget left over: what a rerun strategy would spend
    reference, ref_modes = log(tmp_path / "ref"), json.loads((tmp_path / "ref" / "modes.json").read_text())
    ref_summary = {k: v for k, v in RunStore.open(tmp_path / "ref").summary().items() if k != "elapsed_s"}
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="renderer died"):
        run_search(config(strategy), CrashingEvaluator(ev, ref.evaluations + 30), space, run)
    store = RunStore.open(run)
    assert store.summary() is None and store.n_evaluations == ref.evaluations  # died after the search
    res = run_search(config(strategy), ev, space, run, resume=True)
    assert res.evaluations == ref.evaluations and log(run) == reference
    assert json.loads((run / "modes.json").read_text()) == ref_modes
    assert {k: v for k, v in RunStore.open(run).summary().items() if k != "elapsed_s"} == ref_summary
    # A finished run resumed with its own budget searches no further either.
    run_search(config(strategy), ev, space, run, resume=True)
    assert log(run) == reference


def test_finished_run_can_be_extended_but_interrupted_one_keeps_its_budget(tmp_path, space):
    ev = build_evaluator("analytic:planted", space)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError):
        run_search(config("random", budget=300), CrashingEvaluator(ev, 150), space, run)
    with pytest.raises(ResumeError, match="resume it without --budget"):
        run_search(config("random", budget=400), ev, space, run, resume=True)
    first = run_search(config("random", budget=300), ev, space, run, resume=True)
    prefix = log(run)
    more = run_search(config("random", budget=400), ev, space, run, resume=True)
    assert first.evaluations == len(prefix) <= 300 < more.evaluations <= 400
    assert log(run)[: len(prefix)] == prefix
    assert [r["i"] for r in log(run)] == list(range(more.evaluations))


def test_resume_refuses_a_changed_config(tmp_path, space):
    ev = build_evaluator("analytic:planted", space)
    run_search(config("random", budget=100), ev, space, tmp_path / "r")
    with pytest.raises(ResumeError, match="seed"):
        run_search(config("random", budget=100, seed=5), ev, space, tmp_path / "r", resume=True)
    with pytest.raises(ResumeError, match="not a run directory"):
        run_search(config("random"), ev, space, tmp_path / "nothing", resume=True)
    with pytest.raises(ResumeError, match="already holds a run"):
        run_search(config("random"), ev, space, tmp_path / "r")


@pytest.mark.parametrize("cfg, match", [
    (dict(budget=0), "budget must be a positive"),
    (dict(budget=-5), "budget must be a positive"),
    (dict(metric="pck"), "no default failure threshold; pass --threshold"),
    (dict(strategy="annealing"), "unknown strategy 'annealing'"),
    (dict(agents=0), "agents must be at least 1"),
    (dict(backend="dask"), "unknown backend"),
])
def test_bad_configs_give_one_line_errors(cfg, match):
    with pytest.raises(SearchConfigError, match=match) as e:
        SearchConfig(**cfg).validate()
    assert "\n" not in str(e.value) and isinstance(e.value, PoseExaminerError)


def test_threshold_given_for_custom_metric_is_accepted():
    assert SearchConfig(metric="pck", threshold=0.5).validate().failure_threshold == 0.5


def test_unknown_space_group_is_a_one_line_error():
    with pytest.raises(ParamError, match="unknown space group or dimension 'stance'"):
        ParamSpace.from_groups("stance,camera")


def test_yaml_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("strategy: cmaes\nbudget: 300\nregion:\n  verify_samples: 30\nppo:\n  net_arch: [16, 16]\n")
    c = SearchConfig.from_yaml(p).validate()
    assert c.strategy == "cmaes" and c.region.verify_samples == 30 and c.ppo.net_arch == (16, 16)
    assert SearchConfig.from_dict(c.to_dict()) == c
    p.write_text("budgte: 3\n")
    with pytest.raises(SearchConfigError, match="unknown option 'budgte'"):
        SearchConfig.from_yaml(p)
    p.write_text("budget: [\n")
    with pytest.raises(SearchConfigError, match="not valid YAML"):
        SearchConfig.from_yaml(p)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["run", "--model", "analytic:planted", "--budget", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: budget must be a positive number of evaluations, got 0"
    assert cli_main(["run", "--model", "analytic:planted", "--space", "pose,bogus", "--out", str(tmp_path / "x")]) == 2
    assert "unknown space group or dimension 'bogus'" in capsys.readouterr().err
    assert cli_main(["run", "--model", "resnet:foo", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model spec" in capsys.readouterr().err
    assert cli_main(["run", "--model", "analytic:planted", "--metric", "pck", "--out", str(tmp_path / "x")]) == 2
    assert "pass --threshold" in capsys.readouterr().err


def _count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.endswith(b"\n"))
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("strategy", ["marl", "reinforce"])
def test_resume_after_kill_9_loses_and_duplicates_nothing(tmp_path, strategy):
    """Start a slowed run in a subprocess, kill -9 it mid-run, resume it through the CLI,
    and compare with an uninterrupted run of the same config."""
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        f"strategy: {strategy}\nbudget: 500\nagents: 4\nseed: 3\nspace: joints,shape,camera\ncheckpoint_every: 5\n"
        "ppo:\n  n_steps: 6\n  batch_size: 24\n  n_epochs: 2\n  net_arch: [32, 32]\n"
    )
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "examiner.app.run", "run", "--config", str(cfg_file),
           "--model", "analytic:planted?delay=0.05", "--out", str(run), "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    # Wait for the condition "a checkpoint exists and more lines were logged after it",
    # between checks waiting on the child itself (so its exit ends the wait at once).
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / "checkpoint.pkl").exists() and _count_lines(run / "evaluations.jsonl") >= 150:
            break
        try:
            proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            pass
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _count_lines(run / "evaluations.jsonl")
    assert 0 < killed_at < 500 and not (run / "summary.json").exists()

    r = subprocess.run([sys.executable, "-m", "examiner.app.run", "run", "--resume", str(run), "-q", "--json"],
                       cwd=REPO, env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-1000:]
    resumed = log(run)
    assert [x["i"] for x in resumed] == list(range(len(resumed)))  # no loss, no duplicate

    ref_dir = tmp_path / "ref"
    r = subprocess.run(cmd[:-3] + ["--out", str(ref_dir), "-q"], cwd=REPO, env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-1000:]
    assert resumed == log(ref_dir)
    assert RunStore.open(run).modes() == RunStore.open(ref_dir).modes()


def test_progress_callback_and_rich_display(tmp_path, space):
    import io

    from rich.console import Console

    from examiner.search.progress import RichProgress

    events = []
    ev = build_evaluator("analytic:planted", space)
    buf = io.StringIO()
    with RichProgress(300, console=Console(file=buf, force_terminal=False, width=150)) as show:
        def both(e):
            events.append(e)
            show(e)

        res = run_search(config("random", budget=300), ev, space, tmp_path / "p", progress=both)
    assert events[-1].done and events[-1].evaluations == res.evaluations
    assert [e.evaluations for e in events] == sorted(e.evaluations for e in events)
    assert events[-1].modes == len(res.modes) and events[-1].failures == res.failures
    assert show.last is events[-1] and "modes" in buf.getvalue()


def test_one_list_of_strategies():
    from examiner.search.config import STRATEGIES, STRATEGY_CLASSES
    from examiner.search.strategies import Strategy, available_strategies, get_strategy

    assert available_strategies() == STRATEGIES == tuple(STRATEGY_CLASSES)
    for name in STRATEGIES:
        cls = get_strategy(name)
        assert issubclass(cls, Strategy) and cls.name == name
    with pytest.raises(SearchConfigError, match="choose one of marl, random"):
        get_strategy("annealing")


def test_marl_leaves_no_logger_folders_in_the_temp_directory(tmp_path, space, monkeypatch):
    """stable-baselines3's default logger makes an SB3-<time> folder per model in the temp
    directory; a search run must not litter it."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    run_search(config("marl", budget=120), build_evaluator("analytic:planted", space), space, tmp_path / "m")
    assert sorted(p.name for p in scratch.iterdir() if p.name.startswith("SB3-")) == []


def test_search_failure_rate_is_the_reports_failure_rate(tmp_path):
    """summary.json's search_failure_rate and the report's failure rate are one number:
    failing proposals over the plausible proposals without a model error."""
    from examiner.search import Outcome
    from reports.rundata import load_run, run_stats

    class Mixed:  # fails for u0 > 0, model errors for u1 < -0.5, implausible for u2 < -0.5
        def evaluate(self, U):
            return [Outcome(math.nan, {"pa_mpjpe": math.nan}, model_error=True, model_error_message="x")
                    if u[1] < -0.5 else
                    Outcome(v := (150.0 if u[0] > 0 else 40.0), {"pa_mpjpe": v}, plausible=bool(u[2] >= -0.5))
                    for u in U]

    sp = ParamSpace.from_groups("camera.azimuth,camera.elevation,camera.roll")
    cfg = SearchConfig(strategy="random", budget=120, agents=4, seed=0, threshold=90.0)
    run_search(cfg, Mixed(), sp, tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    proposals = summary["evaluations_by_phase"]["search"]
    assert 0 < summary["search_usable"] < 0.8 * proposals  # model errors and implausible ones left out
    fr = run_stats(load_run(tmp_path / "r"))["failure_rate"]
    assert fr["basis"] == "search" and fr["n"] == summary["search_usable"] and fr["k"] == summary["search_failures"]
    assert summary["search_failure_rate"] == pytest.approx(fr["rate"], abs=1e-4)


def test_confirmation_is_fresh_and_unbiased_where_verification_is_selected(tmp_path):
    """A model that fails 70% of the time everywhere: a mode is only accepted after a lucky
    verification round (>= 80% failing), and the confirmation after the search, on its
    own fresh samples, sees the true 70%."""
    import dataclasses

    from examiner.search.config import RegionConfig
    from tests.reports.conftest import CoinFlip

    sp = ParamSpace.from_groups("camera.azimuth,camera.elevation,camera.roll,camera.fov_y")
    cfg = SearchConfig(strategy="random", budget=1500, agents=4, seed=0, threshold=90.0,
                       region=RegionConfig(confirm_samples=300))
    res = run_search(cfg, CoinFlip(0.7), sp, tmp_path / "r")
    assert res.modes, "the fixture needs at least one lucky acceptance"
    stored = json.loads((tmp_path / "r" / "modes.json").read_text())["modes"]
    for m, s in zip(res.modes, stored):
        assert m["verified"]["rate"] >= 0.8 and s["confirmed"] == m["confirmed"]
        c = m["confirmed"]
        assert c["n"] == 300 and c["implausible"] == 0 and c["interval"][0] <= 0.7 <= c["interval"][1]
        assert c["rate"] < 0.78
    # Off: no confirmation, the same search.
    off = run_search(dataclasses.replace(cfg, region=RegionConfig(confirm_samples=0)), CoinFlip(0.7), sp, tmp_path / "off")
    assert [m["id"] for m in off.modes] == [m["id"] for m in res.modes] and all("confirmed" not in m for m in off.modes)
    assert log(tmp_path / "off") == log(tmp_path / "r")  # outside the log and the budget
    with pytest.raises(SearchConfigError, match="confirm_samples"):
        SearchConfig(region=RegionConfig(confirm_samples=-1)).validate()


def test_a_run_from_before_a_new_option_resumes(tmp_path, space):
    """meta.json of a run started before `region.confirm_samples` existed: the option takes
    its default on resume instead of refusing the run's own config."""
    ev = build_evaluator("analytic:planted", space)
    cfg = config("random", budget=200)
    run_search(cfg, ev, space, tmp_path / "r")
    meta_path = tmp_path / "r" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["region"]["confirm_samples"]
    meta_path.write_text(json.dumps(meta))
    before = log(tmp_path / "r")
    res = run_search(cfg, ev, space, tmp_path / "r", resume=True)
    assert log(tmp_path / "r") == before and all("confirmed" in m for m in res.modes)


def test_cli_lists_modes_with_their_confirmed_rate_in_physical_units(tmp_path, capsys):
    assert cli_main(["run", "--model", "analytic:planted", "--space", "joints,camera", "--budget", "500", "--agents", "4",
                     "--strategy", "random", "--out", str(tmp_path / "r"), "--no-report"]) == 0
    err = capsys.readouterr().err
    from reports.rundata import load_run

    modes = load_run(tmp_path / "r").modes
    assert modes and err.count("  mode ") == len(modes)
    for m in modes:  # worst first, numbered by rank as in the report
        c = m["confirmed"]
        assert f"mode {m['rank']}: fails {c['rate']:.0%}" in err and f"of {c['n']} fresh samples after the search" in err
    assert err.index("  mode 1:") < err.index(f"  mode {len(modes)}:")
    assert "°" in err  # camera angles in degrees, not normalised units
