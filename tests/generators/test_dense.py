"""Dense correspondence datasets: DensePose-COCO validity and round trips against the
rendered IUV and masks."""

import json

import numpy as np
import pytest
from PIL import Image

from generators import coco
from generators.dense import DenseConfig
from generators.engine import regenerate_sample, run_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("dense")
    # 400 points: large people take a subset of their pixels, the smallest ones need
    # sub-pixel passes; occluders exercise the rectangle cut.
    config = DenseConfig(n=5, seed=3, shard_size=2, points=400, space="pose,shape,camera,occluder", image_format="png")
    run_dataset("dense", config, out)
    return out


def test_pycocotools_loads_the_dataset(dataset):
    from pycocotools.coco import COCO

    c = COCO(str(dataset / "annotations.json"))
    assert len(c.getImgIds()) == 5 and len(c.getAnnIds()) == 5
    assert sorted(c.getImgIds()) == [1, 2, 3, 4, 5]
    for ann in c.loadAnns(c.getAnnIds()):
        img = c.loadImgs(ann["image_id"])[0]
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= img["width"] and y + h <= img["height"] and w > 0 and h > 0
        assert len(ann["keypoints"]) == 51 and set(ann["keypoints"][2::3]) <= {0, 1, 2}
        assert ann["num_keypoints"] == sum(v > 0 for v in ann["keypoints"][2::3])
        n = len(ann["dp_I"])
        assert n == 400 and all(len(ann[k]) == n for k in ("dp_U", "dp_V", "dp_x", "dp_y"))
        assert set(ann["dp_I"]) <= set(range(1, 25))
        assert min(ann["dp_x"]) >= 0 and max(ann["dp_x"]) <= 255 and min(ann["dp_y"]) >= 0 and max(ann["dp_y"]) <= 255
        assert len(ann["dp_masks"]) == 14
        assert c.annToMask(ann).sum() == ann["area"]


def _load(dataset):
    data = json.loads((dataset / "annotations.json").read_text())
    imgs = {i["id"]: i for i in data["images"]}
    return data, imgs


def test_points_round_trip_against_the_iuv_image(dataset):
    data, imgs = _load(dataset)
    at_centres = 0
    for ann in data["annotations"]:
        img = imgs[ann["image_id"]]
        iuv = np.asarray(Image.open(dataset / img["iuv_file"]))
        vid = np.asarray(Image.open(dataset / img["vertex_ids_file"]))
        x0, y0, w, h = ann["bbox"]
        x = np.array(ann["dp_x"]) / 255.0 * w + x0
        y = np.array(ann["dp_y"]) / 255.0 * h + y0
        col, row = np.floor(x).astype(int), np.floor(y).astype(int)
        centre = (np.abs(x - col - 0.5) < 1e-3) & (np.abs(y - row - 0.5) < 1e-3)
        I, U, V = (np.array(ann[k]) for k in ("dp_I", "dp_U", "dp_V"))
        # Points at pixel centres decode to exactly the IUV image's values there.
        assert np.array_equal(iuv[row[centre], col[centre], 0], I[centre])
        assert np.abs(iuv[row[centre], col[centre], 1] - U[centre] * 255).max() <= 0.51
        assert np.abs(iuv[row[centre], col[centre], 2] - V[centre] * 255).max() <= 0.51
        at_centres += centre.sum()
        # Every point lies on the body: inside the person's mask, its pixel has a vertex id.
        mask = coco.decode_rle(ann["segmentation"])
        assert np.array_equal(mask, iuv[..., 0] > 0) and np.array_equal(mask, vid > 0)
        on_body = mask[np.clip(row, 0, mask.shape[0] - 1), np.clip(col, 0, mask.shape[1] - 1)]
        assert on_body[centre].all() and on_body.mean() > 0.9
        assert (U >= 0).all() and (U <= 1).all() and (V >= 0).all() and (V <= 1).all()
    assert at_centres > 400


def test_dp_masks_round_trip(dataset):
    data, imgs = _load(dataset)
    for ann in data["annotations"]:
        img = imgs[ann["image_id"]]
        parts = np.asarray(Image.open(dataset / img["iuv_file"]))[..., 0]
        canvas = coco.decode_dp_masks(ann["dp_masks"])
        rows, cols = coco.box_grid(ann["bbox"])
        # Exact: each canvas cell holds the coarse part of the pixel under its centre.
        assert np.array_equal(canvas, coco.FINE_TO_COARSE[parts[rows[:, None], cols[None, :]]])
        # And DensePose's own decoding (nearest resize of the canvas onto the box) gives
        # back the image's coarse parts.
        x0, y0, w, h = (int(v) for v in ann["bbox"])
        up = np.asarray(Image.fromarray(canvas).resize((w, h), Image.NEAREST))
        truth = coco.FINE_TO_COARSE[parts[y0:y0 + h, x0:x0 + w]]
        assert (up == truth).mean() > 0.97


def test_sample_regenerates_alone(dataset, tmp_path):
    data = json.loads((dataset / "shards" / "shard-00001" / "shard.json").read_text())
    stored = data["records"][1]
    again = regenerate_sample(dataset, stored["index"], tmp_path)
    assert again == stored
    rel = stored["image"]["file_name"].split("/", 2)[2]
    assert (tmp_path / rel).read_bytes() == (dataset / stored["image"]["file_name"]).read_bytes()


def test_manifest_records_versions_seeds_and_config(dataset):
    m = json.loads((dataset / "manifest.json").read_text())
    assert m["status"] == "complete" and m["kind"] == "dense" and m["n_shards"] == 3
    assert m["config"]["points"] == 400 and m["seeds"]["root"] == 3
    assert {"anny", "numpy", "torch", "pycocotools"} <= set(m["versions"])
    index = json.loads((dataset / "index.json").read_text())
    assert [s["shard"] for s in index["complete"]] == [0, 1, 2]
    assert [s["count"] for s in index["complete"]] == [2, 2, 1]


def test_every_body_pixel_and_user_errors(tmp_path):
    from generators.errors import GeneratorError

    out = tmp_path / "all"
    run_dataset("dense", DenseConfig(n=1, seed=1, points=0, size=64), out)
    ann = json.loads((out / "annotations.json").read_text())["annotations"][0]
    assert len(ann["dp_I"]) == ann["area"]
    with pytest.raises(GeneratorError, match="--resume"):
        run_dataset("dense", DenseConfig(n=1, seed=1, points=0, size=64), out)
    with pytest.raises(GeneratorError, match="different configuration"):
        run_dataset("dense", DenseConfig(n=2, seed=1, points=0, size=64), out, resume=True)
    with pytest.raises(GeneratorError, match="--points"):
        run_dataset("dense", DenseConfig(n=1, points=-1), tmp_path / "x")
    with pytest.raises(GeneratorError, match="from-run"):
        run_dataset("dense", DenseConfig(n=1, from_run=str(tmp_path / "nope")), tmp_path / "y")


def test_small_people_get_exact_subpixel_points(tmp_path):
    out = tmp_path / "small"
    run_dataset("dense", DenseConfig(n=1, seed=2, points=2600, size=128), out)
    shard = json.loads((out / "shards" / "shard-00000" / "shard.json").read_text())
    rec = shard["records"][0]
    ann = rec["annotations"][0]
    assert ann["area"] < 2600 and rec["subpixel_passes"] > 0
    assert len(ann["dp_I"]) == 2600
    x0, y0, w, h = ann["bbox"]
    pts = set(zip(ann["dp_x"], ann["dp_y"]))
    assert len(pts) == 2600  # no point drawn twice
