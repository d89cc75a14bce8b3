"""Search-efficiency benchmark: strategies at equal evaluation budgets, plus 1-vs-2-worker
evaluation throughput.

    python benchmarks/bench_search.py                       # analytic table (a few minutes)
    python benchmarks/bench_search.py --budgets 1000 --seeds 1
    python benchmarks/bench_search.py --parallel            # worker scaling only
    python benchmarks/bench_search.py --parallel --parallel-target baseline --batch 32 --batches 4
    python benchmarks/bench_search.py --target whitebox baseline --budgets 500 1000 --seeds 1 --no-parallel

Targets (`--target`, several in one run):
- `planted` / `hidden` / `many`: the analytic targets (no rendering;
  examiner.search.analytic). `many` has 32 regions (4 large, 4 medium, 24 small, every
  one with an error halo), so that the number of distinct modes is not capped by a
  handful of planted regions that uniform sampling hits anyway.
- `whitebox`: the white-box target model (examiner.targets.whitebox) through the real
  renderer and the whole target pipeline (render -> checked_predict -> score_batch), with
  the same 8 planted regions as `planted` (PLANTED_REGIONS: 1-4 dimensions in the pose,
  shape and camera groups, 15% of the space down to ~5e-6). Inside a region every joint
  is displaced by 0.3 m; outside, 5 mm noise plus, like the analytic target, an error
  that rises towards each region (`--whitebox-halo 0.5`, up to `--whitebox-halo-error`
  0.05 m at a region's edge, below the failure threshold; `--whitebox-halo 0`: none,
  nothing guides a search towards a region).
- `baseline`: the bundled baseline network (assets/baseline, or
  $POSEEXAMINER_BASELINE_DIR); no ground truth, so modes only.

For every target, strategy and budget: distinct failure modes found and, for targets with
planted regions, their recall: a planted region counts as recalled when some mode's box
lies at least `--purity` inside it (vol(mode & region) / vol(mode)). Budgets count every
evaluation, region growing and verification included; the rows also split the budget by
phase (search, probe, bisect, verify) and give the growing cost per job. Not a timed test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from examiner.search import SearchConfig, run_search
from examiner.search.backends import ProcessPoolEvaluator, make_evaluator
from examiner.search.analytic import ANALYTIC_REGION_SETS, PLANTED_REGIONS, AnalyticEvaluator
from examiner.search.drawn_targets import region_box
from examiner.search.factory import EvaluatorFactory, build_evaluator
from examiner.search.recall import recall_report
from examiner.search.sim_evaluator import whitebox_regions_spec
from simulator.params import ParamSpace, SceneParams

RENDERED_TARGETS = ("whitebox", "baseline", "demo")


def recall(modes: list[dict], space: ParamSpace, purity: float, regions) -> tuple[int, list[str]]:
    names = space.names
    found = []
    for region in regions:
        if not set(region.bounds) <= set(names):
            continue
        for m in modes:
            lo, hi = np.array(m["lo"]), np.array(m["hi"])
            frac = 1.0
            for dim, (plo, phi) in region.bounds.items():
                i = names.index(dim)
                inter = max(0.0, min(hi[i], phi) - max(lo[i], plo))
                frac *= inter / max(hi[i] - lo[i], 1e-12)
            if frac >= purity:
                found.append(region.name)
                break
    return len(found), found


class _KeepOpen:
    """Hands run_search an evaluator it cannot close, so one evaluator (and its render
    workers) serves every run of a target."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def evaluate(self, U):
        return self.inner.evaluate(U)


def make_target(name: str, args):
    """(evaluator, space, planted regions or None, model spec) for a target name."""
    if name in ANALYTIC_REGION_SETS:
        space = ParamSpace.from_groups(args.space)
        regions = ANALYTIC_REGION_SETS[name]
        return AnalyticEvaluator(space, regions=regions, noise=1.0), space, regions, f"analytic:{name}"
    size = args.size if name == "whitebox" else args.baseline_size
    space = ParamSpace.from_groups(args.space, base=SceneParams().with_values({"camera.width": size, "camera.height": size}))
    if name == "demo":  # `examiner demo`'s space (pose, camera, occluder); threshold set per run
        from examiner.app.demo import demo_space

        space = demo_space()
    if name == "whitebox":
        regions = PLANTED_REGIONS
        spec = f"whitebox:{whitebox_regions_spec(regions)}?error=0.3&noise=0.005"
        if args.whitebox_halo > 0:
            spec += f"&halo={args.whitebox_halo:g}&halo_error={args.whitebox_halo_error:g}"
    else:
        regions = None
        spec = "baseline?threads=1" + (f"&sim.calibrate={args.calibrate}" if args.calibrate else "")
    if args.workers > 1:
        ev = ProcessPoolEvaluator(EvaluatorFactory(spec, space.to_dict()), args.workers)
    else:
        ev = build_evaluator(spec, space)
    return ev, space, regions, spec


def bench_strategies(args) -> list[dict]:
    rows = []
    for target in args.target:
        evaluator, space, regions, spec = make_target(target, args)
        n_planted = None if regions is None else len([r for r in regions if set(r.bounds) <= set(space.names)])
        try:
            for budget in args.budgets:
                for strategy in args.strategies:
                    for seed in range(args.first_seed, args.first_seed + args.seeds):
                        threshold = args.baseline_threshold if target == "baseline" else None
                        space_spec = args.space
                        if target == "demo":
                            from examiner.app.demo import DEMO_SPACE

                            space_spec = DEMO_SPACE
                        cfg = SearchConfig(strategy=strategy, budget=budget, agents=args.agents, seed=seed,
                                           space=space_spec, threshold=threshold)
                        region = {k: v for k, v in (("growth", args.growth), ("probe_group", args.probe_group),
                                                    ("bisection_tol", args.bisection_tol),
                                                    ("edge_fraction", args.edge_fraction),
                                ("early_verify", None if args.early_verify is None else bool(args.early_verify))) if v is not None}
                        if region:
                            cfg = cfg.replace(region=dataclasses.replace(cfg.region, **region))
                        if target == "demo":  # the demo's threshold: relative to the baseline's accuracy
                            from examiner.search.reference import resolve_threshold

                            cfg, _ = resolve_threshold(cfg, "baseline", space, evaluator)
                        with tempfile.TemporaryDirectory() as d:
                            t0 = time.perf_counter()
                            res = run_search(cfg, _KeepOpen(evaluator), space, Path(d) / "run", model_spec=spec)
                            dt = time.perf_counter() - t0
                            summary = json.loads((Path(d) / "run" / "summary.json").read_text())
                            rep = None
                            if regions is not None:
                                boxes = [(r.name, *region_box(r.bounds, space.names)) for r in regions
                                         if set(r.bounds) <= set(space.names)]
                                rep = recall_report(Path(d) / "run", boxes)
                        by_phase = summary["evaluations_by_phase"]
                        grow = sum(v for k, v in by_phase.items() if k != "search")
                        row = {"target": target, "threshold": cfg.failure_threshold, "strategy": strategy,
                               "budget": budget, "seed": seed,
                               "modes": len(res.modes), "failures": res.failures, "evaluations": res.evaluations,
                               "seconds": round(dt, 1), "evals_per_s": round(res.evaluations / dt, 1),
                               "by_phase": by_phase, "jobs": len(res.jobs),
                               "accepted": sum(bool(j["accepted"]) for j in res.jobs),
                               "grow_evals_per_job": round(grow / max(len(res.jobs), 1), 1)}
                        if regions is not None:
                            n_rec, names = recall(res.modes, space, args.purity, regions)
                            row.update({"recalled": n_rec, "planted": n_planted, "recalled_names": names})
                            row.update({"iou": rep.iou, "false_modes": rep.false_modes,
                                        "evals_per_region": rep.evals_per_region, "region": dataclasses.asdict(cfg.region)})
                        rows.append(row)
                        print(json.dumps(rows[-1]), flush=True)
        finally:
            close = getattr(evaluator, "close", None)
            if callable(close):
                close()
    return rows


def table(rows: list[dict]) -> str:
    out = []
    for target in dict.fromkeys(r["target"] for r in rows):
        rs_t = [r for r in rows if r["target"] == target]
        budgets = sorted({r["budget"] for r in rs_t})
        strategies = list(dict.fromkeys(r["strategy"] for r in rs_t))
        n_seeds = len({r["seed"] for r in rs_t})
        has_recall = "recalled" in rs_t[0]
        what = "modes / recall" if has_recall else "modes"
        thresholds = sorted({r.get("threshold") for r in rs_t if r.get("threshold") is not None})
        limits = ", ".join(f"{t:g}" for t in thresholds)
        out.append(f"`{target}`" + (f" (failure: PA-MPJPE > {limits} mm)" if thresholds else "") + ":\n")
        out.append("| strategy | " + " | ".join(f"{b} evals: {what}" for b in budgets) + " |")
        out.append("|---|" + "---|" * len(budgets))
        mean_modes = {}
        for s in strategies:
            cells = []
            for b in budgets:
                rs = [r for r in rs_t if r["strategy"] == s and r["budget"] == b]
                modes = float(np.mean([r["modes"] for r in rs]))
                mean_modes[s, b] = modes
                cell = f"{modes:.1f}"
                if has_recall:
                    cell += f" / {np.mean([r['recalled'] / r['planted'] for r in rs]):.0%}"
                cells.append(cell)
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        if "marl" in strategies and "random" in strategies:
            ratios = [f"{b}: " + (f"{mean_modes['marl', b] / mean_modes['random', b]:.2f}x"
                                  if mean_modes["random", b] else "random found none") for b in budgets]
            out.append(f"\nMARL / random distinct modes: {', '.join(ratios)}")
        rate = np.mean([r["evals_per_s"] for r in rs_t])
        out.append(f"(mean over {n_seeds} seed(s); {rate:.1f} evaluations/s on average"
                   + ("; recall = share of the planted regions recovered)" if has_recall else ")") + "\n")
    return "\n".join(out)


def bench_parallel(args) -> list[dict]:
    """Steady-state evaluations/s (workers started and warmed up first) for the backends:
    a CPU-bound analytic evaluator (cpu_ms per row), or with --parallel-target baseline |
    whitebox the real evaluator (render + model + metrics at --baseline-size / --size)."""
    out = []
    target = args.parallel_target
    if target in RENDERED_TARGETS:
        size = args.size if target == "whitebox" else args.baseline_size
        space = ParamSpace.from_groups(args.space, base=SceneParams().with_values({"camera.width": size, "camera.height": size}))
        base_spec = (f"whitebox:{whitebox_regions_spec(PLANTED_REGIONS)}?error=0.3" if target == "whitebox"
                     else "baseline?threads=1")
        sep = "&"
        setups = [("in-process", 1, base_spec), ("local process pool", 2, base_spec),
                  ("in-process + RenderPool", 1, base_spec + sep + "sim.render_workers=1"),
                  ("in-process + RenderPool", 2, base_spec + sep + "sim.render_workers=2")]
    else:
        space = ParamSpace.from_groups(args.space)
        spec = f"analytic:planted?cpu_ms={args.cpu_ms}"
        setups = [("local", 1, spec), ("local-pool", 1, spec), ("local-pool", 2, spec), ("ray", 1, spec), ("ray", 2, spec)]
    U = np.random.default_rng(0).uniform(-1, 1, size=(args.batch, space.dim))
    for backend, workers, spec in setups:
        factory = EvaluatorFactory(spec, space.to_dict())
        try:
            if backend in ("local-pool", "local process pool"):
                ev = ProcessPoolEvaluator(factory, workers)
            elif backend == "ray":
                ev = make_evaluator(factory, "ray", workers)
            elif "RenderPool" in backend:
                ev = factory()
            else:
                ev = make_evaluator(factory, "local", 1)
        except Exception as e:  # ray missing: report, go on
            out.append({"backend": backend, "workers": workers, "error": str(e)})
            continue
        for _ in range(2):  # warm up every worker (start, imports, GL contexts, body model)
            ev.evaluate(U)
        t0 = time.perf_counter()
        for _ in range(args.batches):
            ev.evaluate(U)
        dt = time.perf_counter() - t0
        close = getattr(ev, "close", None)
        if callable(close):
            close()
        out.append({"backend": backend, "workers": workers, "target": target,
                    "evals_per_s": round(args.batches * args.batch / dt, 1)})
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", type=int, nargs="+", default=[1000, 2000, 5000])
    p.add_argument("--strategies", nargs="+", default=["marl", "random", "cmaes", "reinforce"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--agents", type=int, default=8)
    p.add_argument("--space", default="joints,shape,camera")
    p.add_argument("--target", nargs="+", choices=sorted(ANALYTIC_REGION_SETS) + list(RENDERED_TARGETS),
                   default=["planted"],
                   help="planted: 8 analytic regions, 15%% .. 5e-6 of the space; hidden: 8 small analytic regions, "
                        "1e-3 .. 2e-5; many: 32 analytic regions, 2e-2 .. 1e-5, 24 of them <= 1e-4; "
                        "whitebox: the planted regions through the renderer; baseline: the bundled model; "
                        "demo: the bundled model on `examiner demo`'s space and threshold")
    p.add_argument("--growth", choices=("probe", "log"), default=None, help="region.growth (default: the config's)")
    p.add_argument("--probe-group", type=int, default=None, help="region.probe_group (default: the config's)")
    p.add_argument("--bisection-tol", type=float, default=None, help="region.bisection_tol (default: the config's)")
    p.add_argument("--edge-fraction", type=float, default=None, help="region.edge_fraction (default: the config's)")
    p.add_argument("--early-verify", type=int, choices=(0, 1), default=None,
                   help="region.early_verify 0/1 (default: the config's)")
    p.add_argument("--size", type=int, default=64, help="render size (px) for the whitebox target")
    p.add_argument("--whitebox-halo", type=float, default=0.5,
                   help="whitebox: width of the rising error around each region (normalised units; 0: none, the "
                        "first-round target); 0.5 like analytic:planted")
    p.add_argument("--whitebox-halo-error", type=float, default=0.05,
                   help="whitebox: joint displacement (m) at a region's edge, below the failure threshold")
    p.add_argument("--baseline-size", type=int, default=256, help="render size (px) for the baseline (its training size)")
    p.add_argument("--baseline-threshold", type=float, default=None,
                   help="failure threshold (PA-MPJPE, mm) for the baseline target (default: 90, PoseExaminer's)")
    p.add_argument("--calibrate", type=int, default=0, help="baseline: offset calibration on N reference scenes")
    p.add_argument("--workers", type=int, default=1, help="evaluation processes for rendered targets")
    p.add_argument("--purity", type=float, default=0.5)
    p.add_argument("--parallel", action="store_true", help="only the worker-scaling measurement")
    p.add_argument("--no-parallel", action="store_true", help="skip the worker-scaling measurement")
    p.add_argument("--parallel-target", choices=["analytic", *RENDERED_TARGETS], default="analytic",
                   help="evaluator of the worker-scaling measurement")
    p.add_argument("--cpu-ms", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--json", type=Path, help="also write the raw rows here")
    args = p.parse_args()
    result: dict = {}
    if not args.parallel:
        rows = bench_strategies(args)
        result["strategies"] = rows
        print()
        print(table(rows))
    if not args.no_parallel:
        par = bench_parallel(args)
        result["parallel"] = par
        print("\n| backend | workers | evaluations/s |\n|---|---|---|")
        for r in par:
            print(f"| {r['backend']} | {r['workers']} | {r.get('evals_per_s', r.get('error'))} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
