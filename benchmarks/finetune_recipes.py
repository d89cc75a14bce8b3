"""Screening fine-tuning recipes on one saved round (the experiment log of
benchmarks/RESULTS-finetune.md; the goal numbers come from bench_finetune.py).

Inputs (a round-1 run of bench_finetune.py and its sets): ROOT/run (the search run),
ROOT/set (the round's fine-tuning set), ROOT/control_set (the control: as many uniform
scenes). Evaluation scenes are rendered once and cached in ROOT: --eval-per-mode fresh
scenes inside each mode's box and --eval-uniform scenes of the whole space, with seeds
of their own (not the recheck's nor the stress set's), scored exactly as a search
scores them (`examiner.scoring.score_batch`: PA-MPJPE on the common12 limb joints against
the simulator's ground truth; failure above --threshold). Each recipe fine-tunes the
shipped baseline once, seeded, and after every epoch measures failure rate and median
PA-MPJPE per mode and on the uniform scenes, and held-out everyday MPJPE (the report
half). The epoch the trainer's stopping rule keeps is marked.

    PYTHONPATH=. nice -n 10 python benchmarks/finetune_recipes.py --root /tmp/ft_r1 \
        --name lr1e-3 --set set --config '{"lr": 1e-3, "epochs": 10}'

The inputs are regenerated with --prepare (what round 1 of bench_finetune.py / `examiner
loop` does before it fine-tunes: calibrate the threshold on the baseline, search with
MARL, 4 agents, budget 2000, seed 0 on pose,camera,occluder, build the round's set with
seed 1000 and base_share 0.2; the control's uniform set with seed 777):

    PYTHONPATH=. nice -n 10 python benchmarks/finetune_recipes.py --root /tmp/ft_r1 --prepare \
        [--budget 2000 --n 600]
    # a bigger set from the same modes (ROOT/set_1600):
    PYTHONPATH=. nice -n 10 python benchmarks/finetune_recipes.py --root /tmp/ft_r1 --prepare \
        --extra-set 1600
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np


def examples(root: Path, name: str) -> dict[str, np.ndarray]:
    from examiner.training.finetune import load_examples

    cache = root / f".cache_{name}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    data = load_examples(root / name)
    np.savez(cache, **data)
    return data


def eval_scenes(root: Path, per_mode: int, uniform: int) -> dict[str, np.ndarray]:
    """Crops + common12 ground truth of fresh scenes (cached in ROOT)."""
    from examiner.scoring import ground_truth
    from examiner.training import baseline as bl
    from reports.rundata import load_run
    from simulator.pool import RenderPool

    cache = root / f".cache_eval_{per_mode}_{uniform}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    run = load_run(root / "run")
    rng = np.random.default_rng(np.random.SeedSequence([99, 0xE5A1]))
    U, mode = [], []
    for m in run.modes:
        U.append(rng.uniform(np.asarray(m["lo"]), np.asarray(m["hi"]), size=(per_mode, run.space.dim)))
        mode += [int(m["rank"]) - 1] * per_mode
    U.append(run.space.sample(rng, uniform))
    mode += [-1] * uniform
    params = run.space.to_params_batch(np.concatenate(U))
    images, xyz, valid = [], [], []
    with RenderPool(2) as pool:
        for i in range(0, len(params), 64):
            samples = pool.render_batch(params[i:i + 64])
            gt = ground_truth(samples, "common12")
            images += [bl.sample_to_example(s)[0] for s in samples]
            xyz.append(gt.xyz)
            valid.append(gt.valid)
    data = {"images": np.stack(images), "gt12": np.concatenate(xyz), "valid12": np.concatenate(valid),
            "mode": np.asarray(mode, np.int64)}
    np.savez(cache, **data)
    return data


def scores(net, data: dict[str, np.ndarray], threshold: float) -> dict:
    import torch

    from examiner import metrics
    from examiner.conventions import conversion_matrix, get_convention
    from examiner.training import baseline as bl

    net.eval()
    with torch.no_grad():
        p = np.concatenate([net(bl._normalise(data["images"][i:i + 128]))[0].numpy()
                            for i in range(0, len(data["images"]), 128)])
    js = get_convention("common12")
    W, pvalid = conversion_matrix("h36m17", js)
    j3 = np.einsum("ds,bsc->bdc", W, p.astype(np.float64))
    mask = data["valid12"] & pvalid[None, :]
    root_w = js.root_weights()
    p_rr, g_rr = metrics.root_relative(j3, root_w), metrics.root_relative(data["gt12"], root_w)
    e = metrics.pa_mpjpe(p_rr, np.where(np.isfinite(g_rr), g_rr, 0.0), mask) * 1000
    out = {}
    for m in np.unique(data["mode"]):
        s = data["mode"] == m
        out["all" if m < 0 else f"mode{m}"] = {"n": int(s.sum()), "rate": float((e[s] > threshold).mean()),
                                              "median": float(np.median(e[s]))}
    return out


def prepare(root: Path, budget: int, n: int, seed: int, workers: int, extra: int | None) -> None:
    """ROOT/run, ROOT/set, ROOT/control_set as round 1 of `examiner loop` builds them (and
    ROOT/set_EXTRA: EXTRA scenes from the same modes, same seed and base share)."""
    from examiner.app.finetune import build_set, build_uniform_set
    from examiner.app.loop import _calibrate, _search

    root.mkdir(parents=True, exist_ok=True)
    space = "pose,camera,occluder"
    cfg_kw = {"strategy": "marl", "budget": budget, "agents": 4, "seed": seed, "workers": workers,
              "metric": "pa_mpjpe"}
    meta = root / "prepare.json"
    info = json.loads(meta.read_text()) if meta.is_file() else {}
    if "threshold" not in info:
        info["threshold"], _ = _calibrate("baseline", space, cfg_kw)
        meta.write_text(json.dumps(info))
    if "examine" not in info:
        t = time.perf_counter()
        info["examine"] = _search("baseline", space, cfg_kw, info["threshold"], root / "run", True)
        info["examine_wall_s"] = round(time.perf_counter() - t, 1)
        meta.write_text(json.dumps(info, indent=1))
    print(f"run: {len(info['examine']['modes'])} mode(s), threshold {info['threshold']:.1f}", flush=True)
    build_set(root / "run", root / "set", n, seed + 1000, 0.2, workers)
    build_uniform_set(root / "run", root / "control_set", n, seed + 777, workers)
    if extra:
        build_set(root / "run", root / f"set_{extra}", extra, seed + 1000, 0.2, workers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/ft_r1")
    ap.add_argument("--name", default=None, help="the recipe's name (required unless --prepare)")
    ap.add_argument("--prepare", action="store_true", help="regenerate the inputs in ROOT and stop")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--extra-set", type=int, default=None, help="with --prepare: also ROOT/set_N, N scenes")
    ap.add_argument("--set", default="set", help="set (the round's) or control_set")
    ap.add_argument("--config", default="{}", help="FinetuneConfig overrides as JSON")
    ap.add_argument("--threshold", type=float, default=90.0)
    ap.add_argument("--eval-per-mode", type=int, default=150)
    ap.add_argument("--eval-uniform", type=int, default=300)
    args = ap.parse_args()
    if args.prepare:
        prepare(Path(args.root), args.budget, args.n, args.seed, args.workers, args.extra_set)
        return
    if not args.name:
        ap.error("--name is required")
    from examiner.training import baseline as bl
    from examiner.training.finetune import FinetuneConfig, everyday_splits, finetune, load_network

    root = Path(args.root)
    cfg = FinetuneConfig(**json.loads(args.config)).check()
    train = examples(root, args.set)
    ev = eval_scenes(root, args.eval_per_mode, args.eval_uniform)
    ev_modes = {k: v[ev["mode"] >= 0] for k, v in ev.items()}
    ev_uni = {k: v[ev["mode"] < 0] for k, v in ev.items()}
    pool, stop, report = everyday_splits(cfg)
    net = load_network("baseline")
    rows = []

    def measure(epoch, net):
        row = {"epoch": epoch, "everyday_report_mpjpe": bl.evaluate_arrays(net, report)["mpjpe_mm"],
               "everyday_stop_mpjpe": bl.evaluate_arrays(net, stop)["mpjpe_mm"],
               "modes": scores(net, ev_modes, args.threshold), "uniform": scores(net, ev_uni, args.threshold)["all"]}
        rows.append(row)
        m = " ".join(f"{k} {100 * v['rate']:.0f}%/{v['median']:.0f}" for k, v in row["modes"].items())
        print(f"[{args.name}] epoch {epoch}: {m} | uniform {100 * row['uniform']['rate']:.1f}%/"
              f"{row['uniform']['median']:.0f} | everyday {row['everyday_report_mpjpe']:.1f} "
              f"(stop {row['everyday_stop_mpjpe']:.1f})", flush=True)

    measure(0, net)
    t = time.perf_counter()
    net, info = finetune(net, train, pool, stop, cfg, on_epoch=measure, log=lambda m: None)
    wall = time.perf_counter() - t
    kept = info["kept_epoch"]
    print(f"[{args.name}] kept epoch {kept} (everyday limit {info['everyday_limit_mm']:.1f} on the stop half), "
          f"{wall:.0f} s", flush=True)
    out = root / "recipes.jsonl"
    with open(out, "a") as f:
        f.write(json.dumps({"name": args.name, "set": args.set, "config": asdict(cfg), "kept_epoch": kept,
                            "wall_s": round(wall, 1), "epochs": rows}) + "\n")


if __name__ == "__main__":
    main()
