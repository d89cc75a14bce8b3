"""The bundled baseline HPS network: image crop -> 3D joints (root-relative) + 2D joints.

A small CNN trained on simulator scenes from an "everyday" distribution (standing and
walking-like poses within anatomical limits, cameras near eye level, mid-range bodies).
It is the embedded default target of `examiner demo`, and the model the fine-tuning
loop improves. `examiner train-baseline` reproduces `assets/baseline/`: it renders the
data, trains, evaluates on held-out scenes, exports ONNX + the adapter sidecar YAML and
writes MODEL_CARD.md.

Input: the person box from ground truth (as in COCO evaluation with given boxes),
enlarged 1.2x to the crop's aspect, resized to 128x128 (examiner.targets.preprocess -
the same code the ONNX adapter runs at inference). Output: H36M-17 joints, 3D in metres
relative to the pelvis in OpenCV camera axes, 2D in crop coordinates normalised to [0, 1].
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from simulator.params import DEG, ParamSpace, SceneParams

CROP = 128
BOX_SCALE = 1.2
N_JOINTS = 17
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Everyday distribution: an everyday slice of the realistic world. Poses are the pose
# prior's within +-EVERYDAY_LATENT_SIGMA and upright (the body's tilt from vertical under
# EVERYDAY_MAX_TILT_DEG: standing, walking, running, reaching, bending; no lying, no
# handstands); the camera frames the person like a photo (no truncation beyond 10%, near
# eye level); mid-range bodies; a floor; no occluders. The phenotypes only (no local shape
# changes). Changing any of this changes the data `train-baseline` renders.
EVERYDAY_GROUPS = (
    "pose,shape.gender,shape.age,shape.muscle,shape.weight,shape.height,shape.proportions,"
    "appearance,camera,light,background,ground"
)
EVERYDAY_LATENT_SIGMA = 1.5
EVERYDAY_MAX_TILT_DEG = 35.0
EVERYDAY_BOUNDS: dict[str, tuple[float, float]] = {
    "camera.elevation": (-5 * DEG, 25 * DEG),
    "camera.roll": (-5 * DEG, 5 * DEG),
    "camera.framing": (0.45, 0.95),
    "camera.truncation": (0.0, 0.1),
    "shape.age": (0.35, 0.85),
    "shape.weight": (0.2, 0.8),
    "shape.muscle": (0.2, 0.8),
    "shape.height": (0.2, 0.8),
    "shape.proportions": (0.3, 0.7),
}


def everyday_space(image_size: int = 256) -> ParamSpace:
    base = SceneParams().with_values({"camera.width": image_size, "camera.height": image_size})
    latent = {d.name: (-EVERYDAY_LATENT_SIGMA, EVERYDAY_LATENT_SIGMA) for d in ParamSpace.from_groups("pose").dimensions}
    return ParamSpace.from_groups(EVERYDAY_GROUPS, base=base, overrides={**latent, **EVERYDAY_BOUNDS})


def body_tilt_deg(params: SceneParams) -> float:
    """Angle (degrees) between the body's long axis and the vertical, from the root
    orientation (root = Rz(yaw) Rx(pitch) Ry(roll): the body's up axis is R @ +Z)."""
    p, r = params.pose["root_pitch"], params.pose["root_roll"]
    up_z = math.cos(p) * math.cos(r)  # z component of Rx(p) Ry(r) e_z
    return math.degrees(math.acos(max(-1.0, min(1.0, up_z))))


def sample_everyday(space: ParamSpace, rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[SceneParams]]:
    """n everyday scenes: uniform samples of `space` whose body is upright (rejection)."""
    U_keep, P_keep = [], []
    while len(U_keep) < n:
        U = space.sample(rng, max(64, 2 * (n - len(U_keep))))
        for u, p in zip(U, space.to_params_batch(U)):
            if body_tilt_deg(p) <= EVERYDAY_MAX_TILT_DEG and len(U_keep) < n:
                U_keep.append(u)
                P_keep.append(p)
    return np.array(U_keep), P_keep


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def sample_to_example(sample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample -> (crop (CROP, CROP, 3) uint8, joints3d (17, 3) root-relative m,
    joints2d (17, 2) in [0, 1] crop coordinates)."""
    from examiner.targets.preprocess import crop_and_resize, crop_region

    region = crop_region(sample.bbox, (CROP, CROP), BOX_SCALE)
    crop = np.clip(np.round(crop_and_resize(sample.rgb, region, (CROP, CROP))), 0, 255).astype(np.uint8)
    kp = sample.keypoints["h36m17"]
    j3 = kp.xyz - kp.xyz[0:1]
    x0, y0, x1, y1 = region
    j2 = np.stack([(kp.xy[:, 0] - x0) / (x1 - x0), (kp.xy[:, 1] - y0) / (y1 - y0)], axis=1)
    return crop, j3.astype(np.float32), j2.astype(np.float32)


def render_dataset(
    n: int, seed: int, workers: int = 2, on_progress: Callable[[int], None] | None = None
) -> dict[str, np.ndarray]:
    """Render n everyday scenes; scenes whose person is not visible are skipped."""
    space = everyday_space()
    U, params = sample_everyday(space, np.random.default_rng(seed), n)
    crops, j3s, j2s, keep = [], [], [], []
    chunk = 64

    def consume(samples, start):
        for i, s in enumerate(samples):
            if s.mask.sum() < 50:
                continue
            c, a, b = sample_to_example(s)
            crops.append(c), j3s.append(a), j2s.append(b), keep.append(start + i)

    if workers > 1:
        from simulator.pool import RenderPool

        with RenderPool(workers) as pool:
            for start in range(0, n, chunk):
                consume(pool.render_batch(params[start:start + chunk]), start)
                if on_progress:
                    on_progress(min(chunk, n - start))
    else:
        from simulator.renderer import render_batch

        for start in range(0, n, chunk):
            consume(render_batch(params[start:start + chunk]), start)
            if on_progress:
                on_progress(min(chunk, n - start))
    return {
        "images": np.stack(crops),
        "joints3d": np.stack(j3s),
        "joints2d": np.stack(j2s),
        "u": U[keep],
    }


# --------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------


def build_network(folded: bool = False):
    """The baseline network. folded=True: BatchNorm folded into the convolutions (convs
    with a bias, identity norm layers), the form the shipped ONNX holds
    (`load_onnx_network`); the layer indices, and so the exported graph, stay the same."""
    import torch
    from torch import nn

    def norm(c):
        return nn.Identity() if folded else nn.BatchNorm2d(c)

    def block(cin, cout, stride):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=folded), norm(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=folded), norm(cout), nn.ReLU(inplace=True),
        )

    class BaselineNet(nn.Module):
        """(B, 3, 128, 128) normalised RGB -> joints3d (B, 17, 3) m, joints2d (B, 17, 2) [0,1]."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                block(3, 32, 2), block(32, 48, 2), block(48, 64, 2), block(64, 96, 2), block(96, 128, 2)
            )  # 128 -> 4x4
            self.head = nn.Sequential(
                nn.Flatten(), nn.Linear(128 * 4 * 4, 512), nn.ReLU(inplace=True), nn.Dropout(0.1),
                nn.Linear(512, N_JOINTS * 5),
            )

        def forward(self, x):
            y = self.head(self.features(x))
            j3 = y[:, : N_JOINTS * 3].reshape(-1, N_JOINTS, 3) * 0.5
            j2 = torch.sigmoid(y[:, N_JOINTS * 3:].reshape(-1, N_JOINTS, 2))
            return j3, j2

    return BaselineNet()


def load_onnx_network(path: str | Path):
    """The baseline network with the weights of an exported `baseline.onnx` (BatchNorm was
    folded at export, so the network is rebuilt with `build_network(folded=True)`). The
    ONNX graph's Conv and Gemm nodes are matched, in order, with the network's Conv2d and
    Linear layers; a file of another architecture raises a one-line error."""
    import torch

    from simulator.errors import PoseExaminerError

    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # pragma: no cover - a main dependency
        raise PoseExaminerError("reading ONNX weights needs the onnx package; pip install onnx") from None
    path = Path(path)
    if not path.is_file():
        raise PoseExaminerError(f"{path} does not exist; give a baseline.onnx (assets/baseline/ or `examiner finetune --out`)")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:  # a damaged or foreign file: protobuf errors have many types
        raise PoseExaminerError(f"{path} is not a readable ONNX model ({type(e).__name__}); export it again") from None
    init = {t.name: t for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in ("Conv", "Gemm")]
    with torch.random.fork_rng():  # the initial weights are overwritten: leave the global RNG alone
        net = build_network(folded=True)
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    if len(nodes) != len(layers):
        raise PoseExaminerError(f"{path} has {len(nodes)} Conv/Gemm layers, the baseline network {len(layers)}; "
                                "it is not a baseline export")
    with torch.no_grad():
        for node, layer in zip(nodes, layers):
            for name, param in zip(node.input[1:3], (layer.weight, layer.bias)):
                if name not in init:
                    raise PoseExaminerError(f"{path}: weight {name!r} of node {node.name!r} is not an initializer")
                w = torch.as_tensor(numpy_helper.to_array(init[name]).copy())
                if node.op_type == "Gemm" and w.ndim == 2 and w.shape != param.shape and w.T.shape == param.shape:
                    w = w.T  # transB = 0
                if w.shape != param.shape:
                    raise PoseExaminerError(f"{path}: weight {name!r} has shape {tuple(w.shape)}, the baseline "
                                            f"layer {tuple(param.shape)}; it is not a baseline export")
                param.copy_(w)
    return net


def _normalise(images_uint8):
    import torch

    x = torch.as_tensor(images_uint8).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


@dataclass(frozen=True)
class TrainConfig:
    n: int = 8000
    val_n: int = 500
    epochs: int = 30
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    workers: int = 2
    threads: int = 1  # torch threads while training: fixed for reproducibility and shared CPUs
    schema_version: int = 1


def evaluate_arrays(net, data: dict[str, np.ndarray]) -> dict[str, float]:
    import torch

    from examiner.metrics import mpjpe, pa_mpjpe

    net.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(data["images"]), 128):
            preds.append(net(_normalise(data["images"][i:i + 128]))[0].numpy())
    p = np.concatenate(preds)
    gt = data["joints3d"]
    return {
        "mpjpe_mm": float(np.mean(mpjpe(p, gt)) * 1000),
        "pa_mpjpe_mm": float(np.mean(pa_mpjpe(p, gt)) * 1000),
    }


def train_baseline(
    config: TrainConfig, out_dir: str | Path, log: Callable[[str], None] = print, cache_dir: str | Path | None = None
) -> dict:
    """Render data, train, evaluate, export ONNX + sidecar + model card into out_dir."""
    import torch

    from simulator.paths import home

    t_start = time.process_time()
    wall_start = time.perf_counter()
    cache = Path(cache_dir) if cache_dir else home() / "baseline_data"
    cache.mkdir(parents=True, exist_ok=True)
    datasets = {}
    import hashlib

    space_key = hashlib.sha256(json.dumps(everyday_space().to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    for split, n, seed in (("train", config.n, config.seed), ("val", config.val_n, config.seed + 10_000)):
        f = cache / f"{split}_n{n}_seed{seed}_{space_key}.npz"
        if f.exists():
            datasets[split] = dict(np.load(f))
            log(f"{split}: {len(datasets[split]['images'])} cached examples from {f}")
            continue
        t = time.perf_counter()
        datasets[split] = render_dataset(n, seed, workers=config.workers)
        tmp = f.with_name(f.stem + ".tmp.npz")
        np.savez(tmp, **datasets[split])
        tmp.replace(f)
        log(f"{split}: rendered {len(datasets[split]['images'])} examples in {time.perf_counter() - t:.0f} s")
    render_cpu = time.process_time() - t_start

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)  # weight init only, restored afterwards
        net = build_network()
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    train = datasets["train"]
    n = len(train["images"])
    steps = config.epochs * math.ceil(n / config.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
    images = torch.as_tensor(train["images"])
    j3 = torch.as_tensor(train["joints3d"])
    j2 = torch.as_tensor(train["joints2d"])
    t_train = time.perf_counter()
    history = []
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed + 1)  # dropout draws from the global generator: seeded, restored below
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, config.batch):
            idx = order[i:i + config.batch]
            x = _normalise(images[idx])
            # Photometric jitter (brightness / contrast), from the seeded generator.
            scale = 1.0 + 0.2 * (torch.rand(len(idx), 1, 1, 1, generator=gen) - 0.5)
            shift = 0.2 * (torch.rand(len(idx), 1, 1, 1, generator=gen) - 0.5)
            x = x * scale + shift
            p3, p2 = net(x)
            loss = (p3 - j3[idx]).abs().mean() * 10.0 + (p2 - j2[idx]).abs().mean() * 5.0
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        metrics = evaluate_arrays(net, datasets["val"])
        history.append({"epoch": epoch + 1, "loss": total / n, **metrics})
        log(f"epoch {epoch + 1}/{config.epochs} loss {total / n:.4f} val MPJPE {metrics['mpjpe_mm']:.1f} mm "
            f"PA-MPJPE {metrics['pa_mpjpe_mm']:.1f} mm")
    torch.random.set_rng_state(rng_state)
    train_wall = time.perf_counter() - t_train
    final = evaluate_arrays(net, datasets["val"])
    torch.set_num_threads(previous_threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export(net, out)
    card = {
        "config": asdict(config),
        "train_examples": int(n),
        "val_examples": int(len(datasets["val"]["images"])),
        "val_metrics": final,
        "history": history,
        "cpu_seconds_total": round(time.process_time() - t_start, 1),
        "cpu_seconds_render": round(render_cpu, 1),
        "wall_seconds_train": round(train_wall, 1),
        "wall_seconds_total": round(time.perf_counter() - wall_start, 1),
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "onnx_bytes": (out / "baseline.onnx").stat().st_size,
        "versions": _versions(),
    }
    (out / "training.json").write_text(json.dumps(card, indent=1))
    (out / "MODEL_CARD.md").write_text(model_card(card))
    return card


def export(net, out: Path) -> None:
    import torch

    net.eval()
    dummy = torch.zeros(1, 3, CROP, CROP)
    tmp = out / "baseline.onnx.tmp"
    torch.onnx.export(
        net, dummy, str(tmp), input_names=["image"], output_names=["joints3d", "joints2d"],
        dynamic_axes={"image": {0: "batch"}, "joints3d": {0: "batch"}, "joints2d": {0: "batch"}},
        opset_version=17, dynamo=False,
    )
    tmp.replace(out / "baseline.onnx")
    sidecar = {
        "convention": "h36m17",
        "frame": "root_relative",
        "max_batch": 64,
        "input": {
            "name": "image", "layout": "NCHW", "size": [CROP, CROP], "crop": "box", "box_scale": BOX_SCALE,
            "scale": 1 / 255.0, "mean": list(MEAN), "std": list(STD), "channels": "RGB",
        },
        "outputs": {
            "joints3d": {"name": "joints3d", "units": "m"},
            "joints2d": {"name": "joints2d", "space": "crop_norm"},
        },
    }
    import yaml

    (out / "baseline.yaml").write_text(yaml.safe_dump(sidecar, sort_keys=False))


def _versions() -> dict[str, str]:
    from simulator.batch import versions

    return versions()


def model_card(card: dict) -> str:
    c = card["config"]
    m = card["val_metrics"]
    bounds = "\n".join(f"| `{k}` | {v[0] / DEG if 'camera.el' in k or 'roll' in k else v[0]:.3g} .. "
                       f"{v[1] / DEG if 'camera.el' in k or 'roll' in k else v[1]:.3g} |"
                       for k, v in EVERYDAY_BOUNDS.items())
    return f"""# Baseline HPS network — model card

**What it is.** A {card['parameters']:,}-parameter CNN (5 conv stages + MLP head) mapping a
128x128 person crop to 17 H36M-style joints: 3D in metres relative to the pelvis (OpenCV
camera axes) and 2D in crop coordinates. Weights: `baseline.onnx` ({card['onnx_bytes'] / 1e6:.1f} MB),
adapter description `baseline.yaml`. It is PoseExaminer's embedded default target and
deliberately small: it works on everyday scenes and breaks outside them.

**Data.** {card['train_examples']} training and {card['val_examples']} held-out scenes rendered by the
simulator (anny body, 256x256, pyrender) from the "everyday" distribution
(`examiner.training.baseline.everyday_space`): poses from the motion-capture pose prior within
+-{EVERYDAY_LATENT_SIGMA} standard deviations of every latent, kept when the body is upright (tilt under
{EVERYDAY_MAX_TILT_DEG:g} degrees: standing, walking, running, reaching, bending; no lying or inverted
bodies), on a floor with its shadow, camera anywhere around the subject but near eye level and framing the
person like a photo, mid-range bodies, solid / noise / checker backgrounds, no occluders.
Crops from the ground-truth box (x1.2). Bounds that differ from the default search space
(angles in degrees):

| dimension | range |
|---|---|
{bounds}

**Training.** seed {c['seed']}, {c['epochs']} epochs, batch {c['batch']}, AdamW (one-cycle, max lr
{c['lr']}), L1 on 3D (x10) and 2D (x5), brightness/contrast jitter, {c.get('threads', 1)} torch thread(s). CPU time
{card['cpu_seconds_total']:.0f} s in all ({card['cpu_seconds_render']:.0f} s rendering), training wall time
{card['wall_seconds_train']:.0f} s on a 2-core machine.

**Command.** `examiner train-baseline --n {c['n']} --val-n {c['val_n']} --epochs {c['epochs']} --seed {c['seed']} --out assets/baseline`

**Metrics (held-out everyday scenes, 17 joints, root-relative).** MPJPE {m['mpjpe_mm']:.1f} mm,
PA-MPJPE {m['pa_mpjpe_mm']:.1f} mm.

**Fine-tuning on its failure modes.** `examiner finetune --run RUN --model baseline` and
`examiner loop --model baseline` fine-tune these weights on the failure modes a search finds
(docs/finetune.md); before/after numbers: benchmarks/RESULTS-finetune.md.

**Versions.** {', '.join(f'{k} {v}' for k, v in card['versions'].items())}
"""
