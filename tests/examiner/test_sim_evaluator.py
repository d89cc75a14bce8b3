"""The simulator evaluator: real renders -> target model -> metrics -> search outcomes.

Renders are 64x64 (the space's base scene sets the image size) over a few dimensions, so
the whole file runs in well under a minute on two cores.
"""

from __future__ import annotations

import math
from pathlib import Path
import sys
import textwrap

import numpy as np
import pytest

from examiner.search import SearchConfig, SearchConfigError, build_evaluator, run_search
from examiner.app.run import main as cli_main
from examiner.search.sim_evaluator import RENDER_GROUP, SimulatorEvaluator, split_evaluator_options
from examiner.store import RunStore
from simulator.params import ParamSpace, SceneParams

pytest.importorskip("pyrender")

DIMS = "camera.roll,camera.elevation,camera.azimuth,shape.weight,pose.l_knee_flexion"
BOX = "camera.roll=0.4:1,camera.elevation=-1:0"  # 15% of the space
WHITEBOX = f"whitebox:{BOX}?error=0.3&noise=0.005"


def small_space(dims: str = DIMS, size: int = 64, overrides: dict | None = None) -> ParamSpace:
    return ParamSpace.from_groups(dims, base=SceneParams().with_values({"camera.width": size, "camera.height": size}),
                                  overrides=overrides)


# Offsets wide enough that u = +-1 puts the person far off centre (the default space keeps
# them within +-0.1 of the image: truncation is its own dimension).
WIDE_OFFSET = {"camera.offset_x": (-0.25, 0.25)}


@pytest.fixture(scope="module")
def space():
    return small_space()


@pytest.fixture(scope="module")
def whitebox(space):
    ev = build_evaluator(WHITEBOX, space)
    yield ev
    ev.close()


def log(out):
    return [{k: v for k, v in r.items() if k != "timings"} for r in RunStore.open(out).records()]


def test_split_spec_separates_evaluator_options():
    assert split_evaluator_options("baseline") == ("baseline", {})
    assert split_evaluator_options("baseline?threads=1&sim.calibrate=8") == ("baseline?threads=1", {"calibrate": "8"})
    assert split_evaluator_options("whitebox:a=0:1?sim.metric=mpjpe&error=0.3") == ("whitebox:a=0:1?error=0.3", {"metric": "mpjpe"})
    assert split_evaluator_options('cmd:"python w.py --x=1?y"?sim.batch=8') == ('cmd:"python w.py --x=1?y"', {"batch": "8"})


def test_sim_metric_cannot_differ_from_the_runs_metric(space):
    with pytest.raises(SearchConfigError, match="sets sim.metric=mpjpe but the run's metric is pa_mpjpe"):
        build_evaluator(f"{WHITEBOX}&sim.metric=mpjpe", space, metric="pa_mpjpe")
    with build_evaluator(f"{WHITEBOX}&sim.metric=mpjpe", space, metric="mpjpe") as ev:
        assert ev.metric == "mpjpe"
    with build_evaluator(WHITEBOX, space, metric="mpjpe") as ev:
        o = ev.evaluate(np.zeros((1, space.dim)))[0]
        assert o.error == o.metrics["mpjpe"]


def test_bad_specs_are_one_line_config_errors(space):
    with pytest.raises(SearchConfigError, match="unknown model spec 'resnet:foo'"):
        build_evaluator("resnet:foo", space)
    with pytest.raises(SearchConfigError, match="unknown evaluator option sim.colour"):
        build_evaluator(f"{WHITEBOX}&sim.colour=red", space)
    with pytest.raises(SearchConfigError, match="sim.calibrate='many'"):
        build_evaluator(f"{WHITEBOX}&sim.calibrate=many", space)
    with pytest.raises(SearchConfigError, match="unknown evaluator metric 'auc'"):
        build_evaluator(f"{WHITEBOX}&sim.metric=auc", space)


def test_outcomes_carry_metrics_plausibility_timings_and_predictions(whitebox, space):
    U = np.zeros((6, space.dim))
    U[:3, space.names.index("camera.roll")] = 0.7  # inside the planted box
    U[:3, space.names.index("camera.elevation")] = -0.5
    U[3:, space.names.index("camera.roll")] = -0.7
    out = whitebox.evaluate(U)
    assert len(out) == 6 and not any(o.model_error for o in out)
    inside, outside = [o.error for o in out[:3]], [o.error for o in out[3:]]
    assert min(inside) > 90.0 > 20.0 > max(outside)  # whitebox: 0.3 m displacement vs 5 mm noise
    o = out[3]
    assert o.error == o.metrics["pa_mpjpe"]
    assert set(o.metrics) == {"pa_mpjpe", "pa_mpjpe_scaled", "mpjpe", "mpjpe_abs", "pck", "oks", "pck_miss", "oks_miss"}
    assert o.metrics["pck"] > 0.9 and math.isclose(o.metrics["pck_miss"], 1 - o.metrics["pck"])
    assert o.plausible is True and set(o.timings) == {"render", "model", "inference", "metrics"}
    pred = o.extra["prediction"]
    assert pred["convention"] == "coco17" and len(pred["coco17_xy"]) == 17
    xy = np.array(pred["coco17_xy"], float)
    assert np.all((xy > 0) & (xy < 64))  # pixels of the 64x64 render
    je = o.extra["joint_errors"]
    assert len(je["joints"]) == len(je["mm"]) == len(je["px"]) == 12 and max(je["mm"]) < 30


def test_a_row_scores_the_same_in_any_batch(whitebox, space):
    """Batch-size-dependent float rounding in the body model would make runs depend on
    how rows are grouped (workers, resume); the evaluator pads render calls to avoid it."""
    U = np.random.default_rng(3).uniform(-1, 1, size=(2 * RENDER_GROUP + 1, space.dim))
    full = whitebox.evaluate(U)
    for sub in (U[:1], U[2:5], U[RENDER_GROUP:]):
        idx = [int(np.flatnonzero((U == r).all(axis=1))[0]) for r in sub]
        part = whitebox.evaluate(sub)
        for i, o in zip(idx, part):
            assert o.metrics == full[i].metrics and o.extra == full[i].extra and o.plausible == full[i].plausible


def test_search_finds_a_planted_box_through_the_renderer(tmp_path, whitebox, space):
    cfg = SearchConfig(strategy="random", budget=160, agents=4, seed=0, space=DIMS)
    res = run_search(cfg, whitebox, space, tmp_path / "run", model_spec=WHITEBOX)
    assert res.modes, "the planted box was not found"
    m = res.modes[0]
    assert m["verified"]["rate"] >= 0.8
    box = m["constrained"]
    # region growing recovers the box roughly (bisection tolerance 1/16 per edge)
    assert set(box) <= {"camera.roll", "camera.elevation"}
    assert abs(box["camera.roll"][0] - 0.4) < 0.15 and box["camera.roll"][1] > 0.85
    assert abs(box["camera.elevation"][1] - 0.0) < 0.15 and box.get("camera.elevation", [-1])[0] < -0.85
    t = RunStore.open(tmp_path / "run").evaluations()
    assert len(t) == res.evaluations <= 160 and np.isfinite(t.metrics["pa_mpjpe"]).all()


def test_same_seed_same_log_and_resume_after_a_crash(tmp_path, whitebox, space):
    cfg = SearchConfig(strategy="random", budget=96, agents=4, seed=1, space=DIMS, checkpoint_every=2)
    run_search(cfg, whitebox, space, tmp_path / "a")
    run_search(cfg, whitebox, space, tmp_path / "b")
    reference = log(tmp_path / "a")
    assert reference == log(tmp_path / "b") and len(reference) > 48

    class Dies:
        def __init__(self, limit):
            self.limit, self.done = limit, 0

        def evaluate(self, U):
            if self.done + len(U) > self.limit:
                raise RuntimeError("renderer died")
            self.done += len(U)
            return whitebox.evaluate(U)

    for limit in (70, 61, 54, 47, 38):
        run = tmp_path / f"r{limit}"
        with pytest.raises(RuntimeError, match="renderer died"):
            run_search(cfg, Dies(limit), space, run)
        store = RunStore.open(run)
        ckpt = store.load_checkpoint()
        if ckpt and 0 < ckpt[0] < store.n_evaluations:
            break
    res = run_search(cfg, whitebox, space, run, resume=True)
    assert res.resumed_from and log(run) == reference


CRASHY_WORKER = textwrap.dedent("""
    import os, sys
    import numpy as np
    import pe_worker

    def predict(images, K, boxes):
        w = images.shape[2]
        cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
        if np.any(np.abs(cx - w / 2) > 0.15 * w):  # subject far off centre: the process dies
            os._exit(3)
        b = len(images)
        j2 = np.zeros((b, 17, 2), np.float32)
        j2[..., 0] = boxes[:, None, 0] + np.arange(17)[None] * 2.0
        j2[..., 1] = boxes[:, None, 1] + np.arange(17)[None] * 3.0
        j3 = np.tile(np.linspace(-0.5, 0.5, 51, dtype=np.float32).reshape(1, 17, 3), (b, 1, 1))
        return {"joints2d": j2, "joints3d": j3}

    pe_worker.serve(predict, convention="coco17", outputs=("joints2d", "joints3d"), max_batch=16, name="crashy")
""")


def test_model_crashes_are_recorded_and_the_run_finishes(tmp_path):
    script = tmp_path / "crashy.py"
    script.write_text(CRASHY_WORKER)
    sp = small_space("camera.offset_x,camera.roll", overrides=WIDE_OFFSET)
    spec = f'cmd:"{sys.executable} {script}"?timeout=20'
    ev = build_evaluator(spec, sp)
    try:
        U = np.zeros((4, sp.dim))
        U[:, 0] = [-1.0, 0.0, 0.1, 1.0]
        out = ev.evaluate(U)
        assert [o.model_error for o in out] == [True, False, False, True]
        assert out[0].model_error_message.startswith("crash") and math.isnan(out[0].error)
        assert out[0].extra["prediction"] is None and math.isfinite(out[1].error)
        cfg = SearchConfig(strategy="random", budget=24, agents=4, seed=0, space="camera.offset_x,camera.roll",
                           threshold=1e6)  # nothing "fails": only crashes and passes
        res = run_search(cfg, ev, sp, tmp_path / "run", model_spec=spec)
    finally:
        ev.close()
    t = RunStore.open(tmp_path / "run").evaluations()
    assert res.evaluations == len(t) == 24 and RunStore.open(tmp_path / "run").summary()["status"] == "complete"
    assert 0 < t.model_error.sum() < 24 and not t.failed.any()
    crashed = [r for r in t.records if r["model_error"]]
    assert all(r["model_error_message"].startswith("crash") and r["error"] is None for r in crashed)
    offset = np.abs(t.u[:, 0])
    assert offset[t.model_error].min() > offset[~t.model_error].max() - 0.25  # crashes sit far off centre


def test_metric_the_target_cannot_produce_is_refused(space):
    with pytest.raises(SearchConfigError, match="cannot produce metric 'pve'"):
        build_evaluator(f"{WHITEBOX}&sim.metric=pve", space)
    with pytest.raises(SearchConfigError, match="unknown evaluator metric"):
        SimulatorEvaluator("whitebox:camera.roll=0:1", space, metric="auc")


class Centre2D:
    """A 2D-only in-process model: every joint at the box centre."""

    name, convention, outputs = "centre", "coco17", ("joints2d",)

    def predict(self, batch):
        from examiner.targets import Prediction

        c = 0.5 * (batch.boxes[:, :2] + batch.boxes[:, 2:])
        return Prediction("coco17", joints2d=np.repeat(c[:, None], 17, axis=1))


def make_centre():
    return Centre2D()


def test_a_2d_only_python_target_scores_with_2d_metrics(space):
    with build_evaluator(f"python:{__file__}:make_centre", space) as ev:
        out = ev.evaluate(np.zeros((2, space.dim)))
    assert set(out[0].metrics) == {"pck", "oks", "pck_miss", "oks_miss"}
    assert out[0].error == out[0].metrics["pck_miss"] > 0.5  # all joints at the centre: most miss


def test_cli_runs_a_whitebox_target_end_to_end(tmp_path, capsys):
    rc = cli_main(["run", "--model", "whitebox:camera.roll=0.5:1", "--space", "camera.roll,camera.azimuth",
                   "--budget", "16", "--agents", "4", "--strategy", "random", "--out", str(tmp_path / "cli"),
                   "--json", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    store = RunStore.open(tmp_path / "cli")
    assert store.metadata["model_spec"] == "whitebox:camera.roll=0.5:1" and store.n_evaluations == 16


class BlindOffCentre:
    """2D model that reports "no_detection" (as MediaPipe does) when the person is off centre."""

    name, convention, outputs = "blind", "coco17", ("joints2d",)

    def predict(self, batch):
        from examiner.targets import Prediction
        from examiner.targets.base import ModelFailure

        c = 0.5 * (batch.boxes[:, :2] + batch.boxes[:, 2:])
        w = batch.images.shape[2]
        failures = [ModelFailure("no_detection", "no person found") if abs(x - w / 2) > 0.15 * w else None
                    for x in c[:, 0]]
        return Prediction("coco17", joints2d=np.repeat(c[:, None], 17, axis=1), failures=failures)


def make_blind():
    return BlindOffCentre()


def test_a_missed_person_is_a_failure_not_a_model_error(tmp_path):
    sp = small_space("camera.offset_x,camera.roll", overrides=WIDE_OFFSET)
    spec = f"python:{__file__}:make_blind"
    with build_evaluator(spec, sp) as ev:
        U = np.zeros((3, sp.dim))
        U[:, 0] = [-1.0, 0.0, 1.0]
        out = ev.evaluate(U)
        assert [o.missed for o in out] == [True, False, True]
        assert not any(o.model_error for o in out)
        assert out[0].model_error_message.startswith("no_detection") and math.isnan(out[0].error)
        cfg = SearchConfig(strategy="random", budget=24, agents=4, seed=0, space="camera.offset_x,camera.roll",
                           metric="pck_miss", threshold=2.0)  # a joint-miss share never exceeds 1: only misses fail
        run_search(cfg, ev, sp, tmp_path / "run", model_spec=spec)
    t = RunStore.open(tmp_path / "run").evaluations()
    missed = np.array([bool(r["missed"]) for r in t.records])
    assert 0 < missed.sum() < len(t) and not t.model_error.any()
    assert np.array_equal(t.failed, missed & t.plausible)
    assert np.abs(t.u[missed, 0]).min() > np.abs(t.u[~missed, 0]).max() - 0.5  # misses sit off centre
    from reports import write_report

    html = Path(write_report(tmp_path / "run").html).read_text()
    assert "or the model found no person (" in html


def test_recall_benchmark_rendered_target_plants_a_drawn_layout(tmp_path):
    """bench_search_recall --target rendered: drawn layout 0 planted into the white-box model,
    pose prior latent dimensions included, fails inside a planted region through the renderer."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_search_recall.py"
    spec = importlib.util.spec_from_file_location("bench_search_recall", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    space = bench.rendered_space("pose,shape,camera", 64)
    ev, boxes, label = bench.rendered_target(0, space)
    assert label.startswith("whitebox:") and len(boxes) == len(ev.model.regions) >= 3
    name, lo, hi = next(b for b in boxes if any(n.startswith("pose.z") for n in ev.model.regions[boxes.index(b)].bounds))
    inside = (lo + hi) / 2.0
    outside = inside.copy()
    dims = np.flatnonzero((lo > -1.0) | (hi < 1.0))
    outside[dims] = np.where(lo[dims] > -0.5, -1.0, 1.0)  # every named side moved past the box
    params = space.to_params_batch(np.stack([inside, outside]))
    u = ev.model.normalised(params[0], space.names)
    np.testing.assert_allclose([u[n] for n in space.names if n.startswith("pose.z")],
                               inside[[i for i, n in enumerate(space.names) if n.startswith("pose.z")]], atol=1e-9)
    assert ev.model.region_of(params[0]) is not None and ev.model.region_of(params[1]) is None
    out = ev.evaluate(np.stack([inside, outside]))
    assert out[0].error > 90.0 > out[1].error


def test_sim_joints_scores_only_the_joints_in_view():
    from examiner.targets.whitebox import WhiteBoxTarget
    from simulator.sample import OUT_OF_FRAME

    class GuessesCutOffJointsWrong(WhiteBoxTarget):
        """Exact on the joints in the image, 0.5 m off on those cut off by the border."""

        def predict(self, batch):
            pred = super().predict(batch)
            for i, sample in enumerate(batch.ground_truth):
                out = np.asarray(sample.keypoints[self.convention].visibility) == OUT_OF_FRAME
                pred.joints3d[i, out] += np.float32(0.5)
            return pred

    base = SceneParams().with_values({"camera.width": 96, "camera.height": 96, "camera.framing": 0.7,
                                      "camera.truncation_side": "bottom", "occluder.width": 1.0, "occluder.height": 1.0})
    space = ParamSpace.from_groups("camera.truncation", base=base)
    hidden = ParamSpace.from_groups("camera.truncation", base=base.with_values({"occluder.kind": "rectangle"}))
    U = np.array([[-1.0], [1.0]])  # clear; a third of the person cut off at the bottom

    def run(joints):
        with SimulatorEvaluator(GuessesCutOffJointsWrong(noise_m=0.0), space, joints=joints) as ev:
            out = ev.evaluate(U)
        with SimulatorEvaluator(GuessesCutOffJointsWrong(noise_m=0.0), hidden, joints=joints) as ev:
            return out + ev.evaluate(U[:1])  # ... and a clear scene hidden behind an image-sized rectangle

    full, in_frame, visible = run("all"), run("in_frame"), run("visible")
    assert full[0].error < 1.0 and full[1].error > 90.0  # all joints: the cut-off guesses fail it
    assert in_frame[1].error < 1.0 and in_frame[1].plausible  # joints in view: exact
    assert visible[2].plausible is False and "sim.joints=visible needs 6" in visible[2].extra["unscored"]
    assert not visible[2].model_error and math.isnan(visible[2].error)
    assert in_frame[2].plausible and in_frame[2].error < 1.0  # hidden, but in the image
    with pytest.raises(SearchConfigError, match="sim.joints must be one of all, in_frame, visible"):
        build_evaluator("baseline?sim.joints=hidden", space)


def test_cli_joints_flag_is_stored_in_the_model_spec(tmp_path, capsys):
    rc = cli_main(["run", "--model", "whitebox:camera.roll=0.5:1", "--space", "camera.roll,camera.azimuth",
                   "--budget", "8", "--agents", "4", "--strategy", "random", "--out", str(tmp_path / "j"),
                   "--joints", "in_frame", "--json", "--quiet", "--no-report"])
    assert rc == 0, capsys.readouterr().err
    assert RunStore.open(tmp_path / "j").metadata["model_spec"] == "whitebox:camera.roll=0.5:1?sim.joints=in_frame"
    rc = cli_main(["run", "--model", "whitebox:camera.roll=0.5:1?sim.joints=visible", "--space", "camera.roll",
                   "--budget", "8", "--out", str(tmp_path / "k"), "--joints", "in_frame", "--quiet"])
    assert rc != 0 and "--joints in_frame contradicts sim.joints=visible" in capsys.readouterr().err
