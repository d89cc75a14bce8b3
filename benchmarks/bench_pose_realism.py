"""How human are sampled poses? Distance to the nearest held-out mocap frame.

For each set of ~500 poses, the distance to its nearest neighbour among the HELD-OUT mocap
frames (clips the prior never saw, with their mirror images), as the mean per-joint position
error (mm) over the body model's 22 joints (`simulator.body.JOINT_NAMES`, anny, default shape,
batch forward) after aligning the root: root_yaw / root_pitch / root_roll set to 0 (the root
orientation removed) and the pelvis at the origin (translation). Sets:
    (a) prior, z ~ N(0, I)
    (b) prior, z ~ U[-2.5, 2.5]^L (a linear map of the search box; the search maps u through
        the normal inverse CDF, so it draws (a) truncated at 2.5 sigma)
    (c) today's sampling: each of the 34 angles independently uniform within POSE_LIMITS
        (the old root bounds pitch -30..60, roll -30..30 degrees; irrelevant after alignment)
    (d) held-out frames -> nearest TRAINING frame (with mirrors): the floor of (a)-(c)

    .venv/bin/python benchmarks/bench_pose_realism.py [--n 500] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def body_joints(poses: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, 34) radians -> (N, 22, 3) metres, anny default shape, root orientation removed."""
    from simulator.body import get_body_model
    from simulator.joints import POSE_DOFS
    from simulator.params import ALL_SHAPE_NAMES

    body = get_body_model("anny")
    p = np.array(poses, dtype=np.float64)
    for k in ("root_yaw", "root_pitch", "root_roll"):
        p[:, POSE_DOFS.index(k)] = 0.0
    shape = np.full((1, len(ALL_SHAPE_NAMES)), 0.5)
    return np.concatenate([body.forward(p[i:i + batch], shape).joints for i in range(0, len(p), batch)])


def nearest_mpjpe(query: np.ndarray, reference: np.ndarray, chunk: int = 64) -> np.ndarray:
    """(Q, J, 3), (R, J, 3) -> (Q,) mm: min over the reference of the mean per-joint distance."""
    out = np.empty(len(query))
    ref = reference.astype(np.float32)
    for i in range(0, len(query), chunk):
        q = query[i:i + chunk, None].astype(np.float32)
        d = np.linalg.norm(q - ref[None], axis=-1).mean(-1)
        out[i:i + chunk] = d.min(1) * 1000
    return out


def bench(n: int = 500, seed: int = 0, prior_path=None, table_path=None) -> dict:
    from simulator.joints import POSE_DOFS, POSE_LIMITS
    from simulator.prior import DEFAULT_PRIOR, load_pose_prior
    from simulator.prior.table import load_table, mirror_pose
    from simulator.prior.train import split_clips

    t0 = time.perf_counter()
    prior = load_pose_prior(prior_path)
    table = load_table(table_path or DEFAULT_PRIOR.with_name("mocap_poses.npz"))
    # The held-out clips of training (same seed as `scripts/build_pose_prior.py train`).
    held = split_clips(table, 0)[table["clip_index"]]
    test, train = table["angles"][held], table["angles"][~held]
    rng = np.random.default_rng(seed)
    lo = np.array([POSE_LIMITS[k][0] for k in POSE_DOFS])
    hi = np.array([POSE_LIMITS[k][1] for k in POSE_DOFS])
    old = {"root_pitch": (-30, 60), "root_roll": (-30, 30)}
    for k, (a, b) in old.items():
        lo[POSE_DOFS.index(k)], hi[POSE_DOFS.index(k)] = np.radians(a), np.radians(b)
    q_test = test[rng.choice(len(test), min(n, len(test)), replace=False)]
    sets = {
        "(a) prior z~N(0,I)": prior.decode(rng.standard_normal((n, prior.latent_dim))),
        "(b) prior z~U[-2.5,2.5]": prior.decode(rng.uniform(-2.5, 2.5, (n, prior.latent_dim))),
        "(c) uniform independent angles": rng.uniform(lo, hi, (n, len(POSE_DOFS))),
    }
    ref_test = body_joints(np.concatenate([test, mirror_pose(test)]))
    rows = {}
    for name, poses in sets.items():
        d = nearest_mpjpe(body_joints(poses), ref_test)
        rows[name] = d
    ref_train = body_joints(np.concatenate([train, mirror_pose(train)]))
    rows["(d) held-out -> training (floor)"] = nearest_mpjpe(body_joints(q_test), ref_train)
    result = {
        "n": n, "seed": seed, "latent_dim": prior.latent_dim,
        "held_out_frames": int(len(test)), "training_frames": int(len(train)),
        "rows": {k: {"median_mm": round(float(np.median(v)), 1), "p90_mm": round(float(np.percentile(v, 90)), 1)} for k, v in rows.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = bench(args.n, args.seed)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"nearest held-out mocap frame, mean per-joint error after root alignment (mm); n={r['n']}, "
          f"L={r['latent_dim']}, {r['held_out_frames']} held-out frames (+ mirrors)")
    print(f"{'set':40s} {'median':>8s} {'p90':>8s}")
    for k, v in r["rows"].items():
        print(f"{k:40s} {v['median_mm']:8.1f} {v['p90_mm']:8.1f}")
    print(f"({r['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
