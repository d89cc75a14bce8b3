"""Evaluations-to-recall benchmark (issue 20): strategies on drawn analytic targets.

    python benchmarks/bench_search_recall.py                      # 10 layouts, budget 5000
    python benchmarks/bench_search_recall.py --seeds 5 --budget 3000 --strategies marl random
    python benchmarks/bench_search_recall.py --rows rows.jsonl --table-only   # re-aggregate
    python benchmarks/bench_search_recall.py --bisection-tol 0.03125 --strategies marl random   # a region option
    python benchmarks/bench_search_recall.py --seeds 20 --budget 6000 --strategies marl-pretrained hillclimb marl
    python benchmarks/bench_search_recall.py --target rendered --seeds 5 --budget 2500 --rows r.jsonl   # through the renderer

Each seed s runs every strategy with `seed=s` on `analytic:drawn?layout=s` (3-8 regions of
2-4 dimensions, volumes 1e-5 .. 3e-2 of the space, drawn anew per layout; see
examiner.search.drawn_targets), so no strategy is tuned to one layout. Every evaluation
counts (search, probe, bisect, verify). Per strategy (examiner.search.recall):
- evaluations to recall 50%, 90% and 100% of the planted regions (a run that does not
  get there counts as the budget, a lower bound; the table says how many got there);
- box IoU of each recalled region's mode box with the planted box (full space);
- growth cost: evaluations in probe/bisect/verify per accepted region.
Intervals: 95% percentile bootstrap over seeds (over recalled regions for IoU), 2000
resamples, fixed generator. Ratios MARL / random and MARL / best other strategy are
ratios of means, with a paired bootstrap over seeds. Counts evaluations, never time.

`--target rendered`: the same drawn layout s (drawn_regions(s, space): the same regions as
`analytic:drawn?layout=s` on the same space, halos included) planted into the white-box
target model (examiner.targets.whitebox: 0.3 m joint displacement inside a region, 5 mm
noise, an error rising to `--halo-error` m towards each region with the region's own
halo width) and evaluated through the real renderer and scoring
(SimulatorEvaluator: render at `--size` px -> white-box prediction -> score_batch,
PA-MPJPE). The white-box model reads the pose prior's latent dimensions (`pose.z01`..)
from the scene's recorded latent, so each planted box is a box of the search space.
Recall, IoU and growth cost are the same code (examiner.search.recall) as for the
analytic target; rows add the implausible share (self-penetrating scenes; the analytic
drawn target has none).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from examiner.search import SearchConfig, build_evaluator, run_search
from examiner.search.drawn_targets import drawn_regions, planted_boxes, region_box
from examiner.search.recall import recall_report
from examiner.store import RunStore
from simulator.params import ParamSpace, SceneParams

STRATEGIES = ("marl", "hillclimb", "random", "cmaes", "qd", "marl-pretrained", "frozen-pretrained")
# Pseudo-strategies: a benchmark label -> the strategy that runs with ppo.pretrained =
# --pretrained (default: the shipped policy). `marl-pretrained` fine-tunes it online;
# `frozen-pretrained` is hillclimb's loop (no PPO updates) acting with the pretrained policy.
PSEUDO = {"marl-pretrained": "marl", "frozen-pretrained": "hillclimb"}
LEVELS = (0.5, 0.9, 1.0)


def rendered_space(groups: str, size: int) -> ParamSpace:
    """The search space with the render size fixed in its base scene."""
    return ParamSpace.from_groups(groups, base=SceneParams().with_values({"camera.width": size, "camera.height": size}))


def rendered_target(seed: int, space: ParamSpace, halo_error: float = 0.05):
    """(evaluator, planted boxes, model spec label) of drawn layout `seed` planted into
    the white-box model and evaluated through the renderer."""
    from examiner.search.sim_evaluator import SimulatorEvaluator, whitebox_regions_spec
    from examiner.targets.whitebox import PlantedRegion, WhiteBoxTarget

    drawn = drawn_regions(seed, space)
    regions = [PlantedRegion(bounds, halo=halo) for _, bounds, halo in drawn]
    model = WhiteBoxTarget(regions, error_m=0.3, noise_m=0.005, halo_error_m=halo_error, space=space)
    ev = SimulatorEvaluator(model, space)
    boxes = [(name, *region_box(bounds, space.names)) for name, bounds, _ in drawn]
    # A record of what ran (per-region halos are not expressible in a whitebox: spec).
    label = f"whitebox:{whitebox_regions_spec(regions)}?error=0.3&noise=0.005&halo_error={halo_error:g}"
    return ev, boxes, label


def run_one(strategy: str, seed: int, args, space: ParamSpace) -> dict:
    if args.target == "rendered":
        ev, boxes, spec = rendered_target(seed, space, args.halo_error)
    else:
        spec = f"analytic:drawn?layout={seed}"
        ev = build_evaluator(spec, space)
        boxes = planted_boxes(ev)
    cfg = SearchConfig(strategy=PSEUDO.get(strategy, strategy), budget=args.budget, agents=args.agents, seed=seed,
                       space=args.space)
    if strategy in PSEUDO:
        cfg = cfg.replace(ppo=dataclasses.replace(cfg.ppo, pretrained=args.pretrained))
    if args.ppo:
        cfg = cfg.replace(ppo=dataclasses.replace(cfg.ppo, **json.loads(args.ppo)))
    if args.reward:
        cfg = cfg.replace(env=dataclasses.replace(cfg.env, reward=args.reward))
    if args.hide_anchor:
        cfg = cfg.replace(env=dataclasses.replace(cfg.env, observe_anchor=False))
    region = {k: v for k, v in (("bisection_tol", args.bisection_tol), ("probe_group", args.probe_group),
                                ("growth", args.growth), ("edge_fraction", args.edge_fraction),
                                ("early_verify", None if args.early_verify is None else bool(args.early_verify)),
                                ("shrink", args.shrink), ("simplify", args.simplify)) if v is not None}
    if region:
        cfg = cfg.replace(region=dataclasses.replace(cfg.region, **region))
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        run_search(cfg, ev, space, Path(d) / "run", model_spec=spec)
        dt = time.perf_counter() - t0
        rep = recall_report(Path(d) / "run", boxes)
        records = list(RunStore.open(Path(d) / "run").iter_records())
    implausible = sum(not r.get("plausible", True) for r in records)
    implausible_growth = sum(not r.get("plausible", True) for r in records if r.get("phase") != "search")
    return {
        "target": args.target, "strategy": strategy, "seed": seed, "layout": seed, "budget": args.budget, "planted": rep.planted,
        "found_at": rep.found_at, "iou": rep.iou, "iou_dims": rep.iou_dims,
        **{f"to_{int(q * 100)}": rep.evals_to_recall(q) for q in LEVELS},
        "evaluations": rep.evaluations, "accepted": rep.accepted, "growth_evaluations": rep.growth_evaluations,
        "evals_per_region": rep.evals_per_region, "false_modes": rep.false_modes, "seconds": round(dt, 1),
        "implausible": implausible, "implausible_growth": implausible_growth,
        "model_errors": sum(bool(r.get("model_error")) for r in records),
        "region": dataclasses.asdict(cfg.region),
    }


def _boot(values: np.ndarray, stat=np.mean, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    s = np.array([stat(values[i]) for i in idx])
    return float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))


def _ratio_boot(a: np.ndarray, b: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """mean(a) / mean(b) with a paired percentile bootstrap over seeds."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    r = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    return float(a.mean() / b.mean()), float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))


def _to(rows: list[dict], key: str) -> np.ndarray:
    return np.array([r[key] if r[key] is not None else r["budget"] for r in rows], dtype=float)


def table(rows: list[dict]) -> str:
    strategies = [s for s in STRATEGIES if any(r["strategy"] == s for r in rows)]
    strategies += [s for s in dict.fromkeys(r["strategy"] for r in rows) if s not in strategies]
    seeds = sorted({r["seed"] for r in rows})
    by = {s: sorted([r for r in rows if r["strategy"] == s], key=lambda r: r["seed"]) for s in strategies}
    budget = rows[0]["budget"]
    planted = [next(r["planted"] for r in rows if r["seed"] == s) for s in seeds]
    out = [f"{len(seeds)} drawn layouts (seeds {seeds[0]}-{seeds[-1]}; {min(planted)}-{max(planted)} regions each, "
           f"{sum(planted)} in all), budget {budget} evaluations, mean [95% bootstrap interval]; "
           "a run that never reached a level counts as the budget (n = runs that reached it).\n"]
    imp = any(r.get("target", "analytic") == "rendered" for r in rows)
    out.append("| strategy | evals to 50% | evals to 90% | evals to 100% | box IoU median | evals per region | false modes |"
               + (" implausible share |" if imp else ""))
    out.append("|---|---|---|---|---|---|---|" + ("---|" if imp else ""))
    for s in strategies:
        rs = by[s]
        cells = []
        for q in LEVELS:
            key = f"to_{int(q * 100)}"
            v = _to(rs, key)
            lo, hi = _boot(v)
            n = sum(r[key] is not None for r in rs)
            cells.append(f"{v.mean():.0f} [{lo:.0f}, {hi:.0f}] (n={n}/{len(rs)})")
        ious = np.array([x for r in rs for x in r["iou"] if x is not None])
        lo, hi = _boot(ious, np.median) if len(ious) > 1 else (float("nan"), float("nan"))
        cells.append(f"{np.median(ious):.2f} [{lo:.2f}, {hi:.2f}] ({len(ious)} boxes)" if len(ious) else "-")
        epr = np.array([r["evals_per_region"] for r in rs if r["evals_per_region"] is not None])
        lo, hi = _boot(epr)
        cells.append(f"{epr.mean():.0f} [{lo:.0f}, {hi:.0f}]" if len(epr) else "-")
        cells.append(str(sum(r["false_modes"] for r in rs)))
        if imp:
            n_imp, n_all = sum(r.get("implausible", 0) for r in rs), sum(r["evaluations"] for r in rs)
            g_imp = sum(r.get("implausible_growth", 0) for r in rs)
            cells.append(f"{n_imp / max(n_all, 1):.1%} ({n_imp}/{n_all}; {g_imp} in growth)")
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    if "marl" in by:
        out.append("")
        for q in LEVELS:
            key = f"to_{int(q * 100)}"
            m = _to(by["marl"], key)
            parts = []
            if "random" in by and len(by["random"]) == len(m):
                r, lo, hi = _ratio_boot(m, _to(by["random"], key))
                parts.append(f"MARL / random {r:.2f}x [{lo:.2f}, {hi:.2f}]")
            others = {s: _to(by[s], key) for s in strategies if s != "marl" and len(by[s]) == len(m)}
            if others:
                best = min(others, key=lambda s: others[s].mean())
                r, lo, hi = _ratio_boot(m, others[best])
                parts.append(f"MARL / best other ({best}) {r:.2f}x [{lo:.2f}, {hi:.2f}]")
            out.append(f"- {int(q * 100)}% recall: " + "; ".join(parts))
        if "random" in by:
            m, r = _to(by["marl"], "to_90"), _to(by["random"], "to_90")
            wins = int(np.sum(m < r))
            out.append(f"- seeds where MARL reached 90% recall in fewer evaluations than random: {wins}/{len(m)}")
    if len(seeds) <= 20:
        out.append("")
        out.append(f"Evaluations to 90% recall per seed (`-`: not reached within {budget}):\n")
        out.append("| strategy | " + " | ".join(str(s) for s in seeds) + " |")
        out.append("|---|" + "---|" * len(seeds))
        for s in strategies:
            per = {r["seed"]: r["to_90"] for r in by[s]}
            out.append(f"| {s} | " + " | ".join("-" if per.get(x) is None else str(per[x]) for x in seeds) + " |")
        out.append("| regions | " + " | ".join(str(n) for n in planted) + " |")
    if "marl-pretrained" in by:
        out.append("")
        pre = by["marl-pretrained"]
        for other in ("hillclimb", "marl", "frozen-pretrained", "random"):
            if other not in by or [r["seed"] for r in by[other]] != [r["seed"] for r in pre]:
                continue
            for q in LEVELS:
                key = f"to_{int(q * 100)}"
                a, b = _to(pre, key), _to(by[other], key)
                r, lo, hi = _ratio_boot(a, b)
                out.append(f"- {int(q * 100)}% recall: pretrained MARL / {other} {r:.2f}x [{lo:.2f}, {hi:.2f}]; "
                           f"fewer evaluations on {int(np.sum(a < b))}/{len(a)} layouts, more on {int(np.sum(a > b))}")
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", choices=("analytic", "rendered"), default="analytic",
                   help="analytic: analytic:drawn?layout=s; rendered: layout s planted into the white-box model, "
                        "through the renderer")
    p.add_argument("--size", type=int, default=64, help="rendered: render size (px)")
    p.add_argument("--halo-error", type=float, default=0.05,
                   help="rendered: joint displacement (m) at a region's edge, below the failure threshold")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=5000)
    p.add_argument("--agents", type=int, default=8)
    p.add_argument("--space", default="pose,shape,camera")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    p.add_argument("--bisection-tol", type=float, default=None, help="region.bisection_tol (default: the config's)")
    p.add_argument("--probe-group", type=int, default=None, help="region.probe_group (default: the config's)")
    p.add_argument("--pretrained", default="default",
                   help='ppo.pretrained of the marl-pretrained rows: "default" (the shipped policy) or a .npz path')
    p.add_argument("--reward", default=None, help='env.reward ("score" or "gain"; default: the config\'s)')
    p.add_argument("--hide-anchor", action="store_true", help="env.observe_anchor False (all strategies of the run)")
    p.add_argument("--growth", choices=("probe", "log"), default=None, help="region.growth (default: the config's)")
    p.add_argument("--edge-fraction", type=float, default=None, help="region.edge_fraction (default: the config's)")
    p.add_argument("--shrink", choices=("peel", "band"), default=None, help="region.shrink (default: the config's)")
    p.add_argument("--early-verify", type=int, choices=(0, 1), default=None,
                   help="region.early_verify 0/1 (default: the config's)")
    p.add_argument("--ppo", default=None, help='PPOConfig overrides as JSON, e.g. \'{"learning_rate": 0.003}\'')
    p.add_argument("--simplify", type=int, default=None,
                   help="region.simplify: release tests per mode after the search (0 = off; default: the config's)")
    p.add_argument("--rows", default=None, help="JSONL file: rows are appended; runs already in it are skipped")
    p.add_argument("--table-only", action="store_true", help="only aggregate the rows in --rows")
    args = p.parse_args(argv)
    rows: list[dict] = []
    rows_path = Path(args.rows) if args.rows else None
    if rows_path and rows_path.exists():
        rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    if not args.table_only:
        space = rendered_space(args.space, args.size) if args.target == "rendered" else ParamSpace.from_groups(args.space)
        done = {(r.get("target", "analytic"), r["strategy"], r["seed"], r["budget"]) for r in rows}
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for strategy in args.strategies:
                if (args.target, strategy, seed, args.budget) in done:
                    continue
                row = run_one(strategy, seed, args, space)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if rows_path:
                    with rows_path.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    rows = [r for r in rows if r["budget"] == args.budget and r["strategy"] in args.strategies
            and r.get("target", "analytic") == args.target]
    print(table(rows))


if __name__ == "__main__":
    main()
