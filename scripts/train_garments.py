"""Simulate draping data and train the garment predictors shipped in assets/garments/.

    python scripts/train_garments.py [--seed 0] [--garments t-shirt,shirt,...] [--out DIR] [--quick]

Per-type settings (the skirt's larger number of random simulations) are in
`TrainConfig.per_garment`; `--garments X` retrains X with the same seeds as a full run and
keeps the other types' numbers in metrics.json.

Writes <garment>.npz weights and metrics.json (the numbers in assets/garments/MODEL_CARD.md).
Simulations are cached under $POSEEXAMINER_HOME/garment_sims. CPU only, single thread.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from simulator.garments.spec import GARMENTS
    import torch

    from simulator.garments.training.train import TrainConfig, train_all

    torch.set_num_threads(1)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--garments", default=",".join(GARMENTS))
    ap.add_argument("--out", default=None, help="output folder (default: assets/garments)")
    ap.add_argument("--data", default=None, help="simulation cache folder")
    ap.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    ap.add_argument("--evaluate-only", action="store_true", help="re-measure saved weights on cached simulations")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = TrainConfig(seed=args.seed, garments=tuple(g.strip() for g in args.garments.split(",") if g.strip()))
    if args.quick:
        import dataclasses

        cfg = dataclasses.replace(cfg, n_pivots=2, poses_per_pivot=3, n_random=3, n_test=3, lf_steps=100, hf_steps=50,
                                  per_garment=())
    t0 = time.process_time()
    last = [0.0]

    def progress(name: str, k: int, n: int) -> None:
        if k == n or time.process_time() - last[0] > 20:
            last[0] = time.process_time()
            print(f"{name}: simulated {k}/{n}", file=sys.stderr, flush=True)

    if args.evaluate_only:
        from simulator.garments.training.train import evaluate_saved

        metrics = evaluate_saved(cfg, out_dir=args.out, data_dir=args.data)
    else:
        metrics = train_all(cfg, out_dir=args.out, data_dir=args.data, progress=progress)
    metrics["cpu_seconds_total"] = time.process_time() - t0
    from pathlib import Path

    from simulator.garments.dress import WEIGHTS_DIR
    from simulator.garments.training.train import model_card

    if all("garment_seconds_batch1" in m for m in metrics["garments"].values()):
        (Path(args.out or WEIGHTS_DIR) / "MODEL_CARD.md").write_text(model_card(metrics))
    print(json.dumps({k: {m: v.get(m) for m in ("test", "speedup_batch1", "speedup_batch32", "sim_seconds_per_drape")}
                      for k, v in metrics["garments"].items()}, indent=1))
    print(f"total CPU seconds: {metrics['cpu_seconds_total']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
