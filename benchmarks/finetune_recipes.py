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
    from reports.rundata import load_run

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
    data = {**render_eval(np.concatenate(U), run.space), "mode": np.asarray(mode, np.int64)}
    np.savez(cache, **data)
    return data


def errors(net, data: dict[str, np.ndarray]) -> np.ndarray:
    """Per-scene PA-MPJPE (mm) on the common12 limb joints, as a search scores."""
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
    return metrics.pa_mpjpe(p_rr, np.where(np.isfinite(g_rr), g_rr, 0.0), mask) * 1000


def render_eval(U: np.ndarray, space) -> dict[str, np.ndarray]:
    """Crops + common12 ground truth of the scenes at normalised parameters U."""
    from examiner.scoring import ground_truth
    from examiner.training import baseline as bl
    from simulator.pool import RenderPool

    params = space.to_params_batch(U)
    images, xyz, valid = [], [], []
    with RenderPool(2) as pool:
        for i in range(0, len(params), 64):
            samples = pool.render_batch(params[i:i + 64])
            gt = ground_truth(samples, "common12")
            images += [bl.sample_to_example(s)[0] for s in samples]
            xyz.append(gt.xyz)
            valid.append(gt.valid)
    return {"images": np.stack(images), "gt12": np.concatenate(xyz), "valid12": np.concatenate(valid)}


def independent(root: Path, per_mode: int, threshold: float, models: dict[str, str]) -> dict:
    """A stress set of failure scenes found independently: fresh scenes inside the modes of
    a second search (ROOT/run_seed1: another seed, same model, space and budget), scored on
    every model (pooled over its modes and per mode)."""
    from examiner.training.finetune import load_network
    from reports.rundata import load_run

    cache = root / f".cache_indep_{per_mode}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    else:
        run = load_run(root / "run_seed1")
        rng = np.random.default_rng(np.random.SeedSequence([98, 0x1DE9]))
        U, mode = [], []
        for m in run.modes:
            U.append(rng.uniform(np.asarray(m["lo"]), np.asarray(m["hi"]), size=(per_mode, run.space.dim)))
            mode += [int(m["rank"]) - 1] * per_mode
        data = {**render_eval(np.concatenate(U), run.space), "mode": np.asarray(mode, np.int64),
                "u": np.concatenate(U)}
        np.savez(cache, **data)
    out = {"n": int(len(data["mode"])), "modes": int(len(np.unique(data["mode"]))), "models": {}}
    for name, spec in models.items():
        e = errors(load_network(spec), data)
        row = {"all": {"rate": float((e > threshold).mean()), "median": float(np.median(e))}}
        for m in np.unique(data["mode"]):
            s = data["mode"] == m
            row[f"mode{m}"] = {"rate": float((e[s] > threshold).mean()), "median": float(np.median(e[s]))}
        out["models"][name] = row
    return out


def scores(net, data: dict[str, np.ndarray], threshold: float) -> dict:
    e = errors(net, data)
    out = {}
    for m in np.unique(data["mode"]):
        s = data["mode"] == m
        out["all" if m < 0 else f"mode{m}"] = {"n": int(s.sum()), "rate": float((e[s] > threshold).mean()),
                                              "median": float(np.median(e[s]))}
    return out


def uniform_u(root: Path, per_mode: int, uniform: int) -> tuple[np.ndarray, list[dict]]:
    """The normalised parameters of the cached uniform evaluation scenes (the same draws as
    `eval_scenes`) and the run's modes."""
    from reports.rundata import load_run

    run = load_run(root / "run")
    rng = np.random.default_rng(np.random.SeedSequence([99, 0xE5A1]))
    for m in run.modes:
        rng.uniform(np.asarray(m["lo"]), np.asarray(m["hi"]), size=(per_mode, run.space.dim))
    return run.space.sample(rng, uniform), list(run.modes)


def box_distance(U: np.ndarray, lo, hi) -> np.ndarray:
    """Euclidean distance (normalised units, every dimension spans [-1, 1]) from each row of
    U to the box [lo, hi]; 0 inside."""
    return np.linalg.norm(np.maximum(np.asarray(lo) - U, 0) + np.maximum(U - np.asarray(hi), 0), axis=1)


def coverage(root: Path, per_mode: int, uniform: int, threshold: float, models: dict[str, str]) -> dict:
    """How much of the uniform scenes' failing space the round's mode boxes cover: for the
    baseline's failures and passes, the share inside any box and within 0.25 / 0.5 of one;
    and each model's failure rate inside and outside the boxes."""
    from examiner.training.finetune import load_network

    ev = eval_scenes(root, per_mode, uniform)
    uni = {k: v[ev["mode"] < 0] for k, v in ev.items()}
    U, modes = uniform_u(root, per_mode, uniform)
    d = np.min(np.stack([box_distance(U, m["lo"], m["hi"]) for m in modes]), axis=0)
    e0 = errors(load_network("baseline"), uni)
    fail = e0 > threshold
    out = {"n": int(len(U)), "baseline_failing": int(fail.sum()), "boxes": len(modes),
           "box_volume_share": [float(np.prod((np.asarray(m["hi"]) - np.asarray(m["lo"])) / 2)) for m in modes]}
    for name, sel in (("failing", fail), ("passing", ~fail)):
        out[name] = {f"within_{r}": float((d[sel] <= r).mean()) for r in (0.0, 0.25, 0.5)}
    inside = d == 0
    out["inside_n"] = int(inside.sum())
    out["models"] = {}
    for name, spec in models.items():
        e = errors(load_network(spec), uni)
        out["models"][name] = {"inside": float((e[inside] > threshold).mean()) if inside.any() else None,
                               "outside": float((e[~inside] > threshold).mean()), "all": float((e > threshold).mean())}
    return out


def prepare(root: Path, budget: int, n: int, seed: int, workers: int, extra: int | None,
            second_seed: int | None = None) -> None:
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
    if second_seed is not None and not (root / f"run_seed{second_seed}" / "modes.json").is_file():
        r = _search("baseline", space, {**cfg_kw, "seed": second_seed}, info["threshold"],
                    root / f"run_seed{second_seed}", True)
        print(f"run_seed{second_seed}: {len(r['modes'])} mode(s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/ft_r1")
    ap.add_argument("--name", default=None, help="the recipe's name (required unless --prepare)")
    ap.add_argument("--prepare", action="store_true", help="regenerate the inputs in ROOT and stop")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--coverage", nargs="*", default=None, metavar="NAME",
                    help="instead of training: coverage of the uniform scenes' failures by the mode boxes, and the "
                         "failure rates inside / outside them of the baseline and of the kept models of recipes NAME")
    ap.add_argument("--independent", nargs="*", default=None, metavar="NAME",
                    help="instead of training: baseline and the kept models of recipes NAME on fresh scenes in the "
                         "modes of a second search (ROOT/run_seed1, built with --prepare --second-seed 1)")
    ap.add_argument("--second-seed", type=int, default=None, help="with --prepare: also ROOT/run_seed1, the same "
                    "search with this seed")
    ap.add_argument("--extra-set", type=int, default=None, help="with --prepare: also ROOT/set_N, N scenes")
    ap.add_argument("--set", default="set", help="set (the round's) or control_set")
    ap.add_argument("--config", default="{}", help="FinetuneConfig overrides as JSON")
    ap.add_argument("--threshold", type=float, default=90.0)
    ap.add_argument("--eval-per-mode", type=int, default=150)
    ap.add_argument("--eval-uniform", type=int, default=300)
    args = ap.parse_args()
    if args.prepare:
        prepare(Path(args.root), args.budget, args.n, args.seed, args.workers, args.extra_set, args.second_seed)
        return
    if args.independent is not None:
        models = {n: str(Path(args.root) / f"model_{n}" / "baseline.onnx") for n in args.independent}
        res = independent(Path(args.root), 50, args.threshold, {"baseline": "baseline", **models})
        print(json.dumps(res, indent=1))
        with open(Path(args.root) / "independent.jsonl", "a") as f:
            f.write(json.dumps(res) + "\n")
        return
    if args.coverage is not None:
        models = {n: str(Path(args.root) / f"model_{n}" / "baseline.onnx") for n in args.coverage}
        res = coverage(Path(args.root), args.eval_per_mode, args.eval_uniform, args.threshold,
                       {"baseline": "baseline", **models})
        print(json.dumps(res, indent=1))
        with open(Path(args.root) / "coverage.jsonl", "a") as f:
            f.write(json.dumps(res) + "\n")
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

    fit_mode = {k: train[k][train["mode"] >= 0][:400] for k in ("images", "joints3d", "joints2d")}

    def measure(epoch, net):
        row = {"epoch": epoch, "everyday_report_mpjpe": bl.evaluate_arrays(net, report)["mpjpe_mm"],
               "train_mode_mpjpe": bl.evaluate_arrays(net, fit_mode)["mpjpe_mm"],
               "everyday_stop_mpjpe": bl.evaluate_arrays(net, stop)["mpjpe_mm"],
               "modes": scores(net, ev_modes, args.threshold), "uniform": scores(net, ev_uni, args.threshold)["all"]}
        rows.append(row)
        m = " ".join(f"{k} {100 * v['rate']:.0f}%/{v['median']:.0f}" for k, v in row["modes"].items())
        print(f"[{args.name}] epoch {epoch}: {m} | uniform {100 * row['uniform']['rate']:.1f}%/"
              f"{row['uniform']['median']:.0f} | everyday {row['everyday_report_mpjpe']:.1f} "
              f"(stop {row['everyday_stop_mpjpe']:.1f}) | training mode scenes MPJPE {row['train_mode_mpjpe']:.1f}",
              flush=True)

    measure(0, net)
    t = time.perf_counter()
    net, info = finetune(net, train, pool, stop, cfg, on_epoch=measure, log=lambda m: None)
    wall = time.perf_counter() - t
    (root / f"model_{args.name}").mkdir(exist_ok=True)
    bl.export(net, root / f"model_{args.name}")  # the kept epoch's weights (for --coverage)
    kept = info["kept_epoch"]
    print(f"[{args.name}] kept epoch {kept} (everyday limit {info['everyday_limit_mm']:.1f} on the stop half), "
          f"{wall:.0f} s", flush=True)
    out = root / "recipes.jsonl"
    with open(out, "a") as f:
        f.write(json.dumps({"name": args.name, "set": args.set, "config": asdict(cfg), "kept_epoch": kept,
                            "wall_s": round(wall, 1), "epochs": rows,
                            "history": info["history"]}) + "\n")


if __name__ == "__main__":
    main()
