"""The conformance suite, run on every adapter kind. A user runs the same checks on their
own model with `examiner targets check SPEC`."""

from __future__ import annotations

import sys
import textwrap
import warnings

import numpy as np
import pytest
import yaml

from examiner.targets import Prediction, TargetBatch, TargetModel, load_target
from examiner.targets.conformance import check_target
from examiner.targets.envs import env_path, is_installed
from examiner.targets.baseline import baseline_available

GOOD_WORKER = textwrap.dedent("""
    import numpy as np
    import pe_worker

    T = np.linspace(-0.4, 0.4, 51, dtype=np.float32).reshape(17, 3)

    def predict(images, K, boxes):
        b = len(images)
        j2 = boxes[:, None, :2] + np.linspace(0, 1, 34, dtype=np.float32).reshape(1, 17, 2) * (boxes[:, None, 2:] - boxes[:, None, :2])
        j3 = T[None] * (1 + images.mean(axis=(1, 2, 3))[:, None, None] / 1000.0)
        return {"joints2d": j2, "joints3d": j3, "confidence": np.full((b, 17), 0.5, np.float32)}

    pe_worker.serve(predict, convention="coco17", outputs=("joints2d", "joints3d", "confidence"), max_batch=2)
""")


class TemplateModel(TargetModel):
    """In-process reference model: a fixed skeleton placed in the box."""

    name = "template"
    convention = "h36m17"
    outputs = frozenset({"joints2d", "joints3d"})
    max_batch = 4

    def predict(self, batch):
        b = len(batch)
        t = np.linspace(-0.5, 0.5, 51).reshape(17, 3)
        j2 = batch.boxes[:, None, :2] + (t[None, :, :2] + 0.5) * (batch.boxes[:, None, 2:] - batch.boxes[:, None, :2])
        return Prediction("h36m17", joints3d=np.repeat(t[None], b, 0), joints2d=j2)


def _python(tmp_path, samples):
    return TemplateModel(), TargetBatch.from_samples(samples)


def _onnx(tmp_path, samples):
    import torch

    class Net(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(1, 2, 3))[:, None, None]
            j = torch.linspace(-0.4, 0.4, 51).reshape(1, 17, 3) * (1 + 0.01 * m)
            return j[..., :2] * 0.5 + 0.5, j

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net(), (torch.zeros(1, 3, 32, 32),), str(tmp_path / "net.onnx"), dynamo=False,
                          input_names=["x"], output_names=["j2", "j3"],
                          dynamic_axes={"x": {0: "b"}, "j2": {0: "b"}, "j3": {0: "b"}})
    (tmp_path / "net.yaml").write_text(yaml.safe_dump({
        "convention": "coco17",
        "outputs": {"joints2d": {"name": "j2", "space": "crop_norm"}, "joints3d": "j3"},
    }))
    return load_target(f"onnx:{tmp_path / 'net.onnx'}"), TargetBatch.from_samples(samples)


def _worker(tmp_path, samples):
    (tmp_path / "good.py").write_text(GOOD_WORKER)
    return load_target(f'cmd:"{sys.executable} {tmp_path / "good.py"}"?timeout=30'), TargetBatch.from_samples(samples)


def _whitebox(tmp_path, samples):
    return load_target("whitebox:camera.framing=0.5:1?noise=0.002"), TargetBatch.from_samples(samples, with_ground_truth=True)


def _mediapipe(tmp_path, samples):
    if not is_installed("mediapipe"):
        pytest.skip("MediaPipe environment not installed: run `examiner targets install mediapipe`")
    photo = next(env_path("mediapipe").glob("lib/python*/site-packages/matplotlib/mpl-data/sample_data/grace_hopper.jpg"), None)
    if photo is None:
        pytest.skip("no photograph of a person in the MediaPipe environment")
    from PIL import Image

    img = np.asarray(Image.open(photo).convert("RGB"))
    h, w = img.shape[:2]
    K = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float32)
    images = np.stack([img, img[:, ::-1], img])
    boxes = np.array([[0, 0, w, h], [0, 0, w, h], [40, 80, 480, 600]], np.float32)
    return load_target("mediapipe"), TargetBatch(images, np.tile(K, (3, 1, 1)), boxes)


def _baseline(tmp_path, samples):
    if not baseline_available():
        pytest.skip("baseline weights not in assets/baseline/ (train them with `examiner train-baseline`)")
    return load_target("baseline"), TargetBatch.from_samples(samples)


ADAPTERS = {"python": _python, "onnx": _onnx, "worker": _worker, "whitebox": _whitebox,
            "mediapipe": _mediapipe, "baseline": _baseline}


@pytest.mark.parametrize("kind", list(ADAPTERS))
def test_adapter_conforms(kind, tmp_path, make_samples):
    model, batch = ADAPTERS[kind](tmp_path, make_samples(3, seed=4))
    try:
        checks = check_target(model, batch)
    finally:
        model.close()
    failed = [f"{c.name}: {c.message}" for c in checks if not c.passed]
    assert not failed, failed
    names = {c.name for c in checks}
    assert {"declaration", "deterministic", "no infrastructure failures", "close twice"} <= names


class MillimetreModel(TemplateModel):
    def predict(self, batch):
        p = super().predict(batch)
        p.joints3d = p.joints3d * 1000.0
        return p


class FlakyModel(TemplateModel):
    def __init__(self):
        self.calls = 0

    def predict(self, batch):
        self.calls += 1
        p = super().predict(batch)
        p.joints3d = p.joints3d + self.calls * 0.01
        return p


class NormalisedModel(TemplateModel):
    def predict(self, batch):
        p = super().predict(batch)
        p.joints2d = p.joints2d / 256.0  # [0, 1] instead of pixels
        return p


@pytest.mark.parametrize("model, failing", [
    (MillimetreModel(), "3D in metres"),
    (FlakyModel(), "deterministic"),
    (NormalisedModel(), "2D in image pixels"),
])
def test_conformance_catches_broken_models(model, failing, make_samples):
    checks = {c.name: c for c in check_target(model, TargetBatch.from_samples(make_samples(2)))}
    assert not checks[failing].passed
