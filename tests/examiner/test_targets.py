"""Adapter protocol, registry, white-box target, calibration and evaluate (no subprocesses)."""

from __future__ import annotations

import csv
import json
import math
import textwrap

import numpy as np
import pytest

from examiner.conventions import COCO17
from examiner.evaluate import evaluate
from examiner.scoring import ground_truth, reference_scenes, score_batch
from examiner.targets import (
    ModelFailure,
    Prediction,
    TargetBatch,
    TargetError,
    TargetModel,
    checked_predict,
    load_target,
    parse_spec,
)
from examiner.targets.calibration import (
    JointCalibration,
    apply_offsets_3d,
    body_frames_2d,
    body_frames_3d,
    estimate_offsets_2d,
    estimate_offsets_3d,
)
from examiner.targets.whitebox import PlantedRegion, WhiteBoxTarget
from simulator.errors import PoseExaminerError
from simulator.params import SceneParams


# ---- spec strings ----------------------------------------------------------------------


def test_parse_spec_forms():
    assert parse_spec("python:pkg.mod:make?size=3") == ("python", "pkg.mod:make", {"size": "3"})
    assert parse_spec('cmd:"/env/bin/python w.py --x=1?"?timeout=5') == (
        "cmd", "/env/bin/python w.py --x=1?", {"timeout": "5"})
    assert parse_spec("mediapipe?crop=full") == ("mediapipe", "", {"crop": "full"})
    assert parse_spec("whitebox:camera.azimuth=0.5:1;light.ambient=-1:0?seed=3")[2] == {"seed": "3"}


def test_one_spec_parser_splits_parses_and_formats():
    from examiner.targets.registry import format_query, parse_query, split_spec

    assert split_spec("baseline") == ("baseline", "baseline", "", "")
    assert split_spec("baseline?x=a:b") == ("baseline", "baseline", "", "x=a:b")  # ':' in the query is not a body
    assert split_spec('cmd:"w --q=1?"?t=5') == ('cmd:"w --q=1?"', "cmd", "w --q=1?", "t=5")
    assert split_spec("analytic:box?dims=pose.a:0:1,pose.b:-1:0") == (
        "analytic:box", "analytic", "box", "dims=pose.a:0:1,pose.b:-1:0")
    assert parse_query("a=1&&b=&c=x%20y&a=2") == {"a": "2", "b": "", "c": "x y"}
    opts = {"dims": "pose.a:0:1,pose.b:-1:0", "path": "/m/x.onnx", "odd": "a&b=c d+e%"}
    assert parse_query(format_query(opts)) == opts
    assert format_query({"error": "0.3", "seed": "3"}) == "error=0.3&seed=3"


@pytest.mark.parametrize("query", ["novalue", "=1", "a=1&justakey"])
def test_a_malformed_query_is_a_one_line_error(query):
    from examiner.targets.registry import parse_query
    from examiner.search.factory import build_evaluator
    from examiner.search.errors import SearchConfigError
    from simulator.params import ParamSpace

    with pytest.raises(TargetError, match="write key=value") as e:
        parse_query(query, f"baseline?{query}")
    assert "\n" not in str(e.value)
    for spec in (f"baseline?{query}", f"analytic:planted?{query}", f"baseline?sim.calibrate=0&{query}"):
        with pytest.raises((SearchConfigError, TargetError), match="write key=value") as e:
            build_evaluator(spec, ParamSpace.from_groups("camera"))
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("spec, needle", [
    ("tensorflow:foo", "unknown model kind"),
    ("python:", "incomplete"),
    ("python:just_a_module", "module and factory"),
    ("onnx:/nonexistent/model.onnx", "not found"),
    ("cmd:\"python x.py", "unclosed quote"),
    ("mediapipe?model_complexity=2", "model_complexity=1"),
    ("mediapipe:extra", "takes no"),
    ("whitebox:nonexistent.dim=0:1", "unknown dimension"),
    ("whitebox:camera.azimuth=1", "dimension=low:high"),
    ("whitebox:?bogus=1", "unknown whitebox option"),
    ("nosuchmodel", "unknown model"),
])
def test_bad_specs_give_one_line_errors(spec, needle):
    with pytest.raises(PoseExaminerError) as e:
        load_target(spec)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_mediapipe_missing_env_says_how_to_install(isolated_home):
    with pytest.raises(TargetError, match="examiner targets install mediapipe"):
        load_target("mediapipe")


def test_baseline_missing_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEEXAMINER_BASELINE_DIR", str(tmp_path / "nothing"))
    with pytest.raises(TargetError, match="train-baseline") as e:
        load_target("baseline")
    assert "\n" not in str(e.value)


# ---- in-process python models ----------------------------------------------------------


class BoxModel(TargetModel):
    """A plausible model without ground truth: the template skeleton scaled into the box."""

    convention = "coco17"
    outputs = frozenset({"joints2d", "joints3d", "confidence"})
    max_batch = 2

    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.calls = 0
        # a rough standing skeleton (x right, y down, metres)
        self.template = np.array([
            [0, -.68, -.1], [.03, -.72, -.08], [-.03, -.72, -.08], [.07, -.7, 0], [-.07, -.7, 0],
            [.18, -.5, 0], [-.18, -.5, 0], [.21, -.22, .02], [-.21, -.22, .02], [.22, .03, -.02],
            [-.22, .03, -.02], [.1, 0, 0], [-.1, 0, 0], [.1, .45, -.01], [-.1, .45, -.01],
            [.1, .87, .03], [-.1, .87, .03]])

    def predict(self, batch):
        self.calls += 1
        b = len(batch)
        boxes = batch.boxes.astype(np.float64)
        t = self.template
        norm = (t[:, :2] - t[:, :2].min(0)) / np.ptp(t[:, :2], axis=0)
        j2 = boxes[:, None, :2] + norm[None] * (boxes[:, None, 2:] - boxes[:, None, :2])
        j3 = np.repeat(t[None], b, 0)
        if self.mode == "raise":
            raise RuntimeError("model exploded")
        if self.mode == "nan_second" and b > 1:
            j3 = j3.copy()
            j3[1, 3] = np.nan
        if self.mode == "wrong_shape":
            j2 = j2[:, :5]
        if self.mode == "not_prediction":
            return {"joints2d": j2}
        return Prediction("coco17", joints3d=j3, joints2d=j2, confidence=np.full((b, 17), 0.9))


def test_python_spec_from_file(tmp_path, make_samples):
    mod = tmp_path / "my_model.py"
    mod.write_text(textwrap.dedent("""
        import numpy as np
        from examiner.targets import Prediction, TargetModel

        class Const(TargetModel):
            convention = "h36m17"
            outputs = frozenset({"joints3d"})
            def __init__(self, z):
                self.z = float(z)
            def predict(self, batch):
                j = np.zeros((len(batch), 17, 3), np.float32)
                j[:, :, 2] = self.z
                j[:, 4, 0] = 0.1  # left hip
                j[:, 1, 0] = -0.1  # right hip
                return Prediction("h36m17", joints3d=j)

        def make(z="2.0"):
            return Const(z)
    """))
    model = load_target(f"python:{mod}:make?z=3.5")
    pred = checked_predict(model, TargetBatch.from_samples(make_samples(3)))
    assert pred.ok.all()
    assert pred.joints3d.shape == (3, 17, 3) and pred.joints3d[0, 0, 2] == pytest.approx(3.5)


def test_python_spec_from_module(monkeypatch, tmp_path):
    (tmp_path / "mypkg_examiner_test.py").write_text(
        "class Duck:\n    convention = 'coco17'\n    def predict(self, batch):\n        raise RuntimeError('x')\n"
        "def factory():\n    return Duck()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = load_target("python:mypkg_examiner_test:factory")
    assert model.convention == "coco17"


@pytest.mark.parametrize("mode, kinds", [
    ("raise", ["exception"] * 3),
    ("nan_second", [None, "nan", None]),
    ("wrong_shape", ["shape"] * 3),
    ("not_prediction", ["shape"] * 3),
])
def test_checked_predict_records_model_errors(make_samples, mode, kinds):
    model = BoxModel(mode)
    batch = TargetBatch.from_samples(make_samples(3))
    pred = checked_predict(model, batch)  # never raises
    got = [f.kind if f else None for f in pred.failures]
    # max_batch = 2: the batch is split [0, 1] + [2]; the NaN sample is index 1 of the first chunk.
    assert got == kinds
    assert model.calls == 2
    assert np.isnan(pred.joints3d[~pred.ok]).all()
    if pred.ok.any():
        assert np.isfinite(pred.joints3d[pred.ok]).all()


def test_target_batch_validates_shapes():
    with pytest.raises(ValueError, match="uint8"):
        TargetBatch(np.zeros((1, 8, 8, 3), np.float32), np.eye(3)[None], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="boxes"):
        TargetBatch(np.zeros((2, 8, 8, 3), np.uint8), np.tile(np.eye(3), (2, 1, 1)), np.zeros((1, 4)))


# ---- white-box target ------------------------------------------------------------------


def _scene(az_deg: float, knee: float = 0.0) -> SceneParams:
    return SceneParams().with_values({"camera.azimuth": math.radians(az_deg), "pose.l_knee_flexion": knee})


def test_whitebox_exact_outside_large_inside(render_fn):
    region = PlantedRegion.from_physical({"camera.azimuth": (math.radians(20), math.radians(60))})
    model = WhiteBoxTarget([region], error_m=0.3, noise_m=0.0)
    scenes = [_scene(0), _scene(40), _scene(-40), _scene(59)]
    samples = render_fn(scenes)
    pred = checked_predict(model, TargetBatch.from_samples(samples, with_ground_truth=True))
    s = score_batch(pred, samples)
    assert s.mpjpe[0] == pytest.approx(0.0, abs=1e-6) and s.mpjpe[2] == pytest.approx(0.0, abs=1e-6)
    assert s.pck[0] == 1.0 and s.oks[0] == pytest.approx(1.0)
    assert s.mpjpe[1] > 0.15 and s.mpjpe[3] > 0.15
    assert [model.region_of(p) for p in scenes] == [None, 0, None, 0]


def test_whitebox_needs_ground_truth(make_samples):
    with pytest.raises(TargetError, match="ground truth"):
        checked_predict(WhiteBoxTarget(), TargetBatch.from_samples(make_samples(1)))


def test_whitebox_spec_matches_python_and_is_order_independent(render_fn):
    # camera.azimuth default bounds are +-180 deg: normalised 0.25..1 is 45..180 deg.
    spec_model = load_target("whitebox:camera.azimuth=0.25:1,pose.l_knee_flexion=-1:1?error=0.2&noise=0.01&seed=7")
    py_model = WhiteBoxTarget([PlantedRegion({"camera.azimuth": (0.25, 1.0), "pose.l_knee_flexion": (-1, 1)})],
                              error_m=0.2, noise_m=0.01, seed=7)
    scenes = [_scene(10), _scene(90), _scene(170), _scene(-90)]
    samples = render_fn(scenes)
    a = checked_predict(spec_model, TargetBatch.from_samples(samples, with_ground_truth=True))
    b = checked_predict(py_model, TargetBatch.from_samples(samples[::-1], with_ground_truth=True))
    np.testing.assert_array_equal(a.joints3d, b.joints3d[::-1])
    err = np.linalg.norm(a.joints3d - np.stack([s.keypoints["coco17"].xyz for s in samples]), axis=-1).mean(1)
    assert err[0] < 0.03 and err[3] < 0.03 and err[1] > 0.15 and err[2] > 0.15


def test_whitebox_halo_error_rises_towards_the_region_and_stays_below_it(render_fn):
    # Region: azimuth 20..60 deg. Outside it the displacement follows the halo, largest
    # next to the box; without a halo it is zero.
    region = PlantedRegion.from_physical({"camera.azimuth": (math.radians(20), math.radians(60))})
    halo = WhiteBoxTarget([region], error_m=0.3, noise_m=0.0, halo=0.5, halo_error_m=0.05)
    plain = WhiteBoxTarget([region], error_m=0.3, noise_m=0.0)
    scenes = [_scene(-150), _scene(-60), _scene(0), _scene(15), _scene(40)]
    samples = render_fn(scenes)
    gt = np.stack([s.keypoints["coco17"].xyz for s in samples])
    batch = TargetBatch.from_samples(samples, with_ground_truth=True)
    err = np.linalg.norm(checked_predict(halo, batch).joints3d - gt, axis=-1).mean(1)
    assert err[0] < err[1] < err[2] < err[3] < 0.05 < 0.15 < err[4]
    assert err[3] > 0.045  # 5 deg from the edge: almost the full halo
    d = [halo.halo_distance(p) for p in scenes]
    assert d[4] == 0.0 and d[3] == pytest.approx(math.radians(5) / math.pi, rel=1e-6)
    flat = np.linalg.norm(checked_predict(plain, batch).joints3d - gt, axis=-1).mean(1)
    assert np.all(flat[:4] < 1e-9)
    spec = load_target("whitebox:camera.azimuth=0.111:0.333?noise=0&halo=0.5&halo_error=0.05")
    assert spec.halo == 0.5 and spec.halo_error_m == 0.05
    with pytest.raises(TargetError, match="halo"):
        WhiteBoxTarget([region], halo=-1)


# ---- calibration -----------------------------------------------------------------------


def _skeletons(n, rng, template, rot_y):
    """n random-ish common12 skeletons in the camera frame."""
    base = template[[COCO17.index(j) for j in (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")]]
    out = []
    for _ in range(n):
        R = rot_y(rng.uniform(-math.pi, math.pi))
        tilt = np.array([[1, 0, 0], [0, math.cos(a := rng.uniform(-0.3, 0.3)), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        out.append((base + rng.normal(0, 0.03, base.shape)) @ (tilt @ R).T + [0, 0, rng.uniform(2.5, 5)])
    return np.stack(out)


def test_calibration_recovers_known_3d_offset(coco_template, rot_y):
    rng = np.random.default_rng(0)
    pred = _skeletons(60, rng, coco_template, rot_y)
    true = rng.normal(0, 0.03, size=(12, 3))
    true[7] = -true[6]  # hips: symmetric, so the root (hip midpoint) does not move
    _, R = body_frames_3d(pred, "common12")
    gt = pred + np.einsum("bci,ji->bjc", R, true) + rng.normal(0, 0.002, pred.shape)
    est = estimate_offsets_3d(pred, gt, "common12")
    np.testing.assert_allclose(est, true, atol=0.003)
    before = np.linalg.norm(pred - gt, axis=-1).mean()
    after = np.linalg.norm(apply_offsets_3d(pred, est, "common12") - gt, axis=-1).mean()
    assert before > 0.02 and after < 0.005


def test_calibration_recovers_known_2d_offset(coco_template, rot_y):
    rng = np.random.default_rng(1)
    pred3 = _skeletons(40, rng, coco_template, rot_y)
    pred2 = pred3[..., :2] / pred3[..., 2:] * 300 + 128
    true = rng.normal(0, 0.05, size=(12, 2))
    true[7] = -true[6]
    _, R, length = body_frames_2d(pred2, "common12")
    gt2 = pred2 + length[:, None, None] * np.einsum("bci,ji->bjc", R, true)
    np.testing.assert_allclose(estimate_offsets_2d(pred2, gt2, "common12"), true, atol=1e-9)


def test_calibration_roundtrip(tmp_path):
    cal = JointCalibration("common12", np.arange(36.0).reshape(12, 3) / 1000, None, 10, "m")
    cal.save(tmp_path / "c.json")
    back = JointCalibration.load(tmp_path / "c.json")
    np.testing.assert_allclose(back.offsets3d, cal.offsets3d)
    assert back.offsets2d is None and back.n_reference == 10


class OffsetModel(TargetModel):
    """White-box model whose hips are 4 cm wider and shoulders 3 cm higher than the
    simulator's (a joint-definition mismatch), in its own body frame."""

    convention = "coco17"
    outputs = frozenset({"joints3d", "joints2d"})
    frame = "camera"
    needs_ground_truth = True

    def predict(self, batch):
        gt = np.stack([s.keypoints["coco17"].xyz for s in batch.ground_truth]).astype(np.float64)
        _, R = body_frames_3d(gt, "coco17")
        off = np.zeros((17, 3))
        off[COCO17.index("left_hip"), 0] = 0.04
        off[COCO17.index("right_hip"), 0] = -0.04
        off[COCO17.index("left_shoulder"), 1] = 0.03
        off[COCO17.index("right_shoulder"), 1] = 0.03
        j3 = gt + np.einsum("bci,ji->bjc", R, off)
        j2 = np.stack([s.keypoints["coco17"].xy for s in batch.ground_truth])
        return Prediction("coco17", joints3d=j3, joints2d=j2, frame="camera")


def test_evaluate_with_calibration_removes_definition_offset(tmp_path, render_fn):
    raw = evaluate(OffsetModel(), n=12, seed=0, space="camera", render_fn=render_fn)
    cal = evaluate(OffsetModel(), n=12, seed=0, space="camera", render_fn=render_fn, calibrate_n=8,
                   out=tmp_path)
    assert raw["metrics"]["mpjpe_mm"]["mean"] == pytest.approx((2 * 40 + 2 * 30) / 12, abs=0.1)
    assert cal["metrics"]["mpjpe_mm"]["mean"] < 1.0
    saved = json.loads((tmp_path / "calibration.json").read_text())
    hips = np.array(saved["offsets3d_m"])[6]  # common12 index 6 = left_hip
    assert abs(abs(hips[0]) - 0.04) < 0.005


def test_reference_scenes_are_seeded_and_easy():
    a, b = reference_scenes(5, seed=3), reference_scenes(5, seed=3)
    assert [s.to_json() for s in a] == [s.to_json() for s in b]
    assert all(abs(s.camera.azimuth) <= math.radians(25) for s in a)
    assert all(s.occluder.kind == "none" for s in a)


# ---- evaluate --------------------------------------------------------------------------


def test_evaluate_writes_table_and_summary(tmp_path, render_fn):
    spec = "whitebox:camera.azimuth=0.5:1?noise=0"
    summary = evaluate(spec, n=20, seed=1, space="camera", out=tmp_path, batch_size=6, render_fn=render_fn)
    rows = list(csv.DictReader((tmp_path / "evaluations.csv").open()))
    assert len(rows) == 20 and summary["n"] == 20
    assert summary["failures"]["total"] == 0
    inside = [r for r in rows if float(r["u:camera.azimuth"]) >= 0.5]
    outside = [r for r in rows if float(r["u:camera.azimuth"]) < 0.5]
    assert inside and outside
    assert all(float(r["mpjpe_mm"]) > 150 for r in inside)
    assert all(float(r["mpjpe_mm"]) < 1e-3 for r in outside)
    assert "err3d_mm:left_knee" in rows[0] and SceneParams.from_json(rows[0]["params"])
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["metrics"]["mpjpe_mm"]["mean"] == pytest.approx(summary["metrics"]["mpjpe_mm"]["mean"])
    # same seed, same scenes
    again = evaluate(spec, n=20, seed=1, space="camera", render_fn=render_fn)
    assert again["metrics"]["mpjpe_mm"] == summary["metrics"]["mpjpe_mm"]


def test_evaluate_records_failures_and_continues(render_fn):
    summary = evaluate(BoxModel("nan_second"), n=6, seed=0, space="camera", batch_size=3, render_fn=render_fn)
    # chunks of 3 split by max_batch=2 into [0,1],[2]: index 1 of each 2-chunk is NaN
    assert summary["failures"]["by_kind"] == {"nan": 2}
    assert summary["metrics"]["pck@0.1"]["mean"] is not None


def test_ground_truth_from_h36m_and_coco(make_samples):
    samples = make_samples(2)
    gt = ground_truth(samples, "h36m17")
    np.testing.assert_allclose(gt.xyz, np.stack([s.keypoints["h36m17"].xyz for s in samples]), atol=1e-6)
    gt_c = ground_truth(samples, "common12")
    assert gt_c.valid.all() and (gt_c.area > 0).all()


def test_evaluate_prefetch_gives_same_table(render_fn):
    a = evaluate("whitebox:camera.azimuth=0:1", n=10, seed=2, space="camera", batch_size=3, render_fn=render_fn)
    b = evaluate("whitebox:camera.azimuth=0:1", n=10, seed=2, space="camera", batch_size=3, render_fn=render_fn,
                 render_workers=1)
    assert a["metrics"] == b["metrics"] and b["n"] == 10


def test_scores_on_the_joints_in_view_leave_out_the_rest(render_fn):
    from examiner.scoring import MIN_SCORED_JOINTS, joints_seen
    from simulator.sample import OCCLUDED, OUT_OF_FRAME

    samples = render_fn([_scene(0), _scene(30), _scene(-30)])
    coco = samples[0].keypoints["coco17"]
    names = list(coco.names)
    legs = [names.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    coco.visibility[legs] = OUT_OF_FRAME  # sample 0: legs cut off by the border
    samples[1].keypoints["coco17"].visibility[legs[:2]] = OCCLUDED  # sample 1: knees hidden
    samples[2].keypoints["coco17"].visibility[:] = OUT_OF_FRAME
    samples[2].keypoints["coco17"].visibility[:5] = 2  # sample 2: only the face in view
    pred = checked_predict(WhiteBoxTarget([], noise_m=0.0), TargetBatch.from_samples(samples, with_ground_truth=True))
    pred.joints3d[:2, legs] += np.array([0.4, -0.3, 0.2])  # the model guesses the legs wrong
    full = score_batch(pred, samples)
    assert full.pa_mpjpe[0] > 0.05 and full.pa_mpjpe[1] > 0.05 and full.pa_mpjpe[2] == pytest.approx(0.0, abs=1e-6)
    in_frame = score_batch(pred, samples, joint_mask=joints_seen(samples, which="in_frame"))
    assert in_frame.pa_mpjpe[0] == pytest.approx(0.0, abs=1e-6)  # only the cut-off legs were wrong
    assert in_frame.pa_mpjpe[1] == pytest.approx(full.pa_mpjpe[1])  # hidden is not out of frame
    assert np.isnan(in_frame.pa_mpjpe[2])  # fewer than MIN_SCORED_JOINTS in view: not scored
    visible = score_batch(pred, samples, joint_mask=joints_seen(samples, which="visible"))
    assert visible.pa_mpjpe[1] < full.pa_mpjpe[1] and visible.pa_mpjpe[0] == pytest.approx(0.0, abs=1e-6)
    assert joints_seen(samples, which="visible")[2].sum() < MIN_SCORED_JOINTS
    with pytest.raises(TargetError, match="joints must be one of"):
        joints_seen(samples, which="hidden")
    with pytest.raises(TargetError, match="joint_mask has shape"):
        score_batch(pred, samples, joint_mask=np.ones((3, 2), bool))
