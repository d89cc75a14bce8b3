"""Per-evaluation overhead of examining a model (not a timed test).

Overhead = everything but the model's own inference: rendering, packing and transferring
the batch (to a worker process and back), metrics. Reported as a share of wall time, at
256x256, in steady state (render pool, model and worker warmed up first), for:

- in-process: the bundled baseline if its weights exist, else a stand-in CNN of similar
  size run in-process with torch (said so in the output);
- mediapipe: MediaPipe BlazePose full through its worker (skipped if not installed).

Each model runs twice: rendering in this process before every batch ("sequential"), and
with one render process prefetching the next batch while the model runs ("pipelined",
what `examiner evaluate --render-workers 1` does).

    .venv/bin/python benchmarks/bench_targets.py [--n 96] [--batch 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _stand_in_model():
    import torch

    from examiner.targets import Prediction, TargetModel

    class StandInCNN(TargetModel):
        """~1 M-parameter conv net on 256x256 crops: a stand-in for the baseline's cost."""

        name = "stand-in-cnn"
        convention = "coco17"
        outputs = frozenset({"joints2d", "joints3d"})
        max_batch = 16

        def __init__(self):
            torch.manual_seed(0)
            chans = [3, 32, 64, 128, 192, 256]
            layers = []
            for a, b in zip(chans, chans[1:]):
                layers += [torch.nn.Conv2d(a, b, 3, stride=2, padding=1), torch.nn.ReLU()]
            self.net = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                           torch.nn.Linear(256, 17 * 5)).eval()

        def predict(self, batch):
            x = torch.from_numpy(batch.images).permute(0, 3, 1, 2).float() / 255.0
            with torch.inference_mode():
                y = self.net(x).numpy().reshape(-1, 17, 5).astype(np.float64)
            w = batch.boxes[:, None, 2:] - batch.boxes[:, None, :2]
            j2 = batch.boxes[:, None, :2] + (0.5 + 0.1 * np.tanh(y[..., :2])) * w
            return Prediction("coco17", joints3d=0.5 * np.tanh(y[..., 2:]), joints2d=j2)

    return StandInCNN()


def _scenes(n: int, seed: int):
    from simulator.params import ParamSpace

    space = ParamSpace.from_groups("pose,camera")
    return space, [space.to_params(u) for u in space.sample(np.random.default_rng(seed), n)]


def run(model, render, scenes, batch: int, prefetch: bool) -> dict:
    """Time one pass; returns seconds per stage and the overhead share."""
    from concurrent.futures import ThreadPoolExecutor

    from examiner.scoring import score_batch
    from examiner.targets import TargetBatch, checked_predict

    t = dict(render_wait=0.0, pack=0.0, predict=0.0, inference=0.0, metrics=0.0)
    chunks = [scenes[i:i + batch] for i in range(0, len(scenes), batch)]
    ex = ThreadPoolExecutor(1) if prefetch else None
    t_start = time.perf_counter()
    pending = ex.submit(render, chunks[0]) if ex else None
    for k, chunk in enumerate(chunks):
        t0 = time.perf_counter()
        if ex:
            samples = pending.result()
            if k + 1 < len(chunks):
                pending = ex.submit(render, chunks[k + 1])
        else:
            samples = render(chunk)
        t1 = time.perf_counter()
        tb = TargetBatch.from_samples(samples, with_ground_truth=model.needs_ground_truth)
        t2 = time.perf_counter()
        pred = checked_predict(model, tb)
        t3 = time.perf_counter()
        score_batch(pred, samples)
        t4 = time.perf_counter()
        t["render_wait"] += t1 - t0
        t["pack"] += t2 - t1
        t["predict"] += t3 - t2
        t["inference"] += pred.seconds if pred.inference_seconds is None else pred.inference_seconds
        t["metrics"] += t4 - t3
    wall = time.perf_counter() - t_start
    if ex:
        ex.shutdown()
    n = len(scenes)
    out = {k: round(v / n * 1000, 2) for k, v in t.items()}  # ms per sample
    out["transfer"] = round((t["predict"] - t["inference"]) / n * 1000, 2)
    out["wall"] = round(wall / n * 1000, 2)
    out["overhead_share"] = round(1 - t["inference"] / wall, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args()

    import simulator
    from examiner.targets import load_target
    from examiner.targets.baseline import baseline_available
    from examiner.targets.envs import is_installed
    from simulator.pool import RenderPool

    _, scenes = _scenes(args.n, args.seed)
    _, warm = _scenes(args.batch, args.seed + 1)
    models = []
    if baseline_available():
        models.append(("baseline (in-process)", lambda: load_target("baseline")))
    else:
        models.append(("stand-in CNN (in-process; baseline weights missing)", _stand_in_model))
    if is_installed("mediapipe"):
        models.append(("mediapipe (worker)", lambda: load_target("mediapipe")))
    else:
        print("mediapipe: not installed (examiner targets install mediapipe); skipped")

    results = {}
    simulator.render_batch(warm)  # GL context + body model up before timing
    with RenderPool(workers=1) as pool:
        pool.render_batch(warm)
        for label, make in models:
            model = make()
            try:
                from examiner.targets import TargetBatch, checked_predict

                checked_predict(model, TargetBatch.from_samples(simulator.render_batch(warm[:4]),
                                                                 with_ground_truth=model.needs_ground_truth))
                seq = run(model, simulator.render_batch, scenes, args.batch, prefetch=False)
                pipe = run(model, pool.render_batch, scenes, args.batch, prefetch=True)
            finally:
                model.close()
            results[label] = {"sequential": seq, "pipelined": pipe}
    print(f"{args.n} scenes at 256x256, batch {args.batch}; ms per sample")
    print(f"{'model':52s} {'mode':10s} {'wall':>7s} {'infer':>7s} {'render':>7s} {'transfer':>8s} {'metrics':>7s} {'overhead':>8s}")
    for label, r in results.items():
        for mode, x in r.items():
            print(f"{label:52s} {mode:10s} {x['wall']:7.1f} {x['inference']:7.1f} {x['render_wait']:7.1f} "
                  f"{x['transfer']:8.2f} {x['metrics']:7.2f} {x['overhead_share']:8.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "batch": args.batch, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
