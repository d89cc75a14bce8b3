"""Training the pose VAE on the retargeted mocap table (offline; torch, CPU, seeded).

VPoser-like: MLP encoder 34 -> 256 -> 256 -> (mu, log var) of L latents, MLP decoder
L -> 256 -> 256 -> 34 features (31 standardised angles + the world up direction in the body
frame, normalised on decoding). Loss per pose: squared error of the features + BETA * KL.
Whole clips are held out (seeded, per source) to choose L and to measure reconstruction.
Every training frame also enters mirrored (`table.mirror_pose`). DeepMimic's 2,207 frames
(acrobatics, lying, crawling) are drawn `SOURCE_WEIGHT` times as often as a CMU frame.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from simulator.joints import POSE_DOFS
from simulator.prior import BODY_DOFS, PRIOR_VERSION, PosePrior, features_from_angles
from simulator.prior.table import load_table, mirror_pose

HIDDEN = 256
LEAKY = 0.1
BETA = 0.02
HELD_OUT_FRACTION = 0.15
SOURCE_WEIGHT = {"cmu": 1.0, "deepmimic": 4.0}
LATENT_CHOICES = (8, 12, 16)
STEPS = 6000
BATCH = 256
# Joint groups for the reconstruction report.
GROUPS = {
    "trunk": ("spine_flexion", "spine_lateral", "spine_rotation"),
    "neck_head": ("neck_flexion", "neck_lateral", "neck_rotation", "head_flexion"),
    "shoulders": tuple(f"{s}_shoulder_{k}" for s in "lr" for k in ("flexion", "abduction", "rotation")),
    "elbows": ("l_elbow_flexion", "r_elbow_flexion"),
    "wrists": tuple(f"{s}_wrist_{k}" for s in "lr" for k in ("flexion", "deviation")),
    "hips": tuple(f"{s}_hip_{k}" for s in "lr" for k in ("flexion", "abduction", "rotation")),
    "knees": ("l_knee_flexion", "r_knee_flexion"),
    "ankles": tuple(f"{s}_ankle_{k}" for s in "lr" for k in ("flexion", "inversion")),
}


def split_clips(table: dict, seed: int) -> np.ndarray:
    """Boolean (C,) held-out mask: HELD_OUT_FRACTION of each source's clips, seeded."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(table["clip_ids"]), bool)
    for src in np.unique(table["clip_sources"]):
        idx = np.flatnonzero(table["clip_sources"] == src)
        k = max(1, round(HELD_OUT_FRACTION * len(idx)))
        held[rng.choice(idx, k, replace=False)] = True
    return held


def _build(torch, latent: int, condition_up: bool = False):
    """Encoder 34 -> 2L; decoder L -> 34 features, or, conditioned on posture, (L + 3 up) ->
    the 31 body features (the up direction is an input, not an output)."""
    nn = torch.nn
    D = len(POSE_DOFS)
    act = lambda: nn.LeakyReLU(LEAKY)  # noqa: E731
    d_in, d_out = (latent + 3, len(BODY_DOFS)) if condition_up else (latent, D)
    enc = nn.Sequential(nn.Linear(D, HIDDEN), act(), nn.Linear(HIDDEN, HIDDEN), act(), nn.Linear(HIDDEN, 2 * latent))
    dec = nn.Sequential(nn.Linear(d_in, HIDDEN), act(), nn.Linear(HIDDEN, HIDDEN), act(), nn.Linear(HIDDEN, d_out))
    return enc, dec


def _export(enc, dec, latent: int, mean: np.ndarray, std: np.ndarray, condition_up: bool = False) -> dict[str, np.ndarray]:
    w: dict[str, np.ndarray] = {
        "version": np.int32(PRIOR_VERSION), "latent_dim": np.int32(latent), "leaky_slope": np.float32(LEAKY),
        "angle_mean": mean.astype(np.float32), "angle_std": std.astype(np.float32), "dof_names": np.array(POSE_DOFS),
        "body_dof_names": np.array(BODY_DOFS),
    }
    if condition_up:
        w["condition"] = np.array("up")
    for prefix, net in (("enc", enc), ("dec", dec)):
        lin = [m for m in net if hasattr(m, "weight")]
        w[f"{prefix}_layers"] = np.int32(len(lin))
        for i, m in enumerate(lin):
            w[f"{prefix}_W{i}"] = m.weight.detach().double().numpy().T.astype(np.float32)
            w[f"{prefix}_b{i}"] = m.bias.detach().double().numpy().astype(np.float32)
    return w


def train_vae(angles: np.ndarray, weights: np.ndarray, latent: int, seed: int, steps: int = STEPS, log=None,
              condition_up: bool = False):
    """Train on (N, 34) radians with per-frame sampling weights; returns the exported weight dict.
    condition_up: the posture prior (the decoder is given the frame's up direction)."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    body = angles[:, [POSE_DOFS.index(n) for n in BODY_DOFS]]
    mean, std = body.mean(0), body.std(0) + 1e-3
    X = torch.as_tensor(features_from_angles(angles, mean, std), dtype=torch.float32)
    p = torch.as_tensor(weights / weights.sum(), dtype=torch.float64)
    enc, dec = _build(torch, latent, condition_up)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for step in range(steps):
        idx = torch.multinomial(p, BATCH, replacement=True, generator=gen)
        x = X[idx]
        h = enc(x)
        mu, logvar = h[:, :latent], h[:, latent:].clamp(-10, 5)
        z = mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()
        n_body = len(BODY_DOFS)
        if condition_up:
            y = dec(torch.cat([z, x[:, n_body:]], 1))
            rec = ((y - x[:, :n_body]) ** 2).sum(1)
        else:
            y = dec(z)
            up = y[:, n_body:] / y[:, n_body:].norm(dim=1, keepdim=True).clamp_min(1e-6)
            rec = ((y[:, :n_body] - x[:, :n_body]) ** 2).sum(1) + 4.0 * ((up - x[:, n_body:]) ** 2).sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        loss = (rec + BETA * kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step + 1) % 2000 == 0:
            log(f"  L={latent} step {step + 1}/{steps}: rec {rec.mean().item():.3f} kl {kl.mean().item():.2f}")
    return _export(enc, dec, latent, mean, std, condition_up)


def reconstruction_errors(prior: PosePrior, angles: np.ndarray) -> dict[str, float]:
    """Mean absolute error (degrees) of decode(encode(x)) per joint group, and the root tilt
    error (degrees between the true and reconstructed up directions; 0 for a posture prior,
    which is given the true one)."""
    from simulator.prior import up_from_tilt

    up = None
    if prior.condition == "up":
        up = up_from_tilt(angles[:, POSE_DOFS.index("root_pitch")], angles[:, POSE_DOFS.index("root_roll")])
    rec = prior.decode(prior.encode(angles), up)
    err = np.degrees(np.abs(rec - angles))
    out = {g: float(err[:, [POSE_DOFS.index(n) for n in names]].mean()) for g, names in GROUPS.items()}
    ip, ir = POSE_DOFS.index("root_pitch"), POSE_DOFS.index("root_roll")
    u0, u1 = up_from_tilt(angles[:, ip], angles[:, ir]), up_from_tilt(rec[:, ip], rec[:, ir])
    out["root_tilt"] = float(np.degrees(np.arccos(np.clip((u0 * u1).sum(1), -1, 1))).mean())
    body = [POSE_DOFS.index(n) for n in BODY_DOFS]
    out["all_body_angles"] = float(err[:, body].mean())
    return out


def tilt_rates(poses: np.ndarray) -> dict[str, float]:
    """Fractions of poses lying (> 60 degrees from upright) and inverted (> 120 degrees)."""
    from simulator.prior import up_from_tilt

    u = up_from_tilt(poses[:, POSE_DOFS.index("root_pitch")], poses[:, POSE_DOFS.index("root_roll")])
    tilt = np.degrees(np.arccos(np.clip(u[:, 2], -1, 1)))
    return {"lying_gt60": float((tilt > 60).mean()), "inverted_gt120": float((tilt > 120).mean())}


def _training_data(table_path: Path, seed: int):
    """(table, held-out clip mask, training frames, held-out frames, training frames plus
    their mirrors, their sampling weights)."""
    table = load_table(table_path)
    held_clips = split_clips(table, seed)
    held = held_clips[table["clip_index"]]
    train, test = table["angles"][~held], table["angles"][held]
    src = table["clip_sources"][table["clip_index"]]
    w = np.array([SOURCE_WEIGHT[s] for s in src[~held]])
    return table, held_clips, train, test, np.concatenate([train, mirror_pose(train)]), np.concatenate([w, w])


def train_and_save(table_path: Path, out: Path, seed: int = 0, log=print, steps: int = STEPS) -> dict:
    import torch

    torch.set_num_threads(1)
    t0 = time.process_time()
    table, held_clips, train, test, train_x, train_w = _training_data(table_path, seed)
    log(f"train {len(train)} frames (+ mirrored), held out {len(test)} frames from {held_clips.sum()} clips: "
        f"{', '.join(table['clip_ids'][held_clips])}")
    candidates = {}
    for L in LATENT_CHOICES:
        weights = train_vae(train_x, train_w, L, seed, steps, log)
        prior = PosePrior(weights)
        candidates[L] = (weights, reconstruction_errors(prior, test), reconstruction_errors(prior, train))
        log(f"L={L}: held-out mean body-angle error {candidates[L][1]['all_body_angles']:.2f} deg, tilt {candidates[L][1]['root_tilt']:.2f} deg")
    best = min(c[1]["all_body_angles"] for c in candidates.values())
    # The smallest latent within 5% of the best held-out error: a smaller space for the search.
    chosen = min(L for L, c in candidates.items() if c[1]["all_body_angles"] <= 1.05 * best)
    weights = candidates[chosen][0]
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "prior.npz", **weights)
    prior = PosePrior(weights)
    rng = np.random.default_rng(seed)
    normal = prior.decode(rng.standard_normal((20000, chosen)))
    uniform = prior.decode(rng.uniform(-2.5, 2.5, (20000, chosen)))
    metrics = {
        "seed": seed, "steps": steps, "batch": BATCH, "beta": BETA, "hidden": HIDDEN, "source_weight": SOURCE_WEIGHT,
        "held_out_clips": [str(c) for c in table["clip_ids"][held_clips]],
        "train_frames": int(len(train)), "held_out_frames": int(len(test)),
        "latent_dim": chosen,
        "candidates": {str(L): {"held_out": c[1], "train": c[2]} for L, c in candidates.items()},
        "tilt_rates": {"mocap_train": tilt_rates(train), "z_normal": tilt_rates(normal), "z_uniform_2.5": tilt_rates(uniform)},
        "cpu_seconds": round(time.process_time() - t0, 1),
    }
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    log(f"chose L={chosen}; {metrics['cpu_seconds']} CPU s; tilt rates {metrics['tilt_rates']}")
    return metrics


POSTURE_CLASSES = {"upright": (0.0, 30.0), "lying": (60.0, 120.0), "inverted": (120.0, 180.01)}


def _tilts(angles: np.ndarray) -> np.ndarray:
    from simulator.prior import up_from_tilt

    u = up_from_tilt(angles[:, POSE_DOFS.index("root_pitch")], angles[:, POSE_DOFS.index("root_roll")])
    return np.degrees(np.arccos(np.clip(u[:, 2], -1, 1)))


def nearest_angle_distance(poses: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(N,) mean absolute difference (degrees) over the 31 body angles from each pose to its
    nearest frame (a cheap realism check per posture class; the body-model benchmark is
    benchmarks/bench_pose_realism.py)."""
    body = [POSE_DOFS.index(n) for n in BODY_DOFS]
    a, b = np.degrees(poses[:, body]), np.degrees(frames[:, body])
    return np.array([np.abs(b - x).mean(1).min() for x in a])


def train_posture_and_save(table_path: Path, out: Path, seed: int = 0, log=print, steps: int = STEPS) -> dict:
    """The posture-conditioned prior (prior_posture.npz, train_metrics_posture.json): the same
    data, split, weights, latent size (prior.npz's) and recipe as the pose prior, with the up
    direction given to the decoder."""
    import torch

    from simulator.prior import load_pose_prior, posture_up

    torch.set_num_threads(1)
    t0 = time.process_time()
    table, held_clips, train, test, train_x, train_w = _training_data(table_path, seed)
    angles = table["angles"]
    latent = load_pose_prior(out / "prior.npz").latent_dim
    weights = train_vae(train_x, train_w, latent, seed, steps, log, condition_up=True)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "prior_posture.npz", **weights)
    prior = PosePrior(weights)
    # Realism per posture class: samples at the class's tilts (uniform tilt in the class,
    # uniform direction, z ~ N(0, I)) against every mocap frame of that class, beside the
    # held-out frames of the class against the training frames (the floor).
    rng = np.random.default_rng(seed)
    uncond = load_pose_prior(out / "prior.npz").sample(rng, 40000)
    t_uncond = _tilts(uncond)
    all_frames = np.concatenate([angles, mirror_pose(angles)])
    t_all, t_train, t_test = _tilts(all_frames), _tilts(train_x), _tilts(test)
    realism = {}
    for name, (lo, hi) in POSTURE_CLASSES.items():
        n = 300
        up = posture_up(rng.uniform(lo, min(hi, 180.0), n), rng.uniform(-180.0, 180.0, n))
        poses = prior.decode(rng.standard_normal((n, latent)), up)
        frames = all_frames[(t_all >= lo) & (t_all < hi)]
        held_cls = test[(t_test >= lo) & (t_test < hi)]
        floor = nearest_angle_distance(held_cls, train_x[(t_train >= lo) & (t_train < hi)]) if len(held_cls) else np.array([])
        d = nearest_angle_distance(poses, frames)
        u_cls = uncond[(t_uncond >= lo) & (t_uncond < hi)]
        du = nearest_angle_distance(u_cls[:n], frames)
        realism[name] = {"mocap_frames": int(len(frames)), "samples_median_deg": round(float(np.median(d)), 2),
                         "pose_prior_share": round(len(u_cls) / len(uncond), 4),
                         "pose_prior_samples_median_deg": round(float(np.median(du)), 2) if len(du) else None,
                         "held_out_frames": int(len(held_cls)),
                         "held_out_median_deg": round(float(np.median(floor)), 2) if len(floor) else None}
    metrics = {
        "seed": seed, "steps": steps, "batch": BATCH, "beta": BETA, "hidden": HIDDEN, "source_weight": SOURCE_WEIGHT,
        "latent_dim": latent, "condition": "up (world up in the body frame, given to the decoder)",
        "held_out_clips": [str(c) for c in table["clip_ids"][held_clips]],
        "held_out": reconstruction_errors(prior, test), "train": reconstruction_errors(prior, train),
        "realism_nearest_frame_body_angles": realism,
        "cpu_seconds": round(time.process_time() - t0, 1),
    }
    (out / "train_metrics_posture.json").write_text(json.dumps(metrics, indent=1) + "\n")
    log(f"posture prior L={latent}: held-out body-angle error {metrics['held_out']['all_body_angles']:.2f} deg; "
        f"{metrics['cpu_seconds']} CPU s; realism {realism}")
    return metrics
