"""How do the mode failure rates fall with the size of the fine-tuning set? (issue 18)

Takes a finished `bench_finetune.py` folder (its round-1 run, its independent run and its
threshold), builds fine-tuning sets of N scenes from round 1's modes (the loop's
generator, seed 1000 and base share 0.2 as round 1 of the loop; optionally N uniform
scenes of the same space as a control), fine-tunes the shipped baseline on each with one
recipe, and scores every model exactly as bench_finetune.py does: round 1's modes (the
same fresh samples: `--samples`, seed 0), the independent failure set (the same
`--independent-per-mode` scenes, seed 4343) and held-out everyday MPJPE (the trainer's
card). The model spec's evaluator options (e.g. sim.joints=in_frame) come from the bench.

    PYTHONPATH=. nice -n 10 python benchmarks/finetune_scale.py --bench /work/runs/bench_ft_inframe \
        --sizes 600 6000 --config '{"everyday_share": 0.5, "epochs": 8}' [--control]
        --sizes 48000 --part-size 24000 ...   # 48000 = the 24000 set + 24000 more (seed + 1)

Writes BENCH/scale/<name>.json per model and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="a finished bench_finetune.py --out folder")
    ap.add_argument("--sizes", type=int, nargs="+", default=[600, 6000])
    ap.add_argument("--config", default="{}", help="FinetuneConfig overrides as JSON")
    ap.add_argument("--control", action="store_true", help="also N uniform scenes per size")
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--independent-per-mode", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--part-size", type=int, default=None,
                    help="build a larger set as parts of this many scenes, part j with seed +j (part 0 is "
                         "the one-part set of that size, so a 48000 set reuses the 24000 one)")
    ap.add_argument("--base-share", type=float, default=0.2,
                    help="share of a mode set drawn uniformly from the whole space (the loop's --base-share)")
    ap.add_argument("--stress", action="store_true",
                    help="also the bench's uniform stress set (same scenes and seed as bench_finetune.py)")
    args = ap.parse_args()
    from examiner.app.finetune import build_set, build_uniform_set, train_model
    from examiner.app.loop import _rates_on
    from examiner.training.finetune import FinetuneConfig

    from benchmarks.bench_finetune import stress_eval

    bench = Path(args.bench)
    res = json.loads((bench / "bench.json").read_text())
    model = res["models"]["baseline"]
    run1 = res["loop"]["rounds"][0]["examine"]["run"]
    indep = res["independent_run"]["run"]
    overrides = json.loads(args.config)
    cfg = FinetuneConfig(seed=args.seed, **overrides).check()
    tag = "_".join(f"{k}{v}" for k, v in sorted(overrides.items())) or "default"
    if args.base_share != 0.2:
        tag = f"base{args.base_share}_{tag}"
    out = bench / "scale"
    out.mkdir(exist_ok=True)
    rows = {}

    def parts(n: int) -> list[int]:
        if not args.part_size or n <= args.part_size:
            return [n]
        if n % args.part_size:
            raise SystemExit(f"--sizes {n} is not a multiple of --part-size {args.part_size}")
        return [args.part_size] * (n // args.part_size)

    def stress_of(spec: str) -> dict:  # the bench's own stress scenes, seed and threshold
        a = res["args"]
        return stress_eval(run1, spec, a["stress"], a["seed"] + 4242, res["threshold"])

    for n in args.sizes:
        for kind in ("modes", "uniform") if args.control else ("modes",):
            name = f"{kind}_{n}_{tag}"
            path = out / f"{name}.json"
            if path.is_file():
                rows[name] = row = json.loads(path.read_text())
                if args.stress and "stress" not in row:
                    row["stress"] = stress_of(row["model"])
                    path.write_text(json.dumps(row, indent=1))
                continue
            t0 = time.perf_counter()
            set_dirs = []
            for j, part in enumerate(parts(n)):  # part j: its own folder and seed (part 0 = the one-part set)
                share = f"_base{args.base_share}" if kind == "modes" and args.base_share != 0.2 else ""
                set_dir = out / (f"set_{kind}_{part}{share}" + (f"_p{j}" if j else ""))
                if kind == "modes":
                    build_set(run1, set_dir, part, args.seed + 1000 + j, args.base_share, args.workers)
                else:
                    build_uniform_set(run1, set_dir, part, args.seed + 777 + j, workers=args.workers)
                set_dirs.append(set_dir)
            t_set = time.perf_counter() - t0
            spec, card = train_model("builtin", model, set_dirs, out / f"model_{name}", cfg,
                                     log=lambda m: print(m, flush=True))
            t_train = time.perf_counter() - t0 - t_set
            row = {"n": n, "kind": kind, "config": overrides, "model": spec, "kept_epoch": card["kept_epoch"],
                   "everyday": card["everyday"], "seconds": {"set": round(t_set, 1), "train": round(t_train, 1)},
                   "modes": _rates_on(run1, spec, args.samples, args.seed),
                   "independent": _rates_on(indep, spec, args.independent_per_mode, args.seed + 4343)}
            if args.stress:
                row["stress"] = stress_of(spec)
            for r in res["loop"]["rounds"][1:]:  # later rounds' modes, as bench_finetune.py measures them
                if r.get("examine", {}).get("modes"):
                    row.setdefault("later_modes", {})[str(r["round"])] = _rates_on(r["examine"]["run"], spec,
                                                                                   args.samples, args.seed)
            path.write_text(json.dumps(row, indent=1))
            rows[name] = row
            print(f"{name}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    base_modes = res["round1_modes"]["baseline"]
    base_ind = res["independent"]["baseline"]
    head = "| model | " + " | ".join(f"mode {m['rank']}" for m in base_modes) + \
        " | independent (all) | stress (uniform) | everyday MPJPE | kept | set + train s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def pooled(rs):
        k, n = sum(r["k"] for r in rs), sum(r["n"] for r in rs)
        return f"{100 * k / max(n, 1):.1f}% ({k}/{n})"

    def stress(s):
        return f"{100 * s['rate']:.1f}% / {s['median_pa_mpjpe']:.0f}" if s and s["rate"] is not None else "-"

    lines.append("| baseline | " + " | ".join(f"{100 * m['rate']:.0f}% / {m['median']:.0f}" for m in base_modes)
                 + f" | {pooled(base_ind)} | {stress(res['stress']['baseline'])} | - | - | - |")
    for name, r in rows.items():
        ev = r["everyday"]
        lines.append(f"| {name} | " + " | ".join(f"{100 * m['rate']:.0f}% / {m['median']:.0f}" for m in r["modes"])
                     + f" | {pooled(r['independent'])} | {stress(r.get('stress'))} | {ev['before']['mpjpe_mm']:.1f} -> {ev['after']['mpjpe_mm']:.1f}"
                     + f" | {r['kept_epoch']} | {r['seconds']['set']:.0f} + {r['seconds']['train']:.0f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
