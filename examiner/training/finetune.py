"""Fine-tune the bundled baseline on a fine-tuning set (the failure modes a search found).

The set is what `examiner generate finetune` writes (`labels.npz` + images: COCO boxes,
H36M-17 joints in the camera frame, intrinsics); `load_examples` turns it into the
baseline's training examples with the same crop the ONNX adapter runs at inference.
`finetune` starts from the shipped weights (read back from `baseline.onnx`,
`baseline.load_onnx_network`) and trains on the set mixed with a share of everyday scenes
(the baseline's own training distribution, so it does not forget it), PyTorch on the CPU,
seeded. After every epoch it measures a held-out everyday split and keeps the best epoch
whose everyday error stays within `max_everyday_regression` of the start (early stopping).
`export_model` writes `baseline.onnx`, the sidecar `baseline.yaml`, `training.json` and a
model card.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from examiner.training import baseline as bl
from simulator.errors import PoseExaminerError


class FinetuneError(PoseExaminerError):
    """A fine-tuning input or option is wrong (one line, names the fix)."""


@dataclass(frozen=True)
class FinetuneConfig:
    """epochs: passes over the fine-tuning set (at most; early stopping may keep an
    earlier one); everyday_share: fraction of every epoch's examples drawn from everyday
    scenes; lr: AdamW learning rate (cosine to 10% of it); holdout: fraction of the set
    held out to choose the epoch; max_everyday_regression: an epoch whose held-out
    everyday MPJPE is worse than the start by more than this fraction is not kept;
    everyday_pool / everyday_val: everyday scenes to draw from / to stop on (rendered once
    and cached under $POSEEXAMINER_HOME/baseline_data); head_lr_mult: the MLP head's
    learning rate over `lr`; freeze_blocks: the first conv stages (0-5) kept fixed;
    crop2d_loss: the 2D loss only on the joints inside the crop (the sigmoid 2D head
    cannot reach a joint cut off by the image border; the 3D head is unbounded and trained
    on every joint); truncate_aug: the fraction of every batch's examples
    truncated on the fly (`truncate_crops`: a random side of the person cut off by a
    simulated image border, re-cropped as the adapter would); mode_weight: the loss weight
    of the set's failure-mode scenes relative to everyday replay and the set's whole-space
    scenes (every batch's loss is the weighted mean); everyday_share_end: when set, the
    everyday share moves linearly from everyday_share (first epoch) to this (last epoch);
    flip_aug: the fraction of every batch's examples mirrored left-right on the fly
    (`flip_examples`: the crop flipped, 2D x -> 1 - x, 3D x -> -x in camera axes, left and
    right joints swapped; measured at 6000 scenes: better everyday error, worse on the modes,
    so off by default).
    The defaults are the recipe measured at scale in benchmarks/RESULTS-finetune.md
    ("How many scenes?": the mode failure rates fall with the set's size, 600 -> 24000);
    two torch threads take 0.63x the wall time of one on the 2-core machine
    (benchmarks/finetune_threads.py; same seed, same thread count: the same weights)."""

    epochs: int = 8
    batch: int = 64
    lr: float = 2e-4
    everyday_share: float = 0.5
    holdout: float = 0.1
    max_everyday_regression: float = 0.02
    everyday_pool: int = 8000
    everyday_val: int = 500
    optimizer: str = "adamw"
    head_lr_mult: float = 1.0
    freeze_blocks: int = 0
    crop2d_loss: bool = True
    truncate_aug: float = 0.0
    mode_weight: float = 1.0
    everyday_share_end: float | None = None
    flip_aug: float = 0.0
    seed: int = 0
    threads: int = 2
    schema_version: int = 1

    def check(self) -> "FinetuneConfig":
        if self.epochs < 1:
            raise FinetuneError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch < 1:
            raise FinetuneError(f"--batch must be at least 1, got {self.batch}")
        if not self.lr > 0:
            raise FinetuneError(f"--lr must be positive, got {self.lr}")
        if not 0.0 <= self.everyday_share < 1.0:
            raise FinetuneError(f"--everyday-share must be in [0, 1), got {self.everyday_share}")
        if self.everyday_share_end is not None and not 0.0 <= self.everyday_share_end < 1.0:
            raise FinetuneError(f"everyday_share_end must be in [0, 1), got {self.everyday_share_end}")
        if not self.mode_weight > 0:
            raise FinetuneError(f"mode_weight must be positive, got {self.mode_weight}")
        if not 0.0 <= self.holdout < 0.5:
            raise FinetuneError(f"the hold-out fraction must be in [0, 0.5), got {self.holdout}")
        if self.optimizer not in ("adamw", "sgd"):
            raise FinetuneError(f"--optimizer must be adamw or sgd, got {self.optimizer!r}")
        if not self.head_lr_mult > 0:
            raise FinetuneError(f"the head's learning-rate multiplier must be positive, got {self.head_lr_mult}")
        if not 0.0 <= self.flip_aug <= 1.0:
            raise FinetuneError(f"flip_aug must be a fraction in [0, 1], got {self.flip_aug}")
        if not 0.0 <= self.truncate_aug <= 1.0:
            raise FinetuneError(f"truncate_aug must be a fraction in [0, 1], got {self.truncate_aug}")
        if not 0 <= self.freeze_blocks <= 5:
            raise FinetuneError(f"freeze_blocks must be 0..5 (the network's conv stages), got {self.freeze_blocks}")
        if self.seed < 0:
            raise FinetuneError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.everyday_pool < 1 or self.everyday_val < 2:
            raise FinetuneError("the everyday pool needs at least 1 scene and the everyday hold-out at least 2")
        return self


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def load_examples(dataset_dir: str | Path, with_images: bool = True) -> dict[str, np.ndarray]:
    """A fine-tuning set (`examiner generate finetune`) -> the baseline's examples:
    images (N, 128, 128, 3) uint8 crops of the person box (x1.2), joints3d (N, 17, 3)
    root-relative metres, joints2d (N, 17, 2) in [0, 1] crop coordinates, mode (N,)
    failure-mode id or -1 (base scene)."""
    from PIL import Image

    from examiner.targets.preprocess import crop_and_resize, crop_region

    root = Path(dataset_dir)
    path = root / "labels.npz"
    if not path.is_file():
        raise FinetuneError(f"{root} holds no labels.npz; write the set with `examiner generate finetune --out {root}`")
    with np.load(path, allow_pickle=False) as z:
        lab = {k: z[k] for k in z.files}
    if len(lab["image"]) == 0:
        raise FinetuneError(f"{root} holds no samples with a visible person; generate more (--n)")
    crops, j3s, j2s = [], [], []
    for i, rel in enumerate(lab["image"]):
        x, y, w, h = (float(v) for v in lab["bbox"][i])
        region = crop_region(np.array([x, y, x + w, y + h]), (bl.CROP, bl.CROP), bl.BOX_SCALE)
        xyz = lab["h36m17_cam"][i].astype(np.float64)
        uvw = xyz @ lab["K"][i].astype(np.float64).T
        uv = uvw[:, :2] / np.maximum(uvw[:, 2:3], 1e-6)
        x0, y0, x1, y1 = region
        j2s.append(np.stack([(uv[:, 0] - x0) / (x1 - x0), (uv[:, 1] - y0) / (y1 - y0)], axis=1))
        j3s.append(xyz - xyz[0:1])
        if with_images:
            f = root / str(rel)
            if not f.is_file():
                raise FinetuneError(f"image {rel} of {root} is missing; regenerate the set (--resume)")
            rgb = np.asarray(Image.open(f).convert("RGB"))
            crops.append(np.clip(np.round(crop_and_resize(rgb, region, (bl.CROP, bl.CROP))), 0, 255).astype(np.uint8))
    out = {"joints3d": np.asarray(j3s, np.float32), "joints2d": np.asarray(j2s, np.float32),
           "mode": lab["mode"].astype(np.int64)}
    if with_images:
        out["images"] = np.stack(crops)
    return out


def concat_examples(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = ("images", "joints3d", "joints2d", "mode")
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def everyday_data(split: str, n: int, seed: int, workers: int = 2, cache_dir: str | Path | None = None,
                  log: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """n everyday scenes of `split` (the baseline's training distribution), from the
    cache `train-baseline` fills when one holds at least n of them with this seed, else
    rendered once and cached."""
    from simulator.paths import home

    cache = Path(cache_dir) if cache_dir else home() / "baseline_data"
    key = hashlib.sha256(json.dumps(bl.everyday_space().to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    best = None
    for f in cache.glob(f"{split}_n*_seed{seed}_{key}.npz") if cache.is_dir() else []:
        try:
            size = int(f.name.split("_n")[1].split("_")[0])
        except ValueError:
            continue
        if size >= n and (best is None or size < best[0]):
            best = (size, f)
    if best is not None:
        with np.load(best[1], allow_pickle=False) as z:
            data = {k: z[k][:n] for k in ("images", "joints3d", "joints2d")}
        if log:
            log(f"everyday {split}: {len(data['images'])} cached scenes from {best[1]}")
        return data
    if log:
        log(f"everyday {split}: rendering {n} scenes (cached for later runs)")
    data = bl.render_dataset(n, seed, workers=workers)
    cache.mkdir(parents=True, exist_ok=True)
    f = cache / f"{split}_n{n}_seed{seed}_{key}.npz"
    tmp = f.with_name(f.stem + ".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(f)
    return {k: data[k] for k in ("images", "joints3d", "joints2d")}


def everyday_splits(config: FinetuneConfig, workers: int = 2, log: Callable[[str], None] | None = None,
                    cache_dir: str | Path | None = None) -> tuple[dict, dict, dict]:
    """(pool, stop, report): the everyday training pool (train-baseline's training scenes),
    and the held-out everyday scenes (train-baseline's validation seed) split in two
    disjoint halves: `stop` chooses the epoch, `report` is what before/after numbers use."""
    pool = everyday_data("train", config.everyday_pool, 0, workers, cache_dir, log)
    val = everyday_data("val", config.everyday_val, 10_000, workers, cache_dir, log)
    stop = {k: v[0::2] for k, v in val.items()}
    report = {k: v[1::2] for k, v in val.items()}
    return pool, stop, report


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def load_network(model: str | Path):
    """A baseline network from `baseline` (the shipped weights), `onnx:PATH` or a path to a
    baseline.onnx."""
    from examiner.targets.baseline import baseline_dir

    spec = str(model)
    if spec == "baseline":
        path = baseline_dir() / "baseline.onnx"
    elif spec.startswith("onnx:"):
        path = Path(spec[5:].split("?")[0])
    elif spec.endswith(".onnx"):
        path = Path(spec)
    else:
        raise FinetuneError(f"the built-in trainer fine-tunes the baseline network; got model {spec!r}: pass "
                            "--model baseline (or onnx:PATH of an earlier fine-tune), or train your own model "
                            "with --trainer python:pkg.module:train")
    return bl.load_onnx_network(path)


def state_hash(net) -> str:
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def truncate_crops(img, j2, frac: float, gen):
    """Simulated image-border truncation on a batch of crops: for a `frac` share of the
    examples a random side (left/right/top/bottom) loses 15-50% of the person (the extent
    of its in-crop joints); what lies beyond the cut turns black (outside the image, as
    `crop_and_resize` pads) and the rest is re-cropped like the adapter does (box of the
    visible part x BOX_SCALE, square). img (B, 128, 128, 3) uint8 tensor, j2 (B, 17, 2) in
    crop coordinates; returns new (img float 0-255, j2). The 3D targets are root-relative,
    so a crop change leaves them as they are."""
    import torch
    import torch.nn.functional as F

    b = img.shape[0]
    x = img.permute(0, 3, 1, 2).float()
    pick = torch.rand(b, generator=gen) < frac
    side = torch.randint(0, 4, (b,), generator=gen)
    cut = 0.15 + 0.35 * torch.rand(b, generator=gen)
    if not bool(pick.any()):
        return x, j2
    inside = ((j2 >= 0) & (j2 <= 1)).all(-1)
    lo = torch.where(inside[..., None], j2, torch.full_like(j2, 2.0)).amin(1).clamp(0, 1)  # (B, 2)
    hi = torch.where(inside[..., None], j2, torch.full_like(j2, -1.0)).amax(1).clamp(0, 1)
    ok = pick & (hi - lo).min(1).values.gt(0.1)
    box_lo, box_hi = lo.clone(), hi.clone()
    grid_axis = torch.arange(x.shape[-1], dtype=torch.float32).add(0.5).div(x.shape[-1])  # pixel centres in [0, 1]
    keep = torch.ones(b, x.shape[-2], x.shape[-1])
    for i in torch.nonzero(ok).flatten().tolist():
        s, f = int(side[i]), float(cut[i])
        ax = 0 if s < 2 else 1  # 0: x (columns), 1: y (rows)
        extent = float(hi[i, ax] - lo[i, ax])
        if s % 2 == 0:  # left / top: everything before the border is gone
            c = float(lo[i, ax]) + f * extent
            box_lo[i, ax] = c
            m = grid_axis >= c
        else:
            c = float(hi[i, ax]) - f * extent
            box_hi[i, ax] = c
            m = grid_axis <= c
        keep[i] = m[None, :].float().expand_as(keep[i]) if ax == 0 else m[:, None].float().expand_as(keep[i])
    x = x * keep[:, None]
    # re-crop: the visible box x BOX_SCALE, widened to a square, centred
    centre = (box_lo + box_hi) / 2
    half = ((box_hi - box_lo).amax(1) * bl.BOX_SCALE / 2).clamp(min=0.05)
    half = torch.where(ok, half, torch.full_like(half, 0.5))
    centre = torch.where(ok[:, None], centre, torch.full_like(centre, 0.5))
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = 2 * half
    theta[:, 1, 1] = 2 * half
    theta[:, :, 2] = 2 * centre - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    j2 = (j2 - (centre - half[:, None])[:, None, :]) / (2 * half)[:, None, None]
    return x, j2


def _mirror_permutation() -> list[int]:
    """H36M-17 index of every joint's left/right counterpart (itself on the midline)."""
    from simulator.joints import H36M17

    def other(name: str) -> str:
        if name.startswith("left_"):
            return "right_" + name[5:]
        if name.startswith("right_"):
            return "left_" + name[6:]
        return name

    return [H36M17.index(other(n)) for n in H36M17]


MIRROR = _mirror_permutation()


def flip_examples(x, j3, j2, pick):
    """Mirror the picked examples of a batch left-right: x (B, C, H, W) images, j3 (B, 17, 3)
    root-relative OpenCV camera axes, j2 (B, 17, 2) crop coordinates in [0, 1], pick (B,)
    bool. The mirrored person's left joints are the original's right ones, so the joints
    are swapped as well as reflected (x -> -x in 3D, x -> 1 - x in 2D). Returns new tensors."""
    import torch

    if not bool(pick.any()):
        return x, j3, j2
    x, j3, j2 = x.clone(), j3.clone(), j2.clone()
    perm = torch.as_tensor(MIRROR)
    x[pick] = x[pick].flip(-1)
    f3 = j3[pick][:, perm]
    f3[..., 0] = -f3[..., 0]
    j3[pick] = f3
    f2 = j2[pick][:, perm]
    f2[..., 0] = 1.0 - f2[..., 0]
    j2[pick] = f2
    return x, j3, j2


def _normalise_float(x):
    import torch

    mean = torch.tensor(bl.MEAN).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(bl.STD).view(1, 3, 1, 1) * 255.0
    return (x - mean) / std


def finetune(net, train: dict[str, np.ndarray], everyday: dict[str, np.ndarray], stop: dict[str, np.ndarray],
             config: FinetuneConfig, on_progress: Callable[[int], None] | None = None,
             log: Callable[[str], None] | None = None,
             on_epoch: Callable[[int, object], None] | None = None) -> tuple[object, dict]:
    """Fine-tune `net` in place on `train` (the fine-tuning examples) mixed with `everyday`;
    returns (net with the kept epoch's weights, history). Same inputs and seed -> same
    weights (one torch thread, seeded shuffles, jitter and dropout; the global torch RNG
    is restored afterwards)."""
    import torch

    config.check()
    say = log or (lambda _m: None)
    n_all = len(train["images"])
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xF17E]))
    order = rng.permutation(n_all)
    n_hold = int(round(config.holdout * n_all)) if n_all >= 10 else 0
    hold_idx, fit_idx = order[:n_hold], order[n_hold:]
    hold = {k: v[hold_idx] for k, v in train.items()} if n_hold else None
    n_fit = len(fit_idx)

    def n_everyday(epoch: int) -> int:  # everyday examples in `epoch` (1-based)
        share = config.everyday_share
        if config.everyday_share_end is not None and config.epochs > 1:
            share += (config.everyday_share_end - share) * (epoch - 1) / (config.epochs - 1)
        k = int(round(n_fit * share / (1.0 - share))) if len(everyday["images"]) else 0
        return min(k, len(everyday["images"]))

    n_every = n_everyday(1)
    steps = sum(math.ceil((n_fit + n_everyday(e)) / config.batch) for e in range(1, config.epochs + 1))

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)  # dropout draws from the global generator
    gen = torch.Generator().manual_seed(config.seed)
    try:
        start = bl.evaluate_arrays(net, stop)
        start_hold = bl.evaluate_arrays(net, hold) if hold else None
        limit = start["mpjpe_mm"] * (1.0 + config.max_everyday_regression)
        for block in list(net.features)[:config.freeze_blocks]:
            for p in block.parameters():
                p.requires_grad_(False)
        groups = [{"params": [p for p in net.features.parameters() if p.requires_grad], "lr": config.lr},
                  {"params": list(net.head.parameters()), "lr": config.lr * config.head_lr_mult}]
        groups = [g for g in groups if g["params"]]
        if config.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=config.lr, momentum=0.9)
        else:
            opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(  # cosine to 10% of every group's learning rate
            opt, lambda step: 0.1 + 0.45 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1))))
        f_img = torch.as_tensor(train["images"][fit_idx])
        f_j3 = torch.as_tensor(train["joints3d"][fit_idx])
        f_j2 = torch.as_tensor(train["joints2d"][fit_idx])
        f_w = torch.ones(n_fit)
        if config.mode_weight != 1.0 and "mode" in train:
            f_w[torch.as_tensor(train["mode"][fit_idx] != -1)] = float(config.mode_weight)  # -1: a base scene
        history = [{"epoch": 0, "everyday_mpjpe_mm": start["mpjpe_mm"],
                    "holdout_mpjpe_mm": start_hold["mpjpe_mm"] if start_hold else None}]
        best = (start_hold["mpjpe_mm"] if start_hold else math.inf, 0, copy.deepcopy(net.state_dict()))
        for epoch in range(1, config.epochs + 1):
            net.train()
            n_every = n_everyday(epoch)
            e_idx = rng.choice(len(everyday["images"]), size=n_every, replace=False) if n_every else np.zeros(0, int)
            img = torch.cat([f_img, torch.as_tensor(everyday["images"][e_idx])]) if n_every else f_img
            j3 = torch.cat([f_j3, torch.as_tensor(everyday["joints3d"][e_idx])]) if n_every else f_j3
            j2 = torch.cat([f_j2, torch.as_tensor(everyday["joints2d"][e_idx])]) if n_every else f_j2
            w = torch.cat([f_w, torch.ones(n_every)]) if n_every else f_w
            perm = torch.randperm(len(img), generator=gen)
            total = 0.0
            for i in range(0, len(img), config.batch):
                idx = perm[i:i + config.batch]
                t2 = j2[idx]
                if config.truncate_aug > 0:
                    raw, t2 = truncate_crops(img[idx], t2, config.truncate_aug, gen)
                    x = _normalise_float(raw)
                else:
                    x = bl._normalise(img[idx])
                t3 = j3[idx]
                if config.flip_aug > 0:
                    pick = torch.rand(len(idx), generator=gen) < config.flip_aug
                    x, t3, t2 = flip_examples(x, t3, t2, pick)
                scale = 1.0 + 0.2 * (torch.rand(len(idx), 1, 1, 1, generator=gen) - 0.5)
                shift = 0.2 * (torch.rand(len(idx), 1, 1, 1, generator=gen) - 0.5)
                p3, p2 = net(x * scale + shift)
                e2 = (p2 - t2).abs()
                if config.crop2d_loss:  # joints outside the crop: the sigmoid 2D head cannot reach them
                    inside = ((t2 >= 0.0) & (t2 <= 1.0)).all(-1, keepdim=True).float()
                    e2 = e2 * inside
                if config.mode_weight == 1.0:
                    loss = (p3 - t3).abs().mean() * 10.0 + e2.mean() * 5.0
                else:  # per-example loss, weighted mean
                    per = (p3 - t3).abs().flatten(1).mean(1) * 10.0 + e2.flatten(1).mean(1) * 5.0
                    wb = w[idx]
                    loss = (per * wb).sum() / wb.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                if on_progress:
                    on_progress(len(idx))
            every = bl.evaluate_arrays(net, stop)
            h = bl.evaluate_arrays(net, hold) if hold else None
            row = {"epoch": epoch, "loss": total / len(img), "everyday_mpjpe_mm": every["mpjpe_mm"],
                   "holdout_mpjpe_mm": h["mpjpe_mm"] if h else None, "kept": False}
            history.append(row)
            score = h["mpjpe_mm"] if h else -epoch  # no hold-out: the last admissible epoch
            ok = every["mpjpe_mm"] <= limit
            say(f"epoch {epoch}/{config.epochs} loss {row['loss']:.4f} everyday MPJPE {every['mpjpe_mm']:.1f} mm"
                + (f" (limit {limit:.1f})" if not ok else "")
                + (f", held-out set MPJPE {h['mpjpe_mm']:.1f} mm" if h else ""))
            if ok and score < best[0]:
                best = (score, epoch, copy.deepcopy(net.state_dict()))
            if on_epoch:
                on_epoch(epoch, net)
        net.load_state_dict(best[2])
        for row in history:
            row["kept"] = row["epoch"] == best[1]
    finally:
        torch.random.set_rng_state(rng_state)
        torch.set_num_threads(previous_threads)
    return net, {"history": history, "kept_epoch": best[1], "fit_examples": n_fit, "holdout_examples": n_hold,
                 "everyday_per_epoch": n_every, "everyday_limit_mm": limit}


def export_model(net, out: str | Path, card: dict) -> Path:
    """baseline.onnx + baseline.yaml (the baseline's sidecar) + training.json + MODEL_CARD.md
    into `out`; returns the ONNX path (`onnx:<path>` is its model spec)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bl.export(net, out)
    write_card(out, card)
    return out / "baseline.onnx"


def write_card(out: str | Path, card: dict) -> None:
    out = Path(out)
    tmp = out / ".training.json.tmp"
    tmp.write_text(json.dumps(card, indent=1, default=float))
    tmp.replace(out / "training.json")
    (out / "MODEL_CARD.md").write_text(model_card(card))


def _fmt(v, unit: str = "") -> str:
    return "-" if v is None else f"{v:.1f}{unit}"


def model_card(card: dict) -> str:
    c = card.get("config", {})
    ev = card.get("everyday", {})
    lines = [
        "# Fine-tuned baseline HPS network — model card", "",
        f"**What it is.** The bundled baseline network (`assets/baseline/`, see its model card), fine-tuned from "
        f"{card.get('start_model', 'baseline')} on {card.get('fit_examples', '?')} scenes of a fine-tuning set "
        f"({', '.join(card.get('datasets', [])) or '-'}) mixed with {card.get('everyday_per_epoch', '?')} everyday "
        "scenes per epoch (its own training distribution, so it does not forget it).", "",
        f"**Training.** seed {c.get('seed')}, up to {c.get('epochs')} epochs (kept epoch {card.get('kept_epoch')}: "
        f"the best on {card.get('holdout_examples', 0)} held-out fine-tuning scenes among the epochs whose held-out "
        f"everyday MPJPE stayed within +{100 * c.get('max_everyday_regression', 0):.1f}% of the start), batch "
        f"{c.get('batch')}, AdamW lr {c.get('lr')} (cosine), L1 on 3D (x10) and 2D (x5"
        f"{', joints inside the crop only' if c.get('crop2d_loss') else ''}), brightness/contrast jitter"
        f"{', truncation augmentation on %.0f%% of examples' % (100 * c['truncate_aug']) if c.get('truncate_aug') else ''}"
        f"{', first %d conv stages frozen' % c['freeze_blocks'] if c.get('freeze_blocks') else ''}, "
        f"{c.get('threads', 1)} torch thread(s); CPU time {_fmt(card.get('cpu_seconds'), ' s')}.", "",
        "**Held-out everyday scenes** (MPJPE / PA-MPJPE, mm; disjoint from every training and stopping scene): "
        f"before {_fmt(ev.get('before', {}).get('mpjpe_mm'))} / {_fmt(ev.get('before', {}).get('pa_mpjpe_mm'))}, "
        f"after {_fmt(ev.get('after', {}).get('mpjpe_mm'))} / {_fmt(ev.get('after', {}).get('pa_mpjpe_mm'))}.", "",
    ]
    modes = card.get("modes") or []
    if modes:
        lines += [f"**Failure modes of {card.get('run', 'the run')}** (fresh samples inside each mode's box; the "
                  "same samples before and after; failure as the run defines it):", "",
                  "| mode | samples | failing before | failing after | median error before | after |",
                  "|---|---|---|---|---|---|"]
        for m in modes:
            lines.append(f"| {m['rank']} | {m['n']} | {m['rate_before']:.0%} | {m['rate_after']:.0%} | "
                         f"{_fmt(m.get('median_before'))} | {_fmt(m.get('median_after'))} |")
        lines.append("")
    lines.append(f"**Versions.** {', '.join(f'{k} {v}' for k, v in card.get('versions', {}).items())}")
    return "\n".join(lines) + "\n"


def finetune_baseline(model: str, datasets: list[str | Path], out: str | Path, config: FinetuneConfig,
                      workers: int = 2, on_progress: Callable[[int], None] | None = None,
                      log: Callable[[str], None] | None = None, extra: dict | None = None) -> dict:
    """Load `model` (baseline / onnx:PATH), fine-tune on the union of `datasets` (a growing
    pool across rounds) + everyday scenes, export into `out`. Returns the card dict (also
    written as training.json); its `model_spec` is the new model."""
    config.check()
    say = log or (lambda _m: None)
    t0 = time.process_time()
    if not datasets:
        raise FinetuneError("no fine-tuning set given; build one with `examiner generate finetune --from-run RUN`")
    train = concat_examples([load_examples(d) for d in datasets])
    pool, stop, report = everyday_splits(config, workers=workers, log=log)
    net = load_network(model)
    before = bl.evaluate_arrays(net, report)
    start_hash = state_hash(net)
    net, info = finetune(net, train, pool, stop, config, on_progress=on_progress, log=say)
    after = bl.evaluate_arrays(net, report)
    card = {
        "schema": "poseexaminer-finetune", "schema_version": 1, "config": asdict(config), "start_model": str(model),
        "datasets": [str(Path(d)) for d in datasets], **info,
        "everyday": {"n": int(len(report["images"])), "before": before, "after": after},
        "weights_before": start_hash, "weights_after": state_hash(net),
        "cpu_seconds": round(time.process_time() - t0, 1), "versions": bl._versions(), **(extra or {}),
    }
    path = export_model(net, out, card)
    card["model_spec"] = f"onnx:{path.resolve()}"
    write_card(out, card)
    return card
