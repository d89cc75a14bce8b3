"""Retargeting motion capture to the 34 anatomical angles (offline; torch).

Per frame, in the source's pelvis frame: fit the non-root angles so that the anny skeleton's
limb bone directions (thigh, shin, upper arm, forearm, CMU hand) match the source's, and its
chest, head and foot rotations from the anatomical neutral match the source segments'
(rotations carry the spine / neck twist, the ankle and, with the knee straight, the hip
rotation; the forearm carries the humerus rotation when the elbow is bent). Batched Adam on
windows of consecutive frames, each window warm-started from the previous window's last frame,
angles projected onto `POSE_LIMITS` after every step; frames left with a loss above
`RESTART_LOSS` are refitted from a few starting points (`_restarts`) and keep the best fit. The root tilt is exact (not fitted): the
pelvis rotation with its heading removed (`mocap.body_up_tilt`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.joints import POSE_DOFS, POSE_LIMITS
from simulator.prior.mocap import SourceClip, body_up_tilt

LIMB_BONES = tuple(
    (f"{s}_{a}", f"{s}_{b}") for s in "lr" for a, b in (
        ("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "hand"),
    )
) + (("neck_base", "head"),)
# anny's wrist -> middle knuckle is not quite CMU's wrist -> hand; neck base -> head only
# splits the head's rotation between neck and head flexion.
BONE_WEIGHT = {"hand": 0.2, "head": 0.3}
ROTATION_WEIGHT = {"chest": 1.0, "head": 0.5, "l_foot": 0.5, "r_foot": 0.5}
ANGLE_REG = 1e-3
RESTART_LOSS = 0.1  # ~ 18 degrees of misfit on one bone: a wrong twist or a flipped limb
_ROOT = [POSE_DOFS.index(k) for k in ("root_yaw", "root_pitch", "root_roll")]


@dataclass
class Retargeted:
    """angles (T, 34) radians (POSE_DOFS order, root_yaw 0); root_height (T,) pelvis height above
    the lowest landmark in source leg lengths; up (T, 3) world up in the body frame."""

    clip: SourceClip
    angles: np.ndarray
    root_height: np.ndarray
    up: np.ndarray


def pelvis_frame_targets(clip: SourceClip) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Unit bone directions {"a>b": (T, 3)} and segment rotations {seg: (T, 3, 3)} in the pelvis frame."""
    Rt = np.transpose(clip.root, (0, 2, 1))
    pos = {k: np.einsum("tij,tj->ti", Rt, v - clip.positions["root"]) for k, v in clip.positions.items()}
    dirs = {}
    for a, b in LIMB_BONES:
        if a in pos and b in pos:
            d = pos[b] - pos[a]
            dirs[f"{a}>{b}"] = d / np.linalg.norm(d, axis=1, keepdims=True)
    rots = {k: Rt @ r for k, r in clip.rotations.items()}
    return dirs, rots


def _limits(torch, dtype):
    lo = torch.tensor([POSE_LIMITS[k][0] for k in POSE_DOFS], dtype=dtype)
    hi = torch.tensor([POSE_LIMITS[k][1] for k in POSE_DOFS], dtype=dtype)
    return lo, hi


def _anny_dirs(heads, names):
    out = {}
    for n in names:
        a, b = n.split(">")
        d = heads[b] - heads[a]
        out[n] = d / d.norm(dim=-1, keepdim=True)
    return out


def _loss(skeleton, x, dirs: dict, rots: dict):
    heads, R = skeleton.forward(x)
    ad = _anny_dirs(heads, dirs)
    loss = sum(BONE_WEIGHT.get(n.split(">")[1].split("_", 1)[-1], 1.0) * ((ad[n] - t) ** 2).sum(-1) for n, t in dirs.items())
    loss = loss + sum(ROTATION_WEIGHT[k] * ((R[k] - t) ** 2).sum((-1, -2)) for k, t in rots.items())
    return loss + ANGLE_REG * (x**2).sum(-1)


def _adam(skeleton, dirs: dict, rots: dict, init, iters: int, lr: float):
    import torch

    lo, hi = _limits(torch, skeleton.dtype)
    lo[_ROOT], hi[_ROOT] = 0.0, 0.0
    x = init.clone().clamp(lo, hi).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(iters):
        opt.zero_grad()
        _loss(skeleton, x, dirs, rots).sum().backward()
        opt.step()
        with torch.no_grad():
            x.copy_(torch.maximum(torch.minimum(x, hi), lo))
    with torch.no_grad():
        return x.detach(), _loss(skeleton, x, dirs, rots)


def _restarts(n_dofs: int) -> list[np.ndarray]:
    """Starting points for frames the warm start leaves badly fitted: neutral, and the shoulder
    and hip axial rotations at +-45 degrees (the ball joints' twist is where Adam gets stuck)."""
    starts = [np.zeros(n_dofs)]
    for sign in (1.0, -1.0):
        s = np.zeros(n_dofs)
        for name in ("l_shoulder_rotation", "r_shoulder_rotation", "l_hip_rotation", "r_hip_rotation"):
            s[POSE_DOFS.index(name)] = sign * math.radians(40)
        starts.append(s)
    return starts


STATS = {"frames": 0, "refitted": 0, "improved": 0}


def fit_angles(skeleton, dirs: dict, rots: dict, init, iters: int, lr: float = 0.04,
               refit_loss: float = RESTART_LOSS, restart_iters: int = 150):
    """Fit (B, 34) angles (root fixed at 0) to targets given as torch tensors (B, 3) / (B, 3, 3).

    Frames whose loss stays above `refit_loss` are fitted again from `_restarts` and keep the best."""
    import torch

    x, loss = _adam(skeleton, dirs, rots, init, iters, lr)
    bad = torch.nonzero(loss > refit_loss).flatten()
    STATS["frames"] += len(x)
    STATS["refitted"] += len(bad)
    if len(bad):
        sub_d = {k: v[bad] for k, v in dirs.items()}
        sub_r = {k: v[bad] for k, v in rots.items()}
        best_x, best_l = x[bad], loss[bad]
        for start in _restarts(x.shape[1]):
            s = torch.as_tensor(start, dtype=x.dtype).expand(len(bad), -1)
            xs, ls = _adam(skeleton, sub_d, sub_r, s, restart_iters, lr)
            better = ls < best_l
            best_x = torch.where(better[:, None], xs, best_x)
            best_l = torch.minimum(ls, best_l)
        STATS["improved"] += int((best_l < loss[bad] - 1e-4).sum())
        x[bad] = best_x
    return x


def retarget_clips(skeleton, clips: list[SourceClip], window: int = 48, first_iters: int = 200,
                   iters: int = 50, progress=None) -> list[Retargeted]:
    """All clips at once: window k of every clip is one batch, warm-started from window k-1."""
    import torch

    dt = skeleton.dtype
    targets = [pelvis_frame_targets(c) for c in clips]
    # Clips differ in which targets they have (DeepMimic has no hand): batch by target set.
    groups: dict[tuple, list[int]] = {}
    for i, (d, r) in enumerate(targets):
        groups.setdefault((tuple(sorted(d)), tuple(sorted(r))), []).append(i)
    angles = [np.zeros((c.n_frames, len(POSE_DOFS))) for c in clips]
    n_windows = max(math.ceil(c.n_frames / window) for c in clips)
    for k in range(n_windows):
        for (dnames, rnames), members in groups.items():
            rows, init = [], []
            for i in members:
                t0, t1 = k * window, min((k + 1) * window, clips[i].n_frames)
                if t0 >= t1:
                    continue
                rows.append((i, t0, t1))
                start = angles[i][t0 - 1] if k > 0 else np.zeros(len(POSE_DOFS))
                init.append(np.repeat(start[None], t1 - t0, 0))
            if not rows:
                continue
            d = {n: torch.as_tensor(np.concatenate([targets[i][0][n][t0:t1] for i, t0, t1 in rows]), dtype=dt) for n in dnames}
            r = {n: torch.as_tensor(np.concatenate([targets[i][1][n][t0:t1] for i, t0, t1 in rows]), dtype=dt) for n in rnames}
            x0 = torch.as_tensor(np.concatenate(init), dtype=dt)
            x = fit_angles(skeleton, d, r, x0, first_iters if k == 0 else iters).double().numpy()
            o = 0
            for i, t0, t1 in rows:
                angles[i][t0:t1] = x[o:o + t1 - t0]
                o += t1 - t0
        if progress:
            progress(k + 1, n_windows)
    out = []
    for c, a in zip(clips, angles):
        pitch, roll, up = body_up_tilt(c.root)
        a[:, POSE_DOFS.index("root_pitch")] = pitch
        a[:, POSE_DOFS.index("root_roll")] = roll
        z = np.stack([v[:, 2] for v in c.positions.values()], 1)
        height = (c.positions["root"][:, 2] - z.min(1)) / c.leg_length
        out.append(Retargeted(c, a, height, up))
    return out


def retarget_errors(skeleton, result: Retargeted) -> dict[str, np.ndarray]:
    """Per-frame errors of a retargeted clip: bone direction (degrees) per limb bone, rotation
    (degrees) per matched segment, and joint position (mm) when the source's bone directions
    are chained with anny's bone lengths from anny's hip / shoulder."""
    import torch

    dirs, rots = pelvis_frame_targets(result.clip)
    pose = result.angles.copy()
    pose[:, _ROOT] = 0.0
    with torch.no_grad():
        heads, R = skeleton.forward(torch.as_tensor(pose, dtype=skeleton.dtype))
    heads = {k: v.double().numpy() for k, v in heads.items()}
    R = {k: v.double().numpy() for k, v in R.items()}
    out: dict[str, np.ndarray] = {}
    for n, t in dirs.items():
        a, b = n.split(">")
        d = heads[b] - heads[a]
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        out[f"dir_deg/{b}"] = np.degrees(np.arccos(np.clip((d * t).sum(1), -1, 1)))
    for k, t in rots.items():
        c = (np.trace(np.transpose(R[k], (0, 2, 1)) @ t, axis1=1, axis2=2) - 1) / 2
        out[f"rot_deg/{k}"] = np.degrees(np.arccos(np.clip(c, -1, 1)))
    for s in "lr":
        for chain in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist")):
            p_src = heads[f"{s}_{chain[0]}"]
            for a, b in zip(chain, chain[1:]):
                key = f"{s}_{a}>{s}_{b}"
                if key not in dirs:
                    break
                L = np.linalg.norm(heads[f"{s}_{b}"] - heads[f"{s}_{a}"], axis=1, keepdims=True)
                p_src = p_src + L * dirs[key]
                out[f"pos_mm/{s}_{b}"] = 1000 * np.linalg.norm(p_src - heads[f"{s}_{b}"], axis=1)
    return out
