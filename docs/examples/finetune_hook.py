"""A complete training hook for `examiner finetune` / `examiner loop` (docs/finetune.md).

    examiner loop --model onnx:/abs/path/tiny.onnx --trainer python:docs/examples/finetune_hook.py:train \
        --rounds 2 --out loop_out

The contract: `train(dataset_dir, model_spec) -> new model_spec`. This example trains a
tiny 3D pose regressor (one strided conv + a linear layer: 64x64 person crop -> 17
root-relative H36M joints) with PyTorch, on the set's images and labels.npz, starting from
the weights of `model_spec` when it is one of its own exports (else from scratch), and
exports ONNX + the adapter sidecar YAML that `onnx:` specs read. It uses only numpy, PIL,
torch and yaml: your own training code reads the same files.

Set layout used here (see docs/generators.md for all of it):
- labels.npz: image (N,) paths relative to dataset_dir; bbox (N, 4) COCO xywh pixels;
  h36m17_cam (N, 17, 3) joints in the camera frame, metres; K, extrinsics, pose, shape,
  u, scene (SceneParams JSON), mode (failure-mode id, -1 = base scene).
- annotations.json: the same as COCO person keypoints (with keypoints_3d per annotation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 64
EPOCHS = 3
SEED = 0


def _crops(root: Path, labels) -> np.ndarray:
    from PIL import Image

    out = []
    for rel, (x, y, w, h) in zip(labels["image"], labels["bbox"]):
        img = Image.open(root / str(rel)).convert("RGB")
        cx, cy, side = x + w / 2, y + h / 2, max(w, h) * 1.2  # a square box around the person
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        out.append(np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR, box=box)))
    return np.stack(out)


def _network():
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 5, stride=4, padding=2)
            self.fc = nn.Linear(8 * 16 * 16, 17 * 3)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1)).reshape(-1, 17, 3)

    return Tiny()


def _load_start(model_spec: str):
    """Start from an earlier export of this hook (its weights sit next to the ONNX)."""
    import torch

    net = _network()
    if model_spec.startswith("onnx:"):
        weights = Path(model_spec[5:].split("?")[0]).with_suffix(".pt")
        if weights.is_file():
            net.load_state_dict(torch.load(weights, weights_only=True))  # tensors only, no pickled code
    return net


def train(dataset_dir: str, model_spec: str) -> str:
    import torch
    import yaml

    root = Path(dataset_dir)
    with np.load(root / "labels.npz", allow_pickle=False) as z:
        labels = {k: z[k] for k in z.files}
    x = torch.as_tensor(_crops(root, labels)).permute(0, 3, 1, 2).float() / 255.0
    j3 = labels["h36m17_cam"] - labels["h36m17_cam"][:, :1]  # root-relative
    y = torch.as_tensor(j3, dtype=torch.float32)

    torch.manual_seed(SEED)
    net = _load_start(model_spec)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(EPOCHS):
        for i in range(0, len(x), 16):
            loss = (net(x[i:i + 16]) - y[i:i + 16]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    out = root.parent / "model"  # next to the set; any folder you like
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "tiny.onnx"
    net.eval()
    torch.onnx.export(net, torch.zeros(1, 3, SIZE, SIZE), str(onnx_path), input_names=["image"],
                      output_names=["joints3d"], dynamic_axes={"image": {0: "batch"}, "joints3d": {0: "batch"}},
                      opset_version=17, dynamo=False)
    torch.save(net.state_dict(), onnx_path.with_suffix(".pt"))
    sidecar = {  # how the `onnx:` adapter feeds the model and reads its outputs (docs/targets.md)
        "convention": "h36m17", "frame": "root_relative", "max_batch": 64,
        "input": {"name": "image", "layout": "NCHW", "size": [SIZE, SIZE], "crop": "box", "box_scale": 1.2,
                  "scale": 1 / 255.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "channels": "RGB"},
        "outputs": {"joints3d": {"name": "joints3d", "units": "m"}},
    }
    onnx_path.with_suffix(".yaml").write_text(yaml.safe_dump(sidecar, sort_keys=False))
    return f"onnx:{onnx_path.resolve()}"
