"""Build the pose prior shipped in assets/pose_prior/ from the motion capture in shared/mocap.

    python scripts/build_pose_prior.py retarget [--mocap DIR] [--out DIR]
    python scripts/build_pose_prior.py train    [--seed 0] [--out DIR]
    python scripts/build_pose_prior.py samples  [--out DIR]
    python scripts/build_pose_prior.py train-posture [--seed 0] [--out DIR]
    python scripts/build_pose_prior.py all

retarget: every mocap frame (CMU at 30 fps) -> the 34 anatomical angles (mocap_poses.npz) and
the retargeting errors (retarget_errors.json). train: the VAE on that table (prior.npz,
train_metrics.json). samples: samples.png (z ~ N(0, I)) and samples_tilted.png (lying and
inverted samples among z ~ U[-2.5, 2.5]^L), decoded prior samples rendered with the simulator.
train-posture: the posture-conditioned prior (prior_posture.npz, train_metrics_posture.json,
samples_posture.png), which the search's `posture` group decodes with.
The mocap folder defaults to <repo>/../shared/mocap; it is read only (CMU is extracted to a
temporary folder). CPU only, single thread, seeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MOCAP = REPO.parent / "shared" / "mocap"
DEFAULT_OUT = REPO / "assets" / "pose_prior"
# Clips whose retargeting errors the data card reports by name.
REPORT_CLIPS = (
    "deepmimic_walk", "deepmimic_run", "deepmimic_cartwheel", "deepmimic_crawl", "deepmimic_backflip",
    "deepmimic_getup_facedown", "cmu_01_02", "cmu_02_01", "cmu_02_03", "cmu_03_01",
)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def retarget(mocap: Path, out: Path) -> dict:
    import numpy as np
    import torch

    from simulator.prior.mocap import load_all
    from simulator.prior.retarget import retarget_clips, retarget_errors
    from simulator.prior.skeleton import AnnySkeleton
    from simulator.prior.table import save_table

    if not (mocap / "cmu.tar.xz").is_file() or not (mocap / "deepmimic").is_dir():
        raise SystemExit(f"error: no motion capture in {mocap} (cmu.tar.xz, deepmimic/); pass --mocap DIR")
    torch.set_num_threads(1)
    t0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="pose_prior_") as tmp:
        clips = load_all(mocap, Path(tmp))
    _log(f"{len(clips)} clips, {sum(c.n_frames for c in clips)} frames")
    skeleton = AnnySkeleton()
    from simulator.prior.retarget import STATS

    results = retarget_clips(skeleton, clips, progress=lambda k, n: _log(f"retarget window {k}/{n} ({STATS})"))
    counts = save_table(out / "mocap_poses.npz", results, source_note=f"built by scripts/build_pose_prior.py retarget from {mocap.name}")
    errors: dict = {"per_clip": {}, "all": {}}
    pooled: dict[str, list] = {}
    for r in results:
        e = retarget_errors(skeleton, r)
        for k, v in e.items():
            pooled.setdefault(k, []).append(v)
        speed = np.linalg.norm(np.diff(r.clip.positions["root"][:, :2], axis=0), axis=1).mean() * r.clip.fps if r.clip.n_frames > 1 else 0.0
        errors["per_clip"][r.clip.clip_id] = {
            "frames": int(r.clip.n_frames), "root_speed_m_s": round(float(speed), 2),
            **{k: round(float(np.median(v)), 1) for k, v in e.items()},
        }
    for k, v in pooled.items():
        v = np.concatenate(v)
        errors["all"][k] = {"median": round(float(np.median(v)), 1), "p90": round(float(np.percentile(v, 90)), 1)}
    errors["frames_per_source"] = counts
    errors["cpu_seconds"] = round(time.process_time() - t0, 1)
    errors["restarts"] = dict(STATS)
    (out / "retarget_errors.json").write_text(json.dumps(errors, indent=1) + "\n")
    _log(f"retargeted in {errors['cpu_seconds']} CPU s; frames per source {counts}")
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("retarget", "train", "samples", "train-posture", "all"))
    ap.add_argument("--mocap", type=Path, default=DEFAULT_MOCAP, help="motion capture folder (default: <repo>/../shared/mocap)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: assets/pose_prior)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.command in ("retarget", "all"):
        retarget(args.mocap, args.out)
    if args.command in ("train", "all"):
        from simulator.prior.train import train_and_save

        train_and_save(args.out / "mocap_poses.npz", args.out, seed=args.seed, log=_log)
    if args.command in ("samples", "all"):
        from simulator.prior.sheet import render_samples, render_tilted_samples

        render_samples(args.out / "prior.npz", args.out / "samples.png", seed=args.seed)
        render_tilted_samples(args.out / "prior.npz", args.out / "samples_tilted.png", seed=args.seed)
    if args.command in ("train-posture", "all"):
        from simulator.prior.sheet import render_posture_samples
        from simulator.prior.train import train_posture_and_save

        train_posture_and_save(args.out / "mocap_poses.npz", args.out, seed=args.seed, log=_log)
        render_posture_samples(args.out / "prior_posture.npz", args.out / "samples_posture.png", seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
