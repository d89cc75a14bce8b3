"""ONNX adapter: a tiny torch module exported inside the test, run through onnx:PATH."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import yaml

from examiner.targets import TargetBatch, TargetError, checked_predict, load_target
from examiner.targets.preprocess import crop_and_resize, crop_region, crop_to_image

torch = pytest.importorskip("torch")

SIZE = (48, 64)  # H, W the model expects


class Tiny(torch.nn.Module):
    """joints2d in crop-normalised coordinates and joints3d in millimetres, both simple
    functions of the mean intensity, so the test can recompute them by hand."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("base2d", torch.rand(17, 2, generator=g) * 0.8 + 0.1)
        self.register_buffer("base3d", (torch.rand(17, 3, generator=g) - 0.5) * 800.0)

    def forward(self, image):
        m = image.mean(dim=(1, 2, 3))  # (B,)
        j2 = self.base2d[None] + 0.01 * m[:, None, None]
        j3 = self.base3d[None] * (1.0 + m[:, None, None])
        conf = torch.sigmoid(j2[..., 0])
        return j2, j3, conf


def export(path, batch_dynamic=True):
    model = Tiny().eval()
    dummy = torch.zeros(1, 3, *SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), str(path), dynamo=False, input_names=["pixels"],
            output_names=["kp2d", "kp3d", "score"],
            dynamic_axes={"pixels": {0: "b"}, "kp2d": {0: "b"}, "kp3d": {0: "b"}, "score": {0: "b"}} if batch_dynamic else None,
        )
    return model


SIDECAR = {
    "convention": "coco17",
    "frame": "root_relative",
    "input": {"name": "pixels", "layout": "NCHW", "crop": "box", "box_scale": 1.25,
              "scale": 1 / 255.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    "outputs": {"joints2d": {"name": "kp2d", "space": "crop_norm"},
                "joints3d": {"name": "kp3d", "units": "mm"},
                "confidence": {"name": "score"}},
}


@pytest.fixture
def onnx_model(tmp_path):
    path = tmp_path / "tiny.onnx"
    torch_model = export(path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(SIDECAR))
    return path, torch_model


def test_onnx_adapter_matches_hand_computation(onnx_model, make_samples):
    path, torch_model = onnx_model
    samples = make_samples(3)
    batch = TargetBatch.from_samples(samples)
    model = load_target(f"onnx:{path}")
    assert model.convention == "coco17" and model.size == SIZE
    assert model.outputs == {"joints2d", "joints3d", "confidence"}
    pred = checked_predict(model, batch)
    assert pred.ok.all()
    for i, s in enumerate(samples):
        region = crop_region(s.bbox, SIZE, 1.25)
        crop = crop_and_resize(s.rgb, region, SIZE)
        x = (crop / 255.0 - 0.5) / 0.25
        m = x.mean()
        base2d = torch_model.base2d.numpy().astype(np.float64)
        base3d = torch_model.base3d.numpy().astype(np.float64)
        norm = base2d + 0.01 * m
        expected2d = crop_to_image(norm * [SIZE[1], SIZE[0]], region, SIZE)
        np.testing.assert_allclose(pred.joints2d[i], expected2d, atol=1e-2)
        np.testing.assert_allclose(pred.joints3d[i], base3d * (1 + m) / 1000.0, atol=1e-4)


def test_crop_geometry_roundtrip():
    region = crop_region(np.array([10, 20, 50, 120]), (48, 64), 1.0)
    # aspect 64:48 wins over the tall box: the region is widened around the box centre
    w, h = region[2] - region[0], region[3] - region[1]
    assert h == pytest.approx(100) and w == pytest.approx(100 * 64 / 48)
    assert (region[0] + region[2]) / 2 == pytest.approx(30)
    # crop pixel centres map back to the image points they were sampled from
    img = np.zeros((200, 200, 3), np.uint8)
    img[60, 30] = 255  # pixel centre (30.5, 60.5)
    crop = crop_and_resize(img, np.array([0.0, 0.0, 200.0, 200.0]), (200, 200))
    assert crop[60, 30, 0] == pytest.approx(255)
    np.testing.assert_allclose(crop_to_image(np.array([[10.0, 5.0]]), np.array([100, 50, 164, 98.0]), (48, 64)),
                               [[110.0, 55.0]])


def test_onnx_sidecar_errors(tmp_path):
    path = tmp_path / "m.onnx"
    export(path)
    with pytest.raises(TargetError, match="no sidecar"):
        load_target(f"onnx:{path}")
    bad = dict(SIDECAR, outputs={"joints2d": {"name": "nope"}})
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(TargetError, match="the model outputs"):
        load_target(f"onnx:{path}?config={tmp_path / 'bad.yaml'}")
    (tmp_path / "noconv.yaml").write_text(yaml.safe_dump({k: v for k, v in SIDECAR.items() if k != "convention"}))
    with pytest.raises(TargetError, match="needs 'convention'"):
        load_target(f"onnx:{path}?config={tmp_path / 'noconv.yaml'}")


def test_baseline_loads_onnx_when_present(tmp_path, monkeypatch, make_samples):
    d = tmp_path / "baseline"
    d.mkdir()
    export(d / "baseline.onnx")
    (d / "baseline.yaml").write_text(yaml.safe_dump(SIDECAR))
    monkeypatch.setenv("POSEEXAMINER_BASELINE_DIR", str(d))
    model = load_target("baseline")
    assert model.name == "baseline"
    assert checked_predict(model, TargetBatch.from_samples(make_samples(2))).ok.all()
