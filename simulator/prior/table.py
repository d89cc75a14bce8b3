"""The retargeted mocap table `assets/pose_prior/mocap_poses.npz` and pose mirroring (numpy).

Table arrays: angles (N, 34) float16 radians in `dof_names` order (root_yaw 0); root_height (N,)
float16 pelvis height above the lowest joint in leg lengths; clip_index (N,) int16; frame (N,)
int32 frame number in the source clip at its own rate; clip_ids / clip_sources /
clip_descriptions (C,) str; clip_fps (C,) the rate of the stored frames; dof_names (34,) str.
Mirrored frames are not stored: `mirror_pose` makes them (applied at training).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.joints import POSE_DOFS, POSE_LIMITS

TABLE_VERSION = 1
# Angles whose sign flips under the left/right mirror (x -> -x): everything turning or bending
# towards a side. Per-side limb angles are anatomical (same meaning on both sides) and swap.
_MIRROR_NEGATE = ("root_yaw", "root_roll", "spine_lateral", "spine_rotation", "neck_lateral", "neck_rotation")


def _mirror_index() -> tuple[np.ndarray, np.ndarray]:
    perm = []
    for name in POSE_DOFS:
        if name.startswith("l_"):
            perm.append(POSE_DOFS.index("r_" + name[2:]))
        elif name.startswith("r_"):
            perm.append(POSE_DOFS.index("l_" + name[2:]))
        else:
            perm.append(POSE_DOFS.index(name))
    sign = np.array([-1.0 if n in _MIRROR_NEGATE else 1.0 for n in POSE_DOFS])
    return np.array(perm), sign


_PERM, _SIGN = _mirror_index()


def mirror_pose(angles: np.ndarray) -> np.ndarray:
    """(B, 34) radians -> the left/right mirror image pose (B, 34): the body reflected through
    its sagittal plane (x -> -x). mirror_pose(mirror_pose(a)) == a."""
    a = np.asarray(angles)
    return a[..., _PERM] * _SIGN


def clip_to_limits(angles: np.ndarray) -> np.ndarray:
    lo = np.array([POSE_LIMITS[k][0] for k in POSE_DOFS])
    hi = np.array([POSE_LIMITS[k][1] for k in POSE_DOFS])
    return np.clip(angles, lo, hi)


def save_table(path: Path, results, source_note: str = "") -> dict:
    """Retargeted clips (`retarget.Retargeted`) -> the npz table; returns frame counts per source."""
    angles, height, clip_index, frame = [], [], [], []
    for i, r in enumerate(results):
        angles.append(r.angles)
        height.append(r.root_height)
        clip_index.append(np.full(len(r.angles), i, np.int16))
        frame.append(np.arange(len(r.angles), dtype=np.int32) * r.clip.frame_step)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.clip.source] = counts.get(r.clip.source, 0) + len(r.angles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        version=np.int32(TABLE_VERSION),
        angles=clip_to_limits(np.concatenate(angles)).astype(np.float16),
        root_height=np.concatenate(height).astype(np.float16),
        clip_index=np.concatenate(clip_index),
        frame=np.concatenate(frame),
        clip_ids=np.array([r.clip.clip_id for r in results]),
        clip_sources=np.array([r.clip.source for r in results]),
        clip_descriptions=np.array([r.clip.description for r in results]),
        clip_fps=np.array([r.clip.fps for r in results]),
        dof_names=np.array(POSE_DOFS),
        note=np.array(source_note),
    )
    return counts


def load_table(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        t = {k: f[k] for k in f.files}
    if list(t["dof_names"]) != list(POSE_DOFS):
        raise ValueError(f"{path}: its joint angles are not simulator.joints.POSE_DOFS; rebuild it with "
                         "`python scripts/build_pose_prior.py retarget`")
    t["angles"] = clip_to_limits(t["angles"].astype(np.float64))
    return t
