"""samples.png: decoded pose-prior samples rendered with the simulator (offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.joints import POSE_DOFS


def render_poses(poses: np.ndarray, size: int = 256, azimuth_deg: float = 30.0, distance: float = 3.2):
    """(N, 34) radians -> list of PIL images (upright camera, front-left view, default body)."""
    from PIL import Image

    from simulator.params import SceneParams
    from simulator.renderer import render_batch

    base = SceneParams().with_values({
        "camera.width": size, "camera.height": size, "camera.azimuth": np.radians(azimuth_deg),
        "camera.elevation": np.radians(10.0), "camera.distance": distance,
    })
    params = [base.replace(pose=dict(zip(POSE_DOFS, map(float, p)))) for p in poses]
    return [Image.fromarray(s.rgb) for s in render_batch(params)]


def render_samples(prior_path: Path, out: Path, seed: int = 0, n: int = 16) -> Path:
    """Render n samples z ~ N(0, I) of the prior at `prior_path` as a 4-column sheet."""
    from simulator.overlay import contact_sheet
    from simulator.prior import load_pose_prior

    prior = load_pose_prior(prior_path)
    poses = prior.sample(np.random.default_rng(seed), n)
    contact_sheet(render_poses(poses), columns=4).save(out)
    return out


def render_tilted_samples(prior_path: Path, out: Path, seed: int = 0) -> Path:
    """4 lying (60-120 degrees from upright) and 4 inverted (> 120) poses among samples
    z ~ U[-2.5, 2.5]^L, the first found of each, as a 4-column sheet."""
    from simulator.overlay import contact_sheet
    from simulator.prior import load_pose_prior, up_from_tilt

    prior = load_pose_prior(prior_path)
    poses = prior.decode(np.random.default_rng(seed).uniform(-2.5, 2.5, (4000, prior.latent_dim)))
    up = up_from_tilt(poses[:, POSE_DOFS.index("root_pitch")], poses[:, POSE_DOFS.index("root_roll")])
    tilt = np.degrees(np.arccos(np.clip(up[:, 2], -1, 1)))
    pick = np.r_[np.flatnonzero((tilt > 60) & (tilt <= 120))[:4], np.flatnonzero(tilt > 120)[:4]]
    contact_sheet(render_poses(poses[pick], distance=2.8), columns=4).save(out)
    return out


# (tilt, direction) degrees per row pair of the posture sheet, with the words for the card.
POSTURE_SHEET = ((0, 0, "upright"), (90, 0, "lying on the back"), (90, 180, "face down"),
                 (90, 90, "on its right side"), (150, 0, "inverted, tipped backward"), (180, 0, "upside down"),
                 (150, 90, "inverted, tipped to its right"), (130, 180, "inverted, tipped forward"))


def render_posture_samples(prior_path: Path, out: Path, seed: int = 0, per: int = 4) -> Path:
    """`per` samples z ~ N(0, I) (clipped at 2.5) of the posture prior at each posture of
    POSTURE_SHEET, two postures per row of 8."""
    from simulator.overlay import contact_sheet
    from simulator.prior import load_posture_prior, posture_up

    prior = load_posture_prior(prior_path)
    rng = np.random.default_rng(seed)
    poses = []
    for tilt, direction, _ in POSTURE_SHEET:
        z = np.clip(rng.standard_normal((per, prior.latent_dim)), -2.5, 2.5)
        poses.append(prior.decode(z, posture_up(np.full(per, float(tilt)), np.full(per, float(direction)))))
    contact_sheet(render_poses(np.concatenate(poses), size=192, distance=3.0), columns=2 * per).save(out)
    return out
