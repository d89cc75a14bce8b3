"""Search-efficiency benchmark: strategies at equal evaluation budgets on the planted
white-box target, plus 1-vs-2-worker evaluation throughput.

    python benchmarks/bench_search.py                       # full table (a few minutes)
    python benchmarks/bench_search.py --budgets 1000 --seeds 1
    python benchmarks/bench_search.py --parallel            # worker scaling only

For every strategy and budget: distinct failure modes found, and recall of the planted
regions (examiner.search.evaluator.PLANTED_REGIONS: 8 boxes on 1-4 dimensions in the
pose, shape and camera groups, from 15% of the space down to ~5e-6). A planted region
counts as recalled when some mode's box lies at least `--purity` inside it
(vol(mode & region) / vol(mode)). Budgets count every evaluation, region growing and
verification included. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from examiner.search import SearchConfig, run_search
from examiner.search.backends import make_evaluator
from examiner.search.evaluator import ANALYTIC_REGION_SETS, AnalyticEvaluator, EvaluatorFactory
from simulator.params import ParamSpace


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


def bench_strategies(args) -> list[dict]:
    space = ParamSpace.from_groups(args.space)
    regions = ANALYTIC_REGION_SETS[args.target]
    evaluator = AnalyticEvaluator(space, regions=regions, noise=1.0)
    n_planted = len(evaluator.regions)
    rows = []
    for budget in args.budgets:
        for strategy in args.strategies:
            for seed in range(args.seeds):
                cfg = SearchConfig(strategy=strategy, budget=budget, agents=args.agents, seed=seed, space=args.space)
                with tempfile.TemporaryDirectory() as d:
                    t0 = time.perf_counter()
                    res = run_search(cfg, evaluator, space, Path(d) / "run")
                    dt = time.perf_counter() - t0
                n_rec, names = recall(res.modes, space, args.purity, regions)
                rows.append({"strategy": strategy, "budget": budget, "seed": seed, "modes": len(res.modes),
                             "recalled": n_rec, "planted": n_planted, "recalled_names": names,
                             "evaluations": res.evaluations, "seconds": round(dt, 1)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    budgets = sorted({r["budget"] for r in rows})
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    n_seeds = len({r["seed"] for r in rows})
    lines = [f"| strategy | " + " | ".join(f"{b} evals: modes / recall" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for s in strategies:
        cells = []
        for b in budgets:
            rs = [r for r in rows if r["strategy"] == s and r["budget"] == b]
            modes = np.mean([r["modes"] for r in rs])
            rec = np.mean([r["recalled"] / r["planted"] for r in rs])
            cells.append(f"{modes:.1f} / {rec:.0%}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append(f"\n(mean over {n_seeds} seed(s); recall = share of the planted regions recovered)")
    return "\n".join(lines)


def bench_parallel(args) -> list[dict]:
    """Evaluations/s of a CPU-bound analytic evaluator (cpu_ms per row) for the backends."""
    space = ParamSpace.from_groups(args.space)
    spec = f"analytic:planted?cpu_ms={args.cpu_ms}"
    factory = EvaluatorFactory(spec, space.to_dict())
    out = []
    U = np.random.default_rng(0).uniform(-1, 1, size=(args.batch, space.dim))
    for backend, workers in (("local", 1), ("local-pool", 1), ("local-pool", 2), ("ray", 1), ("ray", 2)):
        try:
            if backend == "local-pool":
                from examiner.search.backends import ProcessPoolEvaluator

                ev = ProcessPoolEvaluator(factory, workers)
            else:
                ev = make_evaluator(factory, backend, workers)
        except Exception as e:  # ray missing: report, go on
            out.append({"backend": backend, "workers": workers, "error": str(e)})
            continue
        ev.evaluate(U[:4])  # warm up (worker start, imports)
        t0 = time.perf_counter()
        for _ in range(args.batches):
            ev.evaluate(U)
        dt = time.perf_counter() - t0
        close = getattr(ev, "close", None)
        if callable(close):
            close()
        out.append({"backend": backend, "workers": workers,
                    "evals_per_s": round(args.batches * args.batch / dt, 1)})
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budgets", type=int, nargs="+", default=[1000, 2000, 5000])
    p.add_argument("--strategies", nargs="+", default=["marl", "random", "cmaes", "reinforce"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--agents", type=int, default=8)
    p.add_argument("--space", default="pose,shape,camera")
    p.add_argument("--target", choices=sorted(ANALYTIC_REGION_SETS), default="planted",
                   help="planted: 8 regions, 15%% .. 5e-6 of the space; hidden: 8 small regions, 1e-3 .. 2e-5")
    p.add_argument("--purity", type=float, default=0.5)
    p.add_argument("--parallel", action="store_true", help="only the worker-scaling measurement")
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
    par = bench_parallel(args)
    result["parallel"] = par
    print("\n| backend | workers | evaluations/s |\n|---|---|---|")
    for r in par:
        print(f"| {r['backend']} | {r['workers']} | {r.get('evals_per_s', r.get('error'))} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
