"""Anatomical anomaly datasets: every class appears, YOLO labels parse, boxes lie inside
the images and on the labelled pixels, the COCO JSON loads, the operations do what they say."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from generators.anomaly import CLASS_NAMES, OPERATIONS, SCENARIOS, AnomalyConfig
from generators.engine import run_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("anomaly")
    # One image per scenario (11): every one of the 18 classes must appear.
    run_dataset("anomaly", AnomalyConfig(n=len(SCENARIOS), seed=4, shard_size=6, size=192, val_every=4), out)
    return out


def test_every_class_appears_and_each_scenario_has_its_label(dataset):
    data = json.loads((dataset / "annotations.json").read_text())
    assert [c["name"] for c in data["categories"]] == list(CLASS_NAMES) and len(CLASS_NAMES) == 18
    present = {CLASS_NAMES[a["category_id"] - 1] for a in data["annotations"]}
    assert present == set(CLASS_NAMES)
    by_image = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], set()).add(CLASS_NAMES[a["category_id"] - 1])
    expected = {"normal": "Normal Human", "multi": "Abnormal Multi", "normal_multi": "Normal Multi",
                "non_human": "Non Human"}
    for img in data["images"]:
        want = expected.get(img["scenario"], "Abnormal " + img["scenario"].capitalize())
        assert want in by_image[img["id"]], (img["scenario"], by_image[img["id"]])
        abnormal = {c for c in by_image[img["id"]] if c.startswith("Abnormal")}
        if img["scenario"] in ("normal", "normal_multi", "non_human"):
            assert not abnormal
        else:
            assert abnormal == {want}
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["outputs"]["target_not_visible"] == 0


def test_yolo_layout_parses_and_boxes_lie_on_the_labelled_pixels(dataset):
    data_yaml = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data_yaml["nc"] == 18 and [data_yaml["names"][i] for i in range(18)] == list(CLASS_NAMES)
    root = dataset
    train = (root / data_yaml["train"]).read_text().split()
    val = (root / data_yaml["val"]).read_text().split()
    assert len(train) + len(val) == len(SCENARIOS) and len(val) == 2
    coco = json.loads((dataset / "annotations.json").read_text())
    boxes = {}
    for a in coco["annotations"]:
        boxes.setdefault(a["image_id"], []).append(a)
    for line in train + val:
        img_path = root / line[2:]
        assert img_path.is_file() and "/images/" in line
        label_path = root / line[2:].replace("/images/", "/labels/").rsplit(".", 1)[0]
        rows = [r.split() for r in label_path.with_suffix(".txt").read_text().splitlines()]
        assert rows
        W, H = Image.open(img_path).size
        for r in rows:
            assert len(r) == 5
            cls, cx, cy, w, h = int(r[0]), *map(float, r[1:])
            assert 0 <= cls < 18
            assert 0 < w <= 1 and 0 < h <= 1
            assert cx - w / 2 >= -1e-6 and cy - h / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6 and cy + h / 2 <= 1 + 1e-6
        image_id = int(img_path.stem) + 1
        assert len(boxes[image_id]) == len(rows)
        for a, r in zip(boxes[image_id], rows):
            x, y, w, h = a["bbox"]
            assert int(r[0]) == a["category_id"] - 1
            assert abs(float(r[1]) - (x + w / 2) / W) < 1e-5 and abs(float(r[3]) - w / W) < 1e-5
            assert a["area"] <= w * h


def test_pycocotools_loads_the_anomaly_json(dataset):
    from pycocotools.coco import COCO

    c = COCO(str(dataset / "annotations.json"))
    assert len(c.getImgIds()) == len(SCENARIOS)
    assert len(c.getCatIds()) == 18
    for img in c.loadImgs(c.getImgIds()):
        for a in c.loadAnns(c.getAnnIds(imgIds=img["id"])):
            x, y, w, h = a["bbox"]
            assert 0 <= x and 0 <= y and x + w <= img["width"] and y + h <= img["height"]


@pytest.fixture(scope="module")
def body_and_figure():
    from simulator.anomaly import Figure, anatomy
    from simulator.body import JOINT_NAMES, get_body_model
    from simulator.joints import POSE_DOFS, neutral_pose

    body = get_body_model("anny")
    anat = anatomy(body)
    out = body.forward(np.array([[neutral_pose()[k] for k in POSE_DOFS]]), np.full((1, 6), 0.5))
    joints = {n: out.joints[0, i] for i, n in enumerate(JOINT_NAMES)}

    def make():
        return Figure.from_body(anat, body.faces, out.vertices[0], joints, [0.8, 0.6, 0.5])

    return anat, make


def test_anatomy_labels_every_face_with_a_part_instance(body_and_figure):
    anat, make = body_and_figure
    assert len(anat.instances) == 11
    counts = np.bincount(anat.face_instance, minlength=11)
    assert (counts > 100).all()
    fig = make()
    # Left arm faces lie on the subject's left (+x), right leg faces on the right.
    arm_l = fig.face_instance == fig.instance_index("arm", 0)
    leg_r = fig.face_instance == fig.instance_index("leg", 1)
    assert fig.vertices[fig.faces[arm_l]][..., 0].mean() > 0.1 and fig.vertices[fig.faces[leg_r]][..., 0].mean() < 0


@pytest.mark.parametrize("op", [o for ops in OPERATIONS.values() for o in ops])
def test_each_operation_changes_the_mesh_and_marks_one_abnormal_instance(body_and_figure, op):
    from generators.anomaly import apply_operation

    _, make = body_and_figure
    fig = make()
    before = (fig.vertices.copy(), fig.faces.copy())
    params = {"angle": 0.5, "factor": 0.5, "fingers": [2, 3, 4], "count": 2, "scramble": [True, True, True]}
    apply_operation(fig, op, 0, params)
    abnormal = [i for i in fig.instances if i.abnormal]
    assert len(abnormal) == 1 and abnormal[0].op is not None
    skeletal = op.endswith("beyond_limit") or op.endswith("bent_backwards") and op != "fingers_bent_backwards"
    if not skeletal:  # mesh operations move or add geometry; skeleton ones come from the pose
        changed = fig.faces.shape != before[1].shape or not np.allclose(fig.vertices[: len(before[0])], before[0])
        assert changed
    # Every face keeps a valid instance; the mesh stays finite.
    assert fig.face_instance.max() < len(fig.instances) and np.isfinite(fig.vertices).all()


def test_missing_arm_is_capped_and_has_a_stump(body_and_figure):
    from generators.anomaly import apply_operation
    from simulator.anomaly import _boundary_loops

    anat, make = body_and_figure
    fig = make()
    holes_before = len(_boundary_loops(fig.faces))
    apply_operation(fig, "missing_arm", 1, {"factor": 0.5})
    assert not (fig.face_instance == fig.instance_index("arm", 1)).any()
    stump = [i for i, x in enumerate(fig.instances) if x.abnormal]
    assert (fig.face_instance == stump[0]).sum() > 20
    assert len(_boundary_loops(fig.faces)) == holes_before  # the hole was closed


def test_normal_contact_does_not_interpenetrate_and_fused_does(body_and_figure):
    from generators.anomaly import Spec, BodySpec, _place_pair

    _, make = body_and_figure
    for scenario, fused in (("normal_multi", False), ("multi", True)):
        a, b = make(), make()
        spec = Spec(scenario, None, 0, [BodySpec({}, {}, 0.3), BodySpec({}, {}, 0.3)],
                    {"fuse_depth": 0.5, "gap": 0.0, "front_back": False}, {}, {}, {})
        _place_pair([a, b], spec)
        torso_a = a.vertices[a.vertex_kind == 2]
        torso_b = b.vertices[b.vertex_kind == 2]
        overlap = torso_a[:, 0].max() - torso_b[:, 0].min()
        assert (overlap > 0.1) == fused
        # Side by side in contact: the closest vertices are within 3 cm.
        if not fused:
            from scipy.spatial import cKDTree

            d, _ = cKDTree(a.vertices).query(b.vertices)
            assert d.min() < 0.03


def test_anomaly_sample_regenerates_alone(dataset, tmp_path):
    from generators.engine import regenerate_sample

    shard = json.loads((dataset / "shards" / "shard-00001" / "shard.json").read_text())
    stored = shard["records"][2]
    again = regenerate_sample(dataset, stored["index"], tmp_path)
    assert again == stored
    rel = stored["image"]["file_name"].split("/", 2)[2]
    assert (tmp_path / rel).read_bytes() == (dataset / stored["image"]["file_name"]).read_bytes()
