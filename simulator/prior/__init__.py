"""A pose prior learned from motion capture: runtime decoder (numpy only, no torch).

    >>> prior = load_pose_prior()            # assets/pose_prior/prior.npz, cached per process
    >>> z = np.random.default_rng(0).standard_normal((4, prior.latent_dim))
    >>> poses = prior.decode(z)              # (4, 34) radians, simulator.joints.POSE_DOFS order

A VAE (VPoser-like) trained by `scripts/build_pose_prior.py` on the retargeted mocap table
`assets/pose_prior/mocap_poses.npz`; see assets/pose_prior/MODEL_CARD.md for what it was trained on
and how well it reconstructs held-out motion. The pose vector the network sees is the 31 non-root
angles (standardised) and the world up direction in the body frame (3, unit), so lying and
upside-down bodies are continuous; root_yaw (heading) is not modelled and decodes to 0.

A second prior, conditioned on posture (`load_posture_prior`, assets/pose_prior/prior_posture.npz),
decodes a latent *and a given up direction* to the 31 body angles: the search's `posture` group
(tilt from upright and its direction) then reaches lying and inverted bodies, which are 1.4% and
0.14% of the unconditional prior's samples, with the articulations people have in those postures
in the mocap (crawling, getting up, cartwheels, flips).

    >>> post = load_posture_prior()
    >>> up = posture_up(np.array([180.0]), np.array([0.0]))   # upside down
    >>> poses = post.decode(z[:1], up)
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from simulator.errors import AssetError
from simulator.joints import POSE_DOFS, POSE_LIMITS

PRIOR_VERSION = 1
DEFAULT_PRIOR = Path(__file__).resolve().parents[2] / "assets" / "pose_prior" / "prior.npz"
DEFAULT_POSTURE_PRIOR = DEFAULT_PRIOR.with_name("prior_posture.npz")
ROOT_DOFS = ("root_yaw", "root_pitch", "root_roll")
BODY_DOFS = tuple(n for n in POSE_DOFS if n not in ROOT_DOFS)  # the 31 angles the network models
_BODY_IDX = np.array([POSE_DOFS.index(n) for n in BODY_DOFS])
_LO = np.array([POSE_LIMITS[n][0] for n in POSE_DOFS])
_HI = np.array([POSE_LIMITS[n][1] for n in POSE_DOFS])


def tilt_from_up(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) world up seen in the body frame -> (root_pitch, root_roll) radians,
    pitch in [-pi, pi], roll in [-pi/2, pi/2], for the root Rz(yaw) Rx(pitch) Ry(roll) with yaw 0.

    World up in the body frame is u = (-cos p sin r, sin p, cos p cos r); cos(pitch) takes the
    sign of u_z so that roll stays within +-90 degrees."""
    u = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    c = np.hypot(u[..., 0], u[..., 2]) * np.where(u[..., 2] < 0, -1.0, 1.0)
    pitch = np.arctan2(u[..., 1], c)
    safe = np.where(np.abs(c) < 1e-9, 1e-9, c)
    roll = np.arctan2(-u[..., 0] / safe, u[..., 2] / safe)
    return pitch, roll


def up_from_tilt(pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Inverse of `tilt_from_up`: (...,) radians -> (..., 3) unit world up in the body frame."""
    cp = np.cos(pitch)
    return np.stack([-cp * np.sin(roll), np.sin(pitch), cp * np.cos(roll)], -1)


def posture_up(tilt_deg: np.ndarray, direction_deg: np.ndarray) -> np.ndarray:
    """(...,) degrees -> (..., 3) unit world up in the body frame (+Z up, facing -Y, left +X).

    tilt: the body's angle from upright (0 standing, 90 lying, 180 upside down). direction:
    which way it tips: 0 backward (lying on the back: its front faces the sky), 90 to its
    right (its left side up), 180 forward (face down), -90 to its left."""
    t, d = np.radians(np.asarray(tilt_deg, dtype=np.float64)), np.radians(np.asarray(direction_deg, dtype=np.float64))
    return np.stack([np.sin(t) * np.sin(d), -np.sin(t) * np.cos(d), np.cos(t)], -1)


def posture_from_up(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `posture_up`: (..., 3) -> (tilt, direction) degrees; direction 0 when upright
    or upside down exactly (it is undefined there)."""
    u = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    tilt = np.degrees(np.arccos(np.clip(u[..., 2], -1.0, 1.0)))
    flat = np.hypot(u[..., 0], u[..., 1]) < 1e-9
    direction = np.where(flat, 0.0, np.degrees(np.arctan2(u[..., 0], -u[..., 1])))
    return tilt, direction


def features_from_angles(angles: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(B, 34) radians -> (B, 34) network features: 31 standardised angles, then up (3)."""
    a = np.atleast_2d(np.asarray(angles, dtype=np.float64))
    up = up_from_tilt(a[:, POSE_DOFS.index("root_pitch")], a[:, POSE_DOFS.index("root_roll")])
    return np.concatenate([(a[:, _BODY_IDX] - mean) / std, up], 1)


def angles_from_features(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(B, 34) network features -> (B, 34) radians in POSE_DOFS order, root_yaw 0, clipped to POSE_LIMITS."""
    out = np.zeros((len(x), len(POSE_DOFS)))
    out[:, _BODY_IDX] = x[:, : len(BODY_DOFS)] * std + mean
    pitch, roll = tilt_from_up(x[:, len(BODY_DOFS):])
    out[:, POSE_DOFS.index("root_pitch")] = pitch
    out[:, POSE_DOFS.index("root_roll")] = roll
    return np.clip(out, _LO, _HI)


def _mlp(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], slope: float) -> np.ndarray:
    # einsum without BLAS: every row is computed the same way whatever the batch size and
    # thread count (a BLAS matmul changes the last bits with both), so a scene decodes to
    # the same pose alone, in a batch, in a worker process or in the main one.
    for i, (W, b) in enumerate(layers):
        x = np.einsum("bi,ij->bj", x, W, optimize=False) + b
        if i < len(layers) - 1:
            x = np.maximum(x, slope * x)  # leaky ReLU (slope < 1)
    return x


class PosePrior:
    """Decoder and encoder of the pose VAE. Arrays: z (B, latent_dim) in standard-normal units;
    angles (B, 34) float64 radians in `simulator.joints.POSE_DOFS` order."""

    def __init__(self, weights: dict[str, np.ndarray], path: Path | None = None) -> None:
        self.path = path
        self.latent_dim = int(weights["latent_dim"])
        self.slope = float(weights["leaky_slope"])
        self.mean = weights["angle_mean"].astype(np.float64)
        self.std = weights["angle_std"].astype(np.float64)

        def layers(prefix: str) -> list[tuple[np.ndarray, np.ndarray]]:
            n = int(weights[f"{prefix}_layers"])
            # float32 like the training: half the time of float64 for the same result to ~1e-6 rad
            return [(weights[f"{prefix}_W{i}"].astype(np.float32), weights[f"{prefix}_b{i}"].astype(np.float32)) for i in range(n)]

        self._enc = layers("enc")
        self._dec = layers("dec")
        # "up": the decoder takes (z, world up in the body frame) and returns the 31 body
        # features; the up direction is given, not decoded (the posture prior).
        self.condition = str(weights["condition"]) if "condition" in weights else ""

    def decode(self, z: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
        """(B, L) standard-normal latents -> (B, 34) radians, root_yaw 0, inside POSE_LIMITS.
        A posture prior needs `up` (B, 3): the world up direction in the body frame
        (`posture_up`), which sets root_pitch and root_roll exactly."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"latent vectors have {z.shape[1]} values; this prior's latent size is {self.latent_dim}")
        if self.condition == "up":
            if up is None:
                raise ValueError("this prior is conditioned on posture: pass up (B, 3), e.g. posture_up(tilt, direction)")
            up = np.broadcast_to(np.asarray(up, dtype=np.float64), (len(z), 3))
            up = up / np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-12)
            body = _mlp(np.concatenate([z, up], 1).astype(np.float32), self._dec, self.slope).astype(np.float64)
            return angles_from_features(np.concatenate([body, up], 1), self.mean, self.std)
        if up is not None:
            raise ValueError("this prior is not conditioned on posture; up must be None")
        return angles_from_features(_mlp(z.astype(np.float32), self._dec, self.slope).astype(np.float64), self.mean, self.std)

    def encode(self, angles: np.ndarray) -> np.ndarray:
        """(B, 34) radians -> (B, L) posterior means (root_yaw is ignored)."""
        x = features_from_angles(angles, self.mean, self.std).astype(np.float32)
        return _mlp(x, self._enc, self.slope)[:, : self.latent_dim].astype(np.float64)

    def sample(self, rng: np.random.Generator, n: int, up: np.ndarray | None = None) -> np.ndarray:
        """n poses (n, 34) decoded from z ~ N(0, I) drawn from `rng` (a posture prior: at `up`)."""
        return self.decode(rng.standard_normal((n, self.latent_dim)), up)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> PosePrior:
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"pose prior weights not found: {p}; rebuild them with `python scripts/build_pose_prior.py all`")
    with np.load(p, allow_pickle=False) as f:
        weights = {k: f[k] for k in f.files}
    if int(weights.get("version", -1)) != PRIOR_VERSION or list(weights["dof_names"]) != list(POSE_DOFS):
        raise AssetError(f"{p} was built for another pose layout; rebuild it with `python scripts/build_pose_prior.py train`")
    return PosePrior(weights, p)


def load_pose_prior(path: str | Path | None = None) -> PosePrior:
    """The pose prior at `path` (default assets/pose_prior/prior.npz), loaded once per process."""
    return _load(str(Path(path) if path is not None else DEFAULT_PRIOR))


def load_posture_prior(path: str | Path | None = None) -> PosePrior:
    """The posture-conditioned prior (default assets/pose_prior/prior_posture.npz), loaded once per process."""
    prior = _load(str(Path(path) if path is not None else DEFAULT_POSTURE_PRIOR))
    if prior.condition != "up":
        raise AssetError(f"{prior.path} is not a posture-conditioned prior; rebuild it with "
                         "`python scripts/build_pose_prior.py train-posture`")
    return prior


def decode_timing(prior: PosePrior, batch: int, repeats: int = 200) -> float:
    """Microseconds per decoded pose at a batch size (for the model card)."""
    z = np.zeros((batch, prior.latent_dim))
    prior.decode(z)
    t = time.perf_counter()
    for _ in range(repeats):
        prior.decode(z)
    return (time.perf_counter() - t) / (repeats * batch) * 1e6
