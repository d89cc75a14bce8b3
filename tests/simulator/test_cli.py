"""End-to-end through the `examiner` CLI (in-process, real renderer)."""

import json
import math

import numpy as np
from PIL import Image

from examiner.app.cli import main
from simulator.params import SceneParams


def test_sample_writes_images_ground_truth_and_contact_sheet(tmp_path, capsys):
    rc = main(["-q", "sample", "--n", "3", "--seed", "0", "--space", "pose,shape,camera", "--out", str(tmp_path), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 3
    sheet = Image.open(tmp_path / "contact_sheet.png")
    assert sheet.size[0] > 256
    gt = json.loads((tmp_path / "00002_gt.json").read_text())
    assert set(gt["keypoints"]) == {"coco17", "feet6", "h36m17"}
    rgb = np.asarray(Image.open(tmp_path / gt["files"]["rgb"]))
    assert rgb.shape == (256, 256, 3)
    mask = np.asarray(Image.open(tmp_path / gt["files"]["mask"])) > 0
    parts = np.asarray(Image.open(tmp_path / gt["files"]["parts"]))
    assert np.array_equal(mask, parts > 0) and mask.any()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 0 and "anny" in manifest["versions"]


def test_render_from_params_file(tmp_path, capsys):
    scene = SceneParams().with_values({"pose.r_knee_flexion": math.radians(60)})
    f = tmp_path / "scene.json"
    f.write_text(scene.to_json())
    assert main(["-q", "render", "--params", str(f), "--out", str(tmp_path / "o"), "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    gt = json.loads(open(paths["gt"]).read())
    assert math.isclose(gt["params"]["pose"]["r_knee_flexion"], math.radians(60))


def test_cli_errors_are_one_line(tmp_path, capsys):
    f = tmp_path / "bad.json"
    f.write_text('{"pose": {"l_knee_flexion": 3.0}}')
    assert main(["render", "--params", str(f), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pose.l_knee_flexion = 171.9° is outside its range [0, 135]°" in err.replace("\n", " ")
    f.write_text("{oops")
    assert main(["render", "--params", str(f), "--out", str(tmp_path)]) == 2
    assert "malformed scene JSON" in capsys.readouterr().err
    assert main(["render", "--params", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sample", "--space", "pose,cam", "--out", str(tmp_path)]) == 2
    assert "unknown space group or dimension 'cam'" in capsys.readouterr().err
    # --clamp renders instead of failing.
    f.write_text('{"pose": {"l_knee_flexion": 3.0}}')
    assert main(["-q", "render", "--params", str(f), "--out", str(tmp_path / "c"), "--clamp"]) == 0


def test_render_with_clothing_writes_the_clothing_mask(tmp_path, capsys):
    scene = SceneParams().with_values({"clothing.upper": "t-shirt", "clothing.upper_pattern": "stripes"})
    f = tmp_path / "dressed.json"
    f.write_text(scene.to_json())
    assert main(["-q", "render", "--params", str(f), "--out", str(tmp_path / "o"), "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    cloth = np.asarray(Image.open(paths["clothing"])) > 0
    mask = np.asarray(Image.open(paths["mask"])) > 0
    assert cloth.any() and not (cloth & ~mask).any()  # clothing lies inside the person mask
    rgb = np.asarray(Image.open(paths["rgb"])).astype(int)
    # The stripes are visible: the shirt has two clearly different colours.
    shirt = rgb[cloth]
    assert np.ptp(shirt.sum(1)) > 120


def test_usage_errors_are_a_message_not_a_traceback(capsys):
    # Typer >= 0.22 raises its own copy of click's usage errors; both must end as a usage
    # message with click's exit code 2.
    from examiner.app.cli import main as examiner_main

    assert examiner_main(["demo", "--no-such-option"]) == 2
    assert examiner_main(["run", "--budget", "many"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --no-such-option" in err and "--budget" in err
    assert "Traceback" not in err
