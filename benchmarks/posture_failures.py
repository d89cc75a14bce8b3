"""A model's failure rate by body posture, on real motion-capture poses (issue 15).

The default space searches the pose prior's latent, in which lying and inverted bodies are
rare (1.4% and 0.14% of prior samples, assets/pose_prior/MODEL_CARD.md), so a search of a
few thousand scenes cannot tell whether a model fails on them. This script asks directly:
mocap frames of each posture class (tilt of the body from upright: < 30 degrees, 60-120,
> 120; assets/pose_prior/mocap_poses.npz) are encoded into the prior's latent and rendered
in scenes whose other dimensions are uniform in the space (truncation off, so that
posture is the factor), and scored as a search scores them (the target's failure metric
against the threshold; a missed person fails).

    python benchmarks/posture_failures.py --model mediapipe --n 80 [--space pose,shape,camera]
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def posture_classes(angles: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of the mocap frames per posture class, by the body's tilt from upright."""
    from simulator.prior import POSE_DOFS, up_from_tilt

    p, r = angles[:, POSE_DOFS.index("root_pitch")], angles[:, POSE_DOFS.index("root_roll")]
    tilt = np.degrees(np.arccos(np.clip(up_from_tilt(p, r)[:, 2], -1.0, 1.0)))
    return {"upright (< 30 degrees)": tilt < 30, "lying (60-120 degrees)": (tilt > 60) & (tilt < 120),
            "inverted (> 120 degrees)": tilt > 120}


def main(argv: list[str] | None = None) -> int:
    from examiner.search import build_evaluator
    from simulator.params import ParamSpace, latent_to_u
    from simulator.prior import DEFAULT_PRIOR, load_pose_prior

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mediapipe")
    ap.add_argument("--n", type=int, default=80, help="scenes per posture class")
    ap.add_argument("--space", default="pose,shape,camera")
    ap.add_argument("--threshold", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    table = np.load(DEFAULT_PRIOR.parent / "mocap_poses.npz")
    angles = table["angles"].astype(np.float64)
    space = ParamSpace.from_groups(a.space)
    if not len(space.latent_index):
        raise SystemExit(f"--space {a.space!r} has no pose prior latent (add the 'pose' group)")
    ev = build_evaluator(a.model, space, threshold=a.threshold, seed=a.seed)
    prior = load_pose_prior()
    rng = np.random.default_rng(a.seed)
    print(f"{a.model}, space {a.space}, threshold {a.threshold:g}, seed {a.seed}")
    print("| posture | mocap frames | scenes usable | failing | 95% interval | missed | median |")
    print("|---|---|---|---|---|---|---|")
    from examiner.search.boxes import wilson_interval

    for name, mask in posture_classes(angles).items():
        idx = rng.choice(np.flatnonzero(mask), min(a.n, int(mask.sum())), replace=False)
        U = space.sample(rng, len(idx))
        if "camera.truncation" in space.names:
            U[:, space.names.index("camera.truncation")] = -1.0
        li = space.latent_index
        U[:, li] = np.clip(latent_to_u(prior.encode(angles[idx])), -1.0, 1.0)
        outs = ev.evaluate(U)
        use = np.array([o.plausible and not o.model_error for o in outs])
        missed = np.array([bool(o.missed) for o in outs])
        vals = np.array([o.error for o in outs], dtype=float)
        fail = missed | (np.nan_to_num(vals, nan=np.inf) > a.threshold)
        k, n = int(fail[use].sum()), int(use.sum())
        lo, hi = wilson_interval(k, n)
        med = float(np.nanmedian(vals[use & ~missed])) if (use & ~missed).any() else float("nan")
        print(f"| {name} | {int(mask.sum())} | {n} | {k / max(n, 1):.0%} | {lo:.0%}-{hi:.0%} | {int(missed[use].sum())} "
              f"| {med:.0f} |", flush=True)
    print(json.dumps({"model": a.model, "space": a.space, "n": a.n, "seed": a.seed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
