"""Fine-tuning sets and dense datasets sampled from a run's failure modes."""

import json

import numpy as np
import pytest

from generators.engine import run_dataset
from simulator.params import ParamSpace


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from examiner.store import RunStore

    root = tmp_path_factory.mktemp("run") / "r1"
    space = ParamSpace.from_groups("pose.l_knee_flexion,pose.r_knee_flexion,camera.azimuth,camera.elevation")
    store = RunStore.create(root, {"space": space.to_dict(), "dimension_names": space.names, "strategy": "test",
                                   "metric": "mpjpe", "threshold": 90.0, "seeds": {"root": 0}})
    lo, hi = [0.5, -1.0, 0.8, -0.2], [1.0, 1.0, 1.0, 0.2]  # left knee bent, camera behind
    store.write_modes([{"id": 3, "lo": lo, "hi": hi, "verified": {"n": 10, "k": 9, "rate": 0.9}}])
    store.close()
    return root, space, np.array(lo), np.array(hi)


def test_finetune_samples_inside_failure_modes_with_3d_labels(run_dir, tmp_path):
    from generators.finetune import FinetuneConfig, load_finetune
    from pycocotools.coco import COCO

    root, space, lo, hi = run_dir
    out = tmp_path / "ft"
    result = run_dataset("finetune", FinetuneConfig(n=10, seed=1, shard_size=5, size=128, from_run=str(root),
                                                    base_share=0.3), out)
    outputs = result["outputs"]
    assert outputs["from_modes"] == 7 and outputs["from_base"] == 3  # exactly the base share
    assert outputs["run"]["modes"][0]["id"] == 3
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    from simulator.params import SceneParams

    for r in records:
        u = space.to_vector(SceneParams.from_dict(r["scene"]))
        np.testing.assert_allclose(u, r["source"]["u"], atol=1e-9)
        if r["source"]["source"] == "mode":
            assert r["source"]["mode"] == 3 and np.all(u >= lo - 1e-9) and np.all(u <= hi + 1e-9)
    labels = load_finetune(out)
    n = len(labels["image"])
    assert n == 10
    assert labels["keypoints2d"].shape == (n, 17, 3) and labels["h36m17_cam"].shape == (n, 17, 3)
    assert labels["pose"].shape[0] == n and labels["shape"].shape == (n, 6) and labels["K"].shape == (n, 3, 3)
    assert labels["u"].shape == (n, space.dim) and labels["scene"].shape == (n,)  # SceneParams per sample
    for s, r in zip(labels["scene"], records):
        assert json.loads(str(s)) == r["scene"]
    assert (labels["h36m17_cam"][..., 2] > 0).all()  # in front of the camera
    # 2D keypoints are the projection of the 3D joints (COCO ones are regressed, so check H36M via K).
    xyz = labels["h36m17_cam"]
    proj = xyz[..., :2] / xyz[..., 2:] * labels["K"][:, [0, 1], [0, 1]][:, None] + labels["K"][:, :2, 2][:, None]
    assert np.isfinite(proj).all()
    c = COCO(str(out / "annotations.json"))
    ann = c.loadAnns(c.getAnnIds())[0]
    assert len(ann["keypoints"]) == 51 and len(ann["keypoints_3d"]["xyz"]) == 17


def test_dense_from_run_and_missing_modes(run_dir, tmp_path):
    from examiner.store import RunStore
    from generators.dense import DenseConfig
    from generators.errors import GeneratorError

    root, space, lo, hi = run_dir
    out = tmp_path / "dense"
    run_dataset("dense", DenseConfig(n=2, seed=0, size=96, points=100, from_run=str(root)), out)
    scenes = [json.loads(x) for x in (out / "scenes.jsonl").read_text().splitlines()]
    assert all(s["source"]["source"] == "mode" for s in scenes)
    empty = tmp_path / "empty_run"
    RunStore.create(empty, {"space": space.to_dict()}).close()
    with pytest.raises(GeneratorError, match="no failure modes"):
        run_dataset("finetune", __import__("generators.finetune", fromlist=["x"]).FinetuneConfig(n=1, from_run=str(empty)),
                    tmp_path / "x")


def test_need_region_releases_the_constraints_the_failure_does_not_need(run_dir, tmp_path):
    """--mode-region need: a mode whose test found only the left knee mattering draws its
    scenes with the knee in the box and everything else over the whole range; a mode with
    no test (or needing nothing alone) keeps its box; a bad region is a one-line error."""
    from examiner.search.importance import need_box
    from generators.errors import GeneratorError
    from generators.scenes import SceneSampler, SceneSource

    root, space, lo, hi = run_dir
    rows = [{"dimension": n, "matters": n == "pose.l_knee_flexion"} for n in space.names]
    mode = {"lo": lo.tolist(), "hi": hi.tolist(), "importance": {"constraints": rows}}
    nlo, nhi = need_box(mode, space.names)
    assert nlo.tolist() == [0.5, -1.0, -1.0, -1.0] and nhi.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert [x.tolist() for x in need_box({**mode, "importance": None}, space.names)] == [lo.tolist(), hi.tolist()]
    sampler = SceneSampler(SceneSource(from_run=str(root), mode_share=1.0, mode_region="need"))
    assert sampler.modes[0]["lo"] == lo.tolist()  # the stored mode has no test: its box
    from examiner.store import RunStore

    tested = tmp_path / "tested"
    store = RunStore.create(tested, {"space": space.to_dict(), "dimension_names": space.names, "strategy": "test",
                                     "metric": "mpjpe", "threshold": 90.0, "seeds": {"root": 0}})
    store.write_modes([{"id": 3, **mode, "verified": {"n": 10, "k": 9, "rate": 0.9}}])
    store.close()
    sampler = SceneSampler(SceneSource(from_run=str(tested), mode_share=1.0, mode_region="need"))
    rng = np.random.default_rng(0)
    U = np.array([sampler.sample(rng, i)[1]["u"] for i in range(40)])
    assert (U[:, 0] >= 0.5).all()  # the knee stays in the box
    assert (U[:, 2] < 0.8).mean() > 0.5 and (np.abs(U[:, 3]) > 0.2).mean() > 0.5  # the camera roams
    with pytest.raises(GeneratorError, match="--mode-region must be one of box, need, failures"):
        SceneSampler(SceneSource(from_run=str(root), mode_region="everywhere"))


def test_failures_region_draws_near_every_failing_scene_of_the_log(run_dir, tmp_path):
    """--mode-region failures: scenes near the run's logged failures (plausible ones only,
    whatever the phase), each tagged with the mode whose box holds its anchor or NEAR_FAILURE;
    passing and implausible scenes are never anchors; a log without failures is a one-line error."""
    from examiner.store import RunStore
    from generators.errors import GeneratorError
    from generators.scenes import FAILURE_SIGMA, NEAR_FAILURE, SceneSampler, SceneSource

    root, space, lo, hi = run_dir
    logged = tmp_path / "logged"
    store = RunStore.create(logged, {"space": space.to_dict(), "dimension_names": space.names, "strategy": "test",
                                     "metric": "mpjpe", "threshold": 90.0, "seeds": {"root": 0}})
    store.write_modes([{"id": 3, "lo": lo.tolist(), "hi": hi.tolist(), "verified": {"n": 10, "k": 9, "rate": 0.9}}])
    points = [([0.7, 0.0, 0.9, 0.0], True, True, "verify"),     # inside the mode's box
              ([-0.8, -0.8, -0.5, 0.6], True, True, "search"),  # a failure outside it
              ([0.0, 0.0, 0.0, 0.0], False, True, "search"),    # passes
              ([0.3, 0.3, 0.3, -0.9], True, False, "probe")]    # implausible
    store.append([{"u": u, "i": i, "round": 0, "agent": 0, "job": None, "failed": f, "model_error": False,
                   "plausible": p, "phase": ph, "error": 120.0 if f else 40.0}
                  for i, (u, f, p, ph) in enumerate(points)])
    store.close()
    sampler = SceneSampler(SceneSource(from_run=str(logged), mode_share=0.5, mode_region="failures"))
    assert sampler.anchor_index.tolist() == [0, 1] and sampler.anchor_mode.tolist() == [3, NEAR_FAILURE]
    rng = np.random.default_rng(0)
    draws = [sampler.sample(rng, i) for i in range(200)]
    near = [info for _, info in draws if info["source"] == "failure"]
    assert len(near) == 100  # exactly the share
    for info in near:
        anchor = np.array(points[info["failure"]][0])
        assert info["mode"] == (3 if info["failure"] == 0 else NEAR_FAILURE)
        assert np.abs(np.array(info["u"]) - anchor).max() < 6 * FAILURE_SIGMA and np.abs(info["u"]).max() <= 1.0
    assert {info["failure"] for info in near} == {0, 1}
    with pytest.raises(GeneratorError, match="logged no failing scene"):
        SceneSampler(SceneSource(from_run=str(root), mode_region="failures"))
