"""Fuzz the CLI with malformed values and damaged files (issue 17).

Every case goes through the real command line (`examiner.app.cli.main`, in process) and must
end with exit status 1 or 2, exactly one line on stderr, no traceback, and every file in
the workspace unchanged (no input rewritten, no output folder left behind)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from examiner.app.cli import main
from examiner.store import EVAL_FILE, META_FILE, MODES_FILE, SUMMARY_FILE

GOOD_SCENE = {"pose": {"l_knee_flexion": 0.5}}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace: a finished analytic run, damaged copies of it, scenes and configs."""
    root = tmp_path_factory.mktemp("fuzz")
    good = root / "good"
    assert main(["-q", "run", "--model", "analytic:planted", "--space", "camera", "--strategy", "random",
                 "--agents", "4", "--budget", "120", "--out", str(good), "--no-report"]) == 0

    def damaged(name: str, change: Callable[[Path], None]) -> None:
        d = root / name
        shutil.copytree(good, d)
        change(d)

    def edit_json(file: str, fn: Callable[[dict], object]) -> Callable[[Path], None]:
        def change(d: Path) -> None:
            data = json.loads((d / file).read_text())
            (d / file).write_text(json.dumps(fn(data)))
        return change

    def edit_log(fn: Callable[[list[bytes]], list[bytes]]) -> Callable[[Path], None]:
        def change(d: Path) -> None:
            lines = (d / EVAL_FILE).read_bytes().splitlines(keepends=True)
            (d / EVAL_FILE).write_bytes(b"".join(fn(lines)))
        return change

    def bad_u(lines: list[bytes]) -> list[bytes]:
        rec = json.loads(lines[5])
        rec["u"] = "abc"
        return lines[:5] + [(json.dumps(rec) + "\n").encode()] + lines[6:]

    damaged("modes_types", edit_json(MODES_FILE, lambda d: {"modes": [{"id": "x", "lo": "abc", "hi": None, "verified": 3}]}))
    damaged("modes_not_list", edit_json(MODES_FILE, lambda d: {"modes": 5}))
    damaged("modes_not_json", lambda d: (d / MODES_FILE).write_text('{"modes": [{"id": 0,'))
    damaged("summary_truncated", lambda d: (d / SUMMARY_FILE).write_text((d / SUMMARY_FILE).read_text()[:40]))
    damaged("meta_space_list", edit_json(META_FILE, lambda m: {**m, "space": [1, 2, 3]}))
    damaged("meta_space_dims_str", edit_json(META_FILE, lambda m: {**m, "space": {"dimensions": "abc"}}))
    damaged("meta_list", edit_json(META_FILE, lambda m: [m]))
    damaged("meta_not_json", lambda d: (d / META_FILE).write_text("{"))
    damaged("meta_threshold_str", edit_json(META_FILE, lambda m: {**m, "threshold": "high"}))
    damaged("record_bad_u", edit_log(bad_u))
    damaged("log_mid_garbage", edit_log(lambda ls: ls[:20] + [b"\x00\x00garbage\n"] + ls[20:]))
    damaged("log_array_line", edit_log(lambda ls: ls[:3] + [b"[1, 2, 3]\n"] + ls[3:]))
    damaged("no_meta", lambda d: (d / META_FILE).unlink())

    (root / "a_file").write_text("not a folder")
    (root / "dir").mkdir()
    (root / "nonempty").mkdir()
    (root / "nonempty" / "keep.txt").write_text("keep")
    (root / "model.onnx").write_bytes(b"not really onnx")
    (root / "model.py").write_text("def make():\n    raise SystemExit('never called')\n")
    scenes = {
        "scene_good": GOOD_SCENE,
        "scene_str_number": {"pose": {"l_knee_flexion": "0.5"}},
        "scene_null_object": {"camera": None},
        "scene_list": [1, 2],
        "scene_width_float": {"camera": {"width": 256.5}},
        "scene_width_zero": {"camera": {"width": 0}},
        "scene_bool": {"skin_tone": True},
        "scene_nan": {"light": {"intensity": float("nan")}},
        "scene_unknown": {"wings": 2},
    }
    for name, data in scenes.items():
        (root / f"{name}.json").write_text(json.dumps(data))
    configs = {
        "cfg_lr": "ppo:\n  learning_rate: -1\n",
        "cfg_ckpt": "checkpoint_every: \"x\"\n",
        "cfg_arch": "ppo:\n  net_arch: abc\n",
        "cfg_nested": "ppo: 5\n",
        "cfg_unknown": "budgett: 10\n",
        "cfg_budget_list": "budget: [1, 2]\n",
        "cfg_yaml": "budget: [1, 2\n",
        "cfg_region": "region:\n  min_failure_rate: 2\n",
        "cfg_threshold": "threshold: abc\n",
        "cfg_gamma": "ppo:\n  gamma: null\n",
    }
    for name, text in configs.items():
        (root / f"{name}.yaml").write_text(text)
    return root


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


RUN = ["run", "--model", "analytic:planted", "--space", "camera", "--strategy", "random", "--budget", "40", "--no-report"]
LONG = "x" * 300

# (id, argv with {ws} for the workspace)
CASES: list[tuple[str, list[str]]] = [
    # run: values
    ("run-budget-0", [*RUN, "--budget", "0", "--out", "{ws}/o"]),
    ("run-budget-huge", [*RUN, "--budget", "20000000", "--out", "{ws}/o"]),
    ("run-budget-1e23", [*RUN, "--budget", "1e23", "--out", "{ws}/o"]),
    ("run-threshold-neg", [*RUN, "--threshold", "-1", "--out", "{ws}/o"]),
    ("run-threshold-0", [*RUN, "--threshold", "0", "--out", "{ws}/o"]),
    ("run-threshold-nan", [*RUN, "--threshold", "nan", "--out", "{ws}/o"]),
    ("run-threshold-inf", [*RUN, "--threshold", "inf", "--out", "{ws}/o"]),
    ("run-seed-neg", [*RUN, "--seed", "-1", "--out", "{ws}/o"]),
    ("run-agents-0", [*RUN, "--agents", "0", "--out", "{ws}/o"]),
    ("run-workers-0", [*RUN, "--workers", "0", "--out", "{ws}/o"]),
    ("run-backend", [*RUN, "--backend", "slurm", "--out", "{ws}/o"]),
    ("run-strategy", [*RUN, "--strategy", "magic", "--out", "{ws}/o"]),
    ("run-metric", [*RUN, "--metric", "vibes", "--out", "{ws}/o"]),
    ("run-space", [*RUN, "--space", "pose,cam", "--out", "{ws}/o"]),
    ("run-no-out", [*RUN]),
    ("run-model-empty", [*RUN, "--model", "", "--out", "{ws}/o"]),
    ("run-model-kind", [*RUN, "--model", "nope:x", "--out", "{ws}/o"]),
    ("run-model-quote", [*RUN, "--model", "cmd:\"unclosed", "--out", "{ws}/o"]),
    ("run-whitebox-nan", [*RUN, "--model", "whitebox:camera.roll=0.5:1?error=nan", "--out", "{ws}/o"]),
    ("run-whitebox-inverted", [*RUN, "--model", "whitebox:camera.roll=1:0.5", "--out", "{ws}/o"]),
    ("run-whitebox-option", [*RUN, "--model", "whitebox:camera.roll=0.5:1?error=abc", "--out", "{ws}/o"]),
    ("run-onnx-missing", [*RUN, "--model", "onnx:{ws}/missing.onnx", "--out", "{ws}/o"]),
    ("run-onnx-dir", [*RUN, "--model", "onnx:{ws}/dir", "--out", "{ws}/o"]),
    ("run-onnx-config-missing", [*RUN, "--model", "onnx:{ws}/model.onnx?config={ws}/missing.yaml", "--out", "{ws}/o"]),
    ("run-onnx-config-dir", [*RUN, "--model", "onnx:{ws}/model.onnx?config={ws}/dir", "--out", "{ws}/o"]),
    ("run-python-dir", [*RUN, "--model", "python:{ws}/dir:make", "--out", "{ws}/o"]),
    ("run-python-no-factory", [*RUN, "--model", "python:{ws}/model.py:nothing", "--out", "{ws}/o"]),
    ("run-out-file", [*RUN, "--out", "{ws}/a_file"]),
    ("run-out-nonempty", [*RUN, "--out", "{ws}/nonempty"]),
    ("run-out-long", [*RUN, "--out", "{ws}/" + LONG]),
    ("run-out-under-file", [*RUN, "--out", "{ws}/a_file/sub"]),
    ("run-config-missing", [*RUN, "--config", "{ws}/missing.yaml", "--out", "{ws}/o"]),
    ("run-config-dir", [*RUN, "--config", "{ws}/dir", "--out", "{ws}/o"]),
    *[(f"run-{name}", [*RUN, "--config", f"{{ws}}/{name}.yaml", "--out", "{ws}/o"]) for name in (
        "cfg_lr", "cfg_ckpt", "cfg_arch", "cfg_nested", "cfg_unknown", "cfg_budget_list", "cfg_yaml", "cfg_region",
        "cfg_threshold", "cfg_gamma")],
    # run --resume: damaged or foreign runs
    ("resume-missing", ["run", "--resume", "{ws}/missing"]),
    ("resume-file", ["run", "--resume", "{ws}/a_file"]),
    ("resume-config", ["run", "--resume", "{ws}/good", "--config", "{ws}/cfg_lr.yaml"]),
    ("resume-overwrite", ["run", "--resume", "{ws}/good", "--overwrite"]),
    ("resume-other-out", ["run", "--resume", "{ws}/good", "--out", "{ws}/o"]),
    ("resume-other-model", ["run", "--resume", "{ws}/good", "--model", "analytic:hidden"]),
    *[(f"resume-{name}", ["run", "--resume", f"{{ws}}/{name}"]) for name in (
        "meta_space_list", "meta_list", "meta_not_json", "log_mid_garbage", "log_array_line", "no_meta",
        "meta_space_dims_str")],
    # report / diff / recheck on damaged runs
    *[(f"report-{name}", ["report", f"{{ws}}/{name}", "--no-images"]) for name in (
        "modes_types", "modes_not_list", "modes_not_json", "summary_truncated", "meta_space_list", "meta_list",
        "meta_not_json", "meta_threshold_str", "record_bad_u", "log_mid_garbage", "log_array_line", "no_meta",
        "meta_space_dims_str")],
    ("report-missing", ["report", "{ws}/missing"]),
    ("report-file", ["report", "{ws}/a_file"]),
    ("report-rule", ["report", "{ws}/good", "--fail-on", "modes>>0"]),
    ("report-rule-name", ["report", "{ws}/good", "--fail-on", "vibes>0"]),
    ("report-out-file", ["report", "{ws}/good", "--no-images", "--out", "{ws}/a_file"]),
    ("report-junit-dir", ["report", "{ws}/good", "--no-images", "--junit", "{ws}/dir"]),
    ("report-gate-unreadable", ["report", "{ws}/modes_types", "--no-images", "--fail-on", "modes>0"]),
    ("diff-overlap-neg", ["diff", "{ws}/good", "{ws}/good", "--overlap", "-3"]),
    ("diff-overlap-nan", ["diff", "{ws}/good", "{ws}/good", "--overlap", "nan"]),
    ("diff-overlap-0", ["diff", "{ws}/good", "{ws}/good", "--overlap", "0"]),
    ("diff-overlap-2", ["diff", "{ws}/good", "{ws}/good", "--overlap", "2"]),
    ("diff-out-dir", ["diff", "{ws}/good", "{ws}/good", "--out", "{ws}/dir"]),
    *[(f"diff-{name}", ["diff", "{ws}/good", f"{{ws}}/{name}"]) for name in (
        "modes_types", "summary_truncated", "meta_space_list", "record_bad_u", "log_mid_garbage")],
    ("recheck-search-budget", ["recheck", "{ws}/good", "--model", "analytic:planted", "--search-budget", "-10"]),
    ("recheck-samples", ["recheck", "{ws}/good", "--model", "analytic:planted", "--samples", "0"]),
    ("recheck-probe", ["recheck", "{ws}/good", "--model", "analytic:planted", "--probe", "-1"]),
    ("recheck-seed", ["recheck", "{ws}/good", "--model", "analytic:planted", "--seed", "-1"]),
    ("recheck-model", ["recheck", "{ws}/good", "--model", "nope:x"]),
    ("recheck-search-out", ["recheck", "{ws}/good", "--model", "analytic:planted", "--search-budget", "40",
                            "--search-out", "{ws}/nonempty"]),
    ("recheck-damaged", ["recheck", "{ws}/modes_types", "--model", "analytic:planted"]),
    # evaluate / sample / render
    ("evaluate-batch-0", ["evaluate", "--model", "whitebox:", "--batch-size", "0", "--out", "{ws}/o"]),
    ("evaluate-seed", ["evaluate", "--model", "whitebox:", "--seed", "-1", "--out", "{ws}/o"]),
    ("evaluate-calibrate", ["evaluate", "--model", "whitebox:", "--calibrate", "-1", "--out", "{ws}/o"]),
    ("evaluate-render-workers", ["evaluate", "--model", "whitebox:", "--render-workers", "-1", "--out", "{ws}/o"]),
    ("evaluate-n", ["evaluate", "--model", "whitebox:", "--n", "0", "--out", "{ws}/o"]),
    ("evaluate-out-file", ["evaluate", "--model", "whitebox:", "--out", "{ws}/a_file"]),
    ("evaluate-out-nonempty", ["evaluate", "--model", "whitebox:", "--out", "{ws}/nonempty"]),
    ("evaluate-whitebox-nan", ["evaluate", "--model", "whitebox:?error=nan", "--out", "{ws}/o"]),
    ("evaluate-model", ["evaluate", "--model", "onnx:{ws}/missing.onnx", "--out", "{ws}/o"]),
    ("evaluate-space", ["evaluate", "--model", "whitebox:", "--space", "nope", "--out", "{ws}/o"]),
    ("sample-seed", ["sample", "--seed", "-1", "--out", "{ws}/o"]),
    ("sample-size-small", ["sample", "--size", "8", "--out", "{ws}/o"]),
    ("sample-size-huge", ["sample", "--size", "100000", "--out", "{ws}/o"]),
    ("sample-size-float", ["sample", "--size", "256.5", "--out", "{ws}/o"]),
    ("sample-n", ["sample", "--n", "0", "--out", "{ws}/o"]),
    ("sample-backgrounds-missing", ["sample", "--backgrounds", "/nonexistent", "--out", "{ws}/o"]),
    ("sample-backgrounds-file", ["sample", "--backgrounds", "{ws}/a_file", "--out", "{ws}/o"]),
    ("sample-backgrounds-empty", ["sample", "--backgrounds", "{ws}/dir", "--out", "{ws}/o"]),
    ("sample-out-file", ["sample", "--out", "{ws}/a_file"]),
    ("sample-out-nonempty", ["sample", "--out", "{ws}/nonempty"]),
    ("render-params-dir", ["render", "--params", "{ws}/dir", "--out", "{ws}/o"]),
    ("render-params-missing", ["render", "--params", "{ws}/missing.json", "--out", "{ws}/o"]),
    *[(f"render-{name}", ["render", "--params", f"{{ws}}/{name}.json", "--out", "{ws}/o"]) for name in (
        "scene_str_number", "scene_null_object", "scene_list", "scene_width_float", "scene_width_zero", "scene_bool",
        "scene_nan", "scene_unknown")],
    ("render-out-file", ["render", "--params", "{ws}/scene_good.json", "--out", "{ws}/a_file"]),
    ("render-out-nonempty", ["render", "--params", "{ws}/scene_good.json", "--out", "{ws}/nonempty"]),
    # targets, generate, runs
    ("targets-register-traversal", ["targets", "register", "../../x", "--", "/usr/bin/python3", "w.py"]),
    ("targets-register-slash", ["targets", "register", "a/b", "--", "/usr/bin/python3", "w.py"]),
    ("targets-register-timeout", ["targets", "register", "ok", "--timeout", "-1", "--", "/usr/bin/python3", "w.py"]),
    ("targets-register-missing-exe", ["targets", "register", "ok", "--", "/nonexistent/python", "w.py"]),
    ("targets-check-n", ["targets", "check", "whitebox:", "--n", "0"]),
    ("generate-dense-n", ["generate", "dense", "--n", "0", "--out", "{ws}/o"]),
    ("generate-finetune-missing", ["generate", "finetune", "--from-run", "{ws}/missing", "--out", "{ws}/o"]),
    *[(f"generate-finetune-{name}", ["generate", "finetune", "--from-run", f"{{ws}}/{name}", "--n", "2",
                                      "--out", "{ws}/o"]) for name in (
        "modes_types", "modes_not_list", "meta_space_list", "log_mid_garbage", "no_meta")],
    ("runs-repair-missing", ["runs", "repair", "{ws}/missing"]),
    ("runs-repair-file", ["runs", "repair", "{ws}/a_file"]),
]


@pytest.mark.parametrize("argv", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_gets_one_line_and_changes_nothing(ws, argv, capsys, tmp_path, monkeypatch):
    from tests.examiner.test_hostile import _keep_caches

    _keep_caches(monkeypatch.setenv)
    monkeypatch.setenv("POSEEXAMINER_HOME", str(tmp_path / "home"))  # targets register writes here
    args = [a.replace("{ws}", str(ws)) for a in argv]
    before = snapshot(ws)
    capsys.readouterr()
    rc = main(["-q", *args])
    err = capsys.readouterr().err.strip()
    assert rc in (1, 2), (rc, err)
    assert err and "\n" not in err and "Traceback" not in err, err
    assert err.startswith("error:"), err
    assert snapshot(ws) == before
    assert not (tmp_path / "home" / "x.json").exists() and not (tmp_path / "x.json").exists()
