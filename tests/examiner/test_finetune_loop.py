"""Closing the loop (issue 18): fine-tuning the baseline, the recheck table, the training
hook contract, and `examiner loop` resuming after a real kill -9.

Small sizes throughout: the baseline is fine-tuned on a handful of rendered scenes, the
loop runs on the analytic target (no renderer in the search) with a hook as trainer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from generators.engine import run_dataset
from simulator.params import ParamSpace

REPO = Path(__file__).resolve().parents[2]
HOOK = f"python:{REPO / 'docs' / 'examples' / 'finetune_hook.py'}:train"


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A fine-tuning set of 8 scenes from a hand-made run with one failure mode."""
    from examiner.store import RunStore
    from generators.finetune import FinetuneConfig

    base = tmp_path_factory.mktemp("ftset")
    root = base / "run"
    space = ParamSpace.from_groups("pose.l_knee_flexion,pose.r_knee_flexion,camera.azimuth,camera.elevation")
    store = RunStore.create(root, {"space": space.to_dict(), "dimension_names": space.names, "strategy": "test",
                                   "metric": "mpjpe", "threshold": 90.0, "seeds": {"root": 0}})
    store.write_modes([{"id": 0, "lo": [0.5, -1.0, 0.8, -0.2], "hi": [1.0, 1.0, 1.0, 0.2],
                        "verified": {"n": 10, "k": 9, "rate": 0.9}}])
    store.close()
    out = base / "set"
    run_dataset("finetune", FinetuneConfig(n=8, seed=1, shard_size=8, size=160, from_run=str(root), base_share=0.25,
                                           image_format="png"), out)
    return out


def test_set_npz_carries_scene_params_and_u(tiny_set):
    from generators.finetune import load_finetune
    from simulator.params import SceneParams

    lab = load_finetune(tiny_set)
    assert lab["u"].shape == (8, 4) and lab["scene"].shape == (8,)
    records = [json.loads(x) for x in (tiny_set / "samples.jsonl").read_text().splitlines()]
    for s, r in zip(lab["scene"], records):
        assert SceneParams.from_dict(json.loads(str(s))).to_dict() == SceneParams.from_dict(r["scene"]).to_dict()


@pytest.mark.slow
def test_finetune_moves_the_baseline_weights_and_is_reproducible(tiny_set, tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from examiner.training import baseline as bl
    from examiner.training import finetune as ft

    ex = ft.load_examples(tiny_set)
    assert ex["images"].shape == (8, bl.CROP, bl.CROP, 3) and ex["joints3d"].shape == (8, 17, 3)
    assert np.all((ex["joints2d"] > -0.05) & (ex["joints2d"] < 1.05))  # joints land inside the box crop
    data = {k: ex[k] for k in ("images", "joints3d", "joints2d")}
    cfg = ft.FinetuneConfig(epochs=2, batch=4, lr=1e-3, everyday_share=0.5, max_everyday_regression=10.0, seed=3)

    def run(config):
        net = ft.load_network("baseline")
        start = ft.state_hash(net)
        net, info = ft.finetune(net, ex, data, data, config)
        return start, ft.state_hash(net), net, info

    global_state = torch.random.get_rng_state()
    s1, h1, net, info = run(cfg)
    assert torch.equal(torch.random.get_rng_state(), global_state)  # the global RNG is restored
    s2, h2, _, _ = run(cfg)
    _, h3, _, _ = run(ft.FinetuneConfig(**{**cfg.__dict__, "seed": 4}))
    assert s1 == s2 and info["kept_epoch"] > 0
    assert h1 != s1  # the weights moved
    assert h1 == h2  # same seed, same weights
    assert h3 != h1  # another seed, other weights
    path = ft.export_model(net, tmp_path / "m", {"config": cfg.__dict__, **info})
    assert (tmp_path / "m" / "MODEL_CARD.md").read_text().startswith("# Fine-tuned baseline")
    back = bl.load_onnx_network(path).eval()
    x = bl._normalise(ex["images"][:3])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(sess.run(None, {"image": x.numpy()})[0], back(x)[0].numpy(), atol=1e-4)
        np.testing.assert_allclose(net.eval()(x)[0].numpy(), back(x)[0].numpy(), atol=1e-5)


def test_recipe_options_are_checked_in_one_line():
    from examiner.training import finetune as ft

    for bad, match in (({"truncate_aug": 1.5}, "truncate_aug"), ({"freeze_blocks": 6}, "freeze_blocks"),
                       ({"head_lr_mult": 0.0}, "multiplier"), ({"mode_weight": 0.0}, "mode_weight"),
                       ({"everyday_share_end": 1.0}, "everyday_share_end"), ({"flip_aug": -0.1}, "flip_aug")):
        with pytest.raises(ft.FinetuneError, match=match) as e:
            ft.FinetuneConfig(**bad).check()
        assert "\n" not in str(e.value)


@pytest.mark.slow
def test_mode_weight_and_replay_schedule_change_training(tiny_set):
    """mode_weight 1 is the plain mean (same weights as before the option existed: the same
    loss expression); another weight, or a replay schedule, trains other weights,
    reproducibly; the schedule's last epoch draws everyday_share_end's share."""
    pytest.importorskip("torch")
    from examiner.training import finetune as ft

    ex = ft.load_examples(tiny_set)
    assert (ex["mode"] >= 0).any() and (ex["mode"] < 0).any()
    data = {k: ex[k] for k in ("images", "joints3d", "joints2d")}
    base = dict(epochs=2, batch=4, lr=1e-3, everyday_share=0.5, max_everyday_regression=10.0, holdout=0.0, seed=2)

    def run(**kw):
        net, info = ft.finetune(ft.load_network("baseline"), ex, data, data, ft.FinetuneConfig(**{**base, **kw}))
        return ft.state_hash(net), info

    plain, _ = run()
    weighted, _ = run(mode_weight=3.0)
    assert weighted != plain and run(mode_weight=3.0)[0] == weighted
    sched, info = run(everyday_share_end=0.0)
    assert sched != plain and info["everyday_per_epoch"] == 0


def test_a_loop_saved_before_the_new_recipe_options_resumes():
    """loop.json written before mode_weight / everyday_share_end existed compares equal to
    today's defaults (they train exactly as before), and a real difference still shows."""
    import dataclasses

    from examiner.app.loop import with_new_recipe_defaults
    from examiner.training.finetune import FinetuneConfig

    now = dataclasses.asdict(FinetuneConfig())
    saved = {k: v for k, v in now.items() if k not in ("mode_weight", "everyday_share_end", "flip_aug")}
    assert with_new_recipe_defaults(saved) == now
    assert with_new_recipe_defaults({**saved, "lr": 1.0}) != now
    assert with_new_recipe_defaults({**now, "mode_weight": 2.0}) != now
    assert with_new_recipe_defaults(None) is None


def test_a_loop_saved_with_another_thread_count_resumes(tmp_path):
    """`threads` says how to train, not what: a loop saved with threads 1 (the default
    before 2026-12-06, and not a CLI flag) resumes; another epoch count is still refused."""
    import dataclasses

    from examiner.app.loop import LoopError, run_loop
    from examiner.training.finetune import FinetuneConfig

    config = {"model": "baseline", "rounds": 1, "space": "pose,camera,occluder", "budget": 1500, "agents": 4,
              "strategy": "marl", "n": 6000, "base_share": 0.2, "samples": 40, "seed": 0, "trainer": "builtin",
              "finetune": {**dataclasses.asdict(FinetuneConfig()), "threads": 1}, "threshold": 90.0,
              "everyday_n": 200}
    stopped = {"round": 1, "model_before": "baseline", "cpu": {}, "wall": {}, "stopped": "nothing to fine-tune on",
               "examine": {"run": "-", "evaluations": 0, "failures": 0, "modes": [], "search_failure_rate": 0.0}}
    state = {"schema": "poseexaminer-loop", "schema_version": 1, "config": config, "rounds": [stopped],
             "status": "complete", "threshold": 90.0, "threshold_rule": None}
    (tmp_path / "loop.json").write_text(json.dumps(state))
    said = []
    out = run_loop(tmp_path, rounds=1, threshold=90.0, quiet=True, log=said.append)
    assert "resuming the loop in" in said[0] and out["rounds"][0]["stopped"] == "nothing to fine-tune on"
    with pytest.raises(LoopError, match="other options .*finetune"):
        run_loop(tmp_path, rounds=1, threshold=90.0, quiet=True, finetune={"epochs": 3}, log=said.append)


def test_truncate_crops_moves_the_2d_targets_with_the_pixels():
    """A bright dot drawn at each of two joints lands where the transformed 2D targets say,
    the cut-off side turns black, and frac=0 changes nothing."""
    torch = pytest.importorskip("torch")
    from examiner.training import finetune as ft

    j2 = torch.full((4, 17, 2), 0.5)
    j2[:, :, 0] = torch.linspace(0.3, 0.7, 17)  # the body spans 0.3..0.7 in x and 0.25..0.75 in y
    j2[:, :, 1] = torch.linspace(0.25, 0.75, 17)
    img = torch.full((4, 128, 128, 3), 90, dtype=torch.uint8)
    for j in (4, 12):
        u, v = (j2[0, j] * 128).long()
        img[:, v - 1:v + 2, u - 1:u + 2] = 255
    same, t0 = ft.truncate_crops(img, j2, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(t0, j2) and torch.allclose(same, img.permute(0, 3, 1, 2).float())
    x, t = ft.truncate_crops(img, j2, 1.0, torch.Generator().manual_seed(0))
    x2, t2 = ft.truncate_crops(img, j2, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(t, t2)  # seeded
    assert not torch.equal(t, j2)
    checked = 0
    for b in range(4):
        assert (x[b] < 1).any()  # the part beyond the simulated border is black
        for j in (4, 12):
            u, v = t[b, j] * 128
            if 3 <= u < 125 and 3 <= v < 125 and x[b, 0, int(v), int(u)] > 0:  # a joint not cut off
                patch = x[b, 0, int(v) - 3:int(v) + 4, int(u) - 3:int(u) + 4]
                assert patch.max() > 200, (b, j)  # its dot is where the new target says
                checked += 1
    assert checked >= 3


def test_flip_examples_mirror_the_pixels_and_swap_left_and_right():
    """A dot drawn at the left wrist lands, after the flip, where the new RIGHT wrist's 2D
    target says (the mirrored person's right hand is the original's left); 3D x changes
    sign; midline joints keep their index; unpicked examples and a second flip are unchanged."""
    torch = pytest.importorskip("torch")
    from examiner.training import finetune as ft
    from simulator.joints import H36M17

    lw, rw, head = H36M17.index("left_wrist"), H36M17.index("right_wrist"), H36M17.index("head_top")
    assert ft.MIRROR[lw] == rw and ft.MIRROR[rw] == lw and ft.MIRROR[head] == head
    gen = torch.Generator().manual_seed(0)
    j2 = torch.rand(3, 17, 2, generator=gen) * 0.8 + 0.1
    j3 = torch.randn(3, 17, 3, generator=gen)
    x = torch.zeros(3, 3, 128, 128)
    for b in range(3):
        u, v = (j2[b, lw] * 128).long()
        x[b, :, v - 1:v + 2, u - 1:u + 2] = 1.0
    pick = torch.tensor([True, False, True])
    fx, f3, f2 = ft.flip_examples(x, j3, j2, pick)
    for b in (0, 2):
        u, v = (f2[b, rw] * 128).long()
        assert fx[b, 0, v - 2:v + 3, u - 2:u + 3].max() == 1.0  # the dot is under the new right wrist
        assert torch.allclose(f3[b, rw], j3[b, lw] * torch.tensor([-1.0, 1.0, 1.0]))
        assert torch.allclose(f2[b, head], torch.stack([1 - j2[b, head, 0], j2[b, head, 1]]))
    assert torch.equal(fx[1], x[1]) and torch.equal(f3[1], j3[1]) and torch.equal(f2[1], j2[1])
    gx, g3, g2 = ft.flip_examples(fx, f3, f2, pick)
    assert torch.equal(gx, x) and torch.allclose(g3, j3) and torch.allclose(g2, j2)


@pytest.mark.slow
def test_frozen_stages_stay_and_the_rest_moves(tiny_set):
    pytest.importorskip("torch")
    from examiner.training import finetune as ft

    ex = ft.load_examples(tiny_set)
    data = {k: ex[k] for k in ("images", "joints3d", "joints2d")}
    net = ft.load_network("baseline")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = ft.FinetuneConfig(epochs=1, batch=4, lr=1e-3, everyday_share=0.5, max_everyday_regression=10.0,
                            freeze_blocks=2, head_lr_mult=2.0, truncate_aug=0.5, holdout=0.0, seed=1)
    net, _ = ft.finetune(net, ex, data, data, cfg)
    after = net.state_dict()
    for k in before:
        moved = not before[k].equal(after[k])
        assert moved == (not k.startswith(("features.0.", "features.1."))), k


def test_load_onnx_network_refuses_other_models(tmp_path):
    from examiner.training import baseline as bl
    from simulator.errors import PoseExaminerError

    with pytest.raises(PoseExaminerError, match="does not exist"):
        bl.load_onnx_network(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(PoseExaminerError) as e:
        bl.load_onnx_network(tmp_path / "junk.onnx")
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def analytic_run(tmp_path_factory):
    from examiner.app.cli import main

    out = tmp_path_factory.mktemp("arun") / "run"
    rc = main(["-q", "run", "--model", "analytic:planted", "--space", "joints,camera", "--strategy", "random",
               "--agents", "4", "--seed", "3", "--budget", "400", "--out", str(out), "--no-report"])
    assert rc == 0
    return out


def test_recheck_counts_fair_samples_only(analytic_run, monkeypatch):
    """Like the search's verification, a recheck rate is over the plausible scenes: every
    other sample implausible (a self-penetrating body, or too few joints in view) and every
    plausible one failing reads 100%, not 50%, with the others reported as excluded."""
    from examiner import recheck as rc
    from examiner.search import factory
    from examiner.search.outcome import Outcome
    from reports.rundata import load_run

    class Half:
        def evaluate(self, U):
            return [Outcome(200.0 + i, {"pa_mpjpe": 200.0 + i}, plausible=i % 2 == 0) for i in range(len(U))]

        def close(self):
            pass

    monkeypatch.setattr(factory, "build_evaluator", lambda *a, **k: Half())
    res = rc.recheck_modes(load_run(analytic_run), "anything", samples=10, probe=0, seed=0)
    assert res.modes and all((s.k, s.n, s.excluded, s.rate) == (5, 5, 5, 1.0) for s in res.modes)
    assert all(s.median == 204.0 for s in res.modes)  # over the counted samples 200, 202, ..., 208


def test_recheck_table_matches_examiner_recheck_by_hand(analytic_run, capsys):
    from examiner.app.cli import main
    from examiner.app.finetune import mode_table

    rows = mode_table(analytic_run, "analytic:planted", "analytic:hidden", samples=12, seed=5)
    assert rows, "the analytic run has failure modes"
    for spec, key in (("analytic:planted", "k_before"), ("analytic:hidden", "k_after")):
        capsys.readouterr()
        rc = main(["-q", "recheck", str(analytic_run), "--model", spec, "--samples", "12", "--probe", "0",
                   "--seed", "5", "--json"])
        assert rc == 0
        cmp = json.loads(capsys.readouterr().out)
        by_id = {m["id"]: m for m in cmp["modes"]}
        for r in rows:
            assert by_id[r["id"]]["k_b"] == r[key] and by_id[r["id"]]["n_b"] == r["n"] == 12
    assert any(r["k_before"] != r["k_after"] for r in rows)  # the two models differ somewhere
    # ... and each mode whose constraint test found what it needs is rechecked in its need
    # region too (the planted regions' constraints matter, so every mode here has one).
    needs = [r["need"] for r in rows if r["need"]]
    assert needs and all(n["n"] == 12 and n["dimensions"] for n in needs)


def test_hook_contract_one_line_errors(tmp_path):
    from examiner.training.hooks import HookError, call_hook, check_returned_spec, load_hook

    mod = tmp_path / "hooks_mod.py"
    mod.write_text("def good(d, m):\n    return 'analytic:hidden'\n"
                   "def number(d, m):\n    return 42\n"
                   "def empty(d, m):\n    return ''\n"
                   "def kind(d, m):\n    return 'nonsense:thing'\n"
                   "def gone(d, m):\n    return 'onnx:/nowhere/model.onnx'\n"
                   "def boom(d, m):\n    raise ValueError('out of memory')\n"
                   "NOT_CALLABLE = 3\n")
    spec = f"python:{mod}"
    assert call_hook(f"{spec}:good", tmp_path, "analytic:planted") == "analytic:hidden"
    for name, words in (("number", "returned int"), ("empty", "empty string"), ("kind", "not a model spec"),
                        ("gone", "does not exist"), ("boom", "raised ValueError: out of memory"),
                        ("NOT_CALLABLE", "not a function"), ("missing", "has no function")):
        with pytest.raises(HookError) as e:
            call_hook(f"{spec}:{name}", tmp_path, "analytic:planted")
        assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    for bad in ("pkg.module:train", "python:nomodule_xyz_123:train", "python:x.py", f"python:{tmp_path}/no.py:train"):
        with pytest.raises(HookError) as e:
            load_hook(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(HookError, match="multi-line"):
        check_returned_spec("analytic:planted\nrm -rf", "h")


def test_the_new_model_keeps_the_evaluator_options_the_trainer_never_sees(tmp_path):
    """`baseline?sim.joints=in_frame`: the trainer gets the model without the evaluator's
    sim.* options; the new model's spec carries them, so that the loop examines and
    rechecks it as it did the old one."""
    from examiner.app.finetune import train_model
    from examiner.search.sim_evaluator import SearchConfigError

    seen = tmp_path / "seen.txt"
    mod = tmp_path / "carry_hook.py"
    mod.write_text(f"def train(d, m):\n    open({str(seen)!r}, 'w').write(m)\n    return 'analytic:hidden'\n"
                   "def own(d, m):\n    return 'analytic:hidden?sim.joints=all'\n")
    spec, card = train_model(f"python:{mod}:train", "analytic:planted?cpu_ms=4&sim.joints=in_frame&sim.renderer=pyrender",
                             [tmp_path], tmp_path / "m", None)
    assert seen.read_text() == "analytic:planted?cpu_ms=4" and card is None
    assert spec == "analytic:hidden?sim.joints=in_frame&sim.renderer=pyrender"
    spec, _ = train_model(f"python:{mod}:train", "analytic:planted?cpu_ms=4", [tmp_path], tmp_path / "m", None)
    assert seen.read_text() == "analytic:planted?cpu_ms=4" and spec == "analytic:hidden"  # no options: untouched
    with pytest.raises(SearchConfigError, match="contradicts sim.joints=all"):  # a hook that says otherwise
        train_model(f"python:{mod}:own", "baseline?sim.joints=in_frame", [tmp_path], tmp_path / "m", None)


def test_documented_hook_trains_a_tiny_model_end_to_end(tiny_set):
    pytest.importorskip("torch")
    from examiner.search.factory import build_evaluator
    from examiner.training.hooks import call_hook

    spec = call_hook(HOOK, tiny_set, "baseline")
    assert spec.startswith("onnx:") and Path(spec[5:]).is_file()
    w1 = Path(spec[5:]).with_suffix(".pt").read_bytes()
    spec2 = call_hook(HOOK, tiny_set, spec)  # continues from its own export
    assert spec2 == spec and Path(spec[5:]).with_suffix(".pt").read_bytes() != w1
    space = ParamSpace.from_groups("pose.l_knee_flexion,camera.azimuth")
    ev = build_evaluator(spec, space, 90.0, 0)
    try:
        outcomes = ev.evaluate(np.zeros((2, space.dim)))
    finally:
        ev.close()
    assert len(outcomes) == 2 and all(np.isfinite(o.error) for o in outcomes)


LOOP_ARGS = ["--model", "analytic:planted?cpu_ms=4", "--space", "joints,camera", "--strategy", "random",
             "--agents", "4", "--budget", "240", "--rounds", "2", "--n", "4", "--samples", "6", "--seed", "2",
             "--workers", "1", "--threshold", "90", "--everyday-n", "0", "--quiet"]


def _loop(out: Path, hook: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "examiner.app.loop", *LOOP_ARGS, "--trainer", hook, "--out", str(out)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_loop_resumes_after_kill_9(tmp_path):
    hook_file = tmp_path / "idhook.py"
    hook_file.write_text("def train(d, m):\n    return 'analytic:hidden?cpu_ms=4'\n")
    hook = f"python:{hook_file}:train"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    p = _loop(ref, hook, env)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    p = _loop(killed, hook, env)
    log = killed / "round-1" / "run" / "evaluations.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) > 40):
        time.sleep(0.05)
    assert p.poll() is None, "the loop finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    state = json.loads((killed / "loop.json").read_text())
    assert state["status"] == "running" and "examine" not in state["rounds"][0]
    p = _loop(killed, hook, env)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    a = json.loads((ref / "loop.json").read_text())
    b = json.loads((killed / "loop.json").read_text())
    assert b["status"] == "complete" and len(b["rounds"]) == len(a["rounds"])
    for ra, rb in zip(a["rounds"], b["rounds"]):
        assert ra.get("stopped") == rb.get("stopped")
        assert ra["examine"]["evaluations"] == rb["examine"]["evaluations"]
        assert ra["examine"]["modes"] == rb["examine"]["modes"]
        assert ra.get("recheck") == rb.get("recheck")
    ev_a = (ref / "round-1" / "run" / "evaluations.jsonl").read_text().splitlines()
    ev_b = log.read_text().splitlines()
    assert len(ev_a) == len(ev_b)  # nothing lost, nothing logged twice
    page = (killed / "loop.html").read_text()
    assert page.count("<h2>Round") == len(b["rounds"])
    assert b["rounds"][0]["examine"]["report"] == str(killed / "round-1" / "run" / "report.html")
    assert (killed / "round-1" / "run" / "report.html").is_file() and 'href="round-1/run/report.html"' in page


def test_commands_refuse_bad_input_in_one_line(tmp_path, capsys):
    from examiner.app.cli import main

    def run(*args):
        capsys.readouterr()
        rc = main(["-q", *args])
        return rc, capsys.readouterr().err.strip()

    rc, err = run("finetune", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert rc != 0 and "is not a search run" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
    rc, err = run("finetune", "--run", str(tmp_path), "--out", str(tmp_path / "o"), "--trainer", "python:x")
    assert rc != 0 and "\n" not in err
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "loop.json").write_text(json.dumps({"config": {"model": "analytic:planted", "budget": 999}}))
    rc, err = run("loop", "--model", "analytic:planted", "--out", str(loop), "--budget", "50", "--threshold", "90")
    assert rc != 0 and "other options" in err and "budget" in err and "\n" not in err
    rc, err = run("loop", "--out", str(tmp_path / "l2"), "--rounds", "0")
    assert rc != 0 and "--rounds" in err and "\n" not in err
    rc, err = run("loop", "--out", str(tmp_path / "l3"), "--joints", "hidden")
    assert rc != 0 and "--joints must be all, in_frame or visible" in err and "\n" not in err
    assert not (tmp_path / "l3").exists()
    rc, err = run("loop", "--model", "baseline?sim.joints=visible", "--out", str(tmp_path / "l4"), "--joints", "in_frame")
    assert rc != 0 and "contradicts" in err and "\n" not in err
    rc, err = run("loop", "--out", str(tmp_path / "l5"), "--mode-scenes", "0")
    assert rc != 0 and "--mode-scenes must be at least 1" in err and "\n" not in err
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "meta.json").write_text("{}")
    rc, err = run("finetune", "--run", str(run_dir), "--out", str(tmp_path / "o2"), "--mode-scenes", "-3")
    assert rc != 0 and "--mode-scenes must be at least 1" in err and "\n" not in err
    rc, err = run("generate", "finetune", "--from-run", str(run_dir), "--out", str(tmp_path / "o3"), "--mode-scenes", "0")
    assert rc != 0 and "--mode-scenes must be at least 1" in err and "\n" not in err
    for args in (("loop", "--out", str(tmp_path / "l6")), ("finetune", "--run", str(run_dir), "--out", str(tmp_path / "o4")),
                 ("generate", "finetune", "--from-run", str(run_dir), "--out", str(tmp_path / "o5"))):
        rc, err = run(*args, "--mode-region", "everywhere")
        assert rc != 0 and "--mode-region must be one of box, need" in err and "\n" not in err, (args, err)


def test_mode_scenes_give_each_mode_its_share_and_the_rest_to_the_whole_space(tmp_path):
    from examiner.app.finetune import mode_scenes_share

    def share(n_modes, n, k):
        (tmp_path / "modes.json").write_text(json.dumps([{"id": i} for i in range(n_modes)]))
        return mode_scenes_share(tmp_path, n, k)

    assert share(1, 24000, 4800) == pytest.approx(0.8)  # the visible-joint round's "base 0.8"
    assert share(3, 24000, 4800) == pytest.approx(0.4)  # the in-frame round's "base 0.4"
    assert share(3, 6000, 4800) == 0.0  # the modes ask for more than n: all of it goes to them
    assert share(0, 6000, 4800) == 1.0


def test_a_loop_rechecked_by_an_older_version_recounts_on_resume(analytic_run, tmp_path):
    """A recheck saved before fair counting (no "excluded"; unscored samples counted as
    passes) is recounted when the loop resumes, and says so; a current one is kept."""
    import dataclasses
    import shutil

    from examiner.app.loop import _rates_on, run_loop
    from examiner.training.finetune import FinetuneConfig

    shutil.copytree(analytic_run, tmp_path / "round-1" / "run")
    run, before, after = str(tmp_path / "round-1" / "run"), "analytic:planted", "analytic:hidden"
    config = {"model": before, "rounds": 1, "space": "joints,camera", "budget": 400, "agents": 4,
              "strategy": "random", "n": 10, "base_share": 0.2, "samples": 8, "seed": 0, "trainer": "builtin",
              "finetune": dataclasses.asdict(FinetuneConfig()), "threshold": 90.0, "everyday_n": 0}
    old_row = {"rank": 1, "id": 0, "n": 8, "k": 0, "rate": 0.0, "median": 1.0}
    round1 = {"round": 1, "model_before": before, "cpu": {}, "wall": {}, "set": "-", "model_after": after,
              "examine": {"run": run, "evaluations": 400, "failures": 1, "modes": [{"id": 0}], "search_failure_rate": 0.1},
              "everyday": None, "kept_epoch": None, "recheck": {"before": [old_row], "after": [old_row],
                                                                 "earlier_rounds_after": {}}}
    state = {"schema": "poseexaminer-loop", "schema_version": 1, "config": config, "rounds": [round1],
             "status": "complete", "threshold": 90.0, "threshold_rule": None}
    (tmp_path / "loop.json").write_text(json.dumps(state))
    said = []
    out = run_loop(tmp_path, model=before, rounds=1, space="joints,camera", budget=400, strategy="random", n=10,
                   samples=8, threshold=90.0, everyday_n=0, quiet=True, log=said.append)
    rc = out["rounds"][0]["recheck"]
    assert any("recounting the recheck" in m for m in said)
    assert rc["before"] == _rates_on(run, before, 8, 0) and rc["after"] == _rates_on(run, after, 8, 0)
    assert all("excluded" in x for x in rc["before"] + rc["after"])
    # each mode with a need is rechecked in its need region too, like `examiner finetune`
    from examiner.app.loop import _need_rates_on

    assert rc["need"] and rc["need"] == _need_rates_on(run, before, after, 8, 0)
    assert {x["id"] for x in rc["need"]} <= {x["id"] for x in rc["before"]} and all(x["dimensions"] for x in rc["need"])
    said.clear()
    again = run_loop(tmp_path, model=before, rounds=1, space="joints,camera", budget=400, strategy="random", n=10,
                     samples=8, threshold=90.0, everyday_n=0, quiet=True, log=said.append)
    assert again["rounds"][0]["recheck"] == rc and not any("recounting" in m for m in said)
