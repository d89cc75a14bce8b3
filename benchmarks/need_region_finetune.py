"""Fine-tuning on a mode's box or on its need region: which one teaches the failure?

A verified box pins many dimensions the failure does not need (the constraint test,
examiner/search/importance.py), so a fine-tuning set drawn in the box repeats one small
neighbourhood of the space (the loop's modes were 1e-8 to 1e-10 of it; issue 18). The
need region releases those constraints (`need_box`). This script scores models on fresh
scenes of three kinds, each drawn once from its own seed and shared by every model:

- box: uniform in each mode's box (what `examiner recheck` measures);
- need: uniform in each mode's need region (the failure condition, everything else varied);
- stress: uniform over the run's whole space;

with the run's failure definition (metric and threshold), counted over the fair scenes.

    python benchmarks/need_region_finetune.py --run RUN --model baseline \\
        --model onnx:A/model/model.onnx --model onnx:B/model/model.onnx [--samples 100] [--stress 200]

Prints a table (failing k / fair n per model and scene kind) and writes --out JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def scenes(run, samples: int, stress: int, seed: int) -> dict[str, np.ndarray]:
    from examiner.search.importance import need_box

    out = {}
    for m in run.modes:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB0C5, int(m["id"])]))
        out[f"box {m['rank']}"] = rng.uniform(np.asarray(m["lo"]), np.asarray(m["hi"]), size=(samples, run.space.dim))
        lo, hi = need_box(m, run.space.names)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4EED, int(m["id"])]))
        out[f"need {m['rank']}"] = rng.uniform(lo, hi, size=(samples, run.space.dim))
    out["stress"] = run.space.sample(np.random.default_rng(np.random.SeedSequence([seed, 0x57E55])), stress)
    return out


def score(spec: str, run, U: dict[str, np.ndarray], seed: int) -> dict[str, dict]:
    from examiner.recheck import evaluate_samples
    from examiner.search.factory import build_evaluator

    ev = build_evaluator(spec, run.space, run.threshold, seed, metric=run.metric)
    out = {}
    try:
        for kind, X in U.items():
            failed, values, fair = evaluate_samples(ev, X, run.metric, run.threshold)
            ok = fair & np.isfinite(values)
            out[kind] = {"n": int(fair.sum()), "k": int((failed & fair).sum()),
                         "median": float(np.median(values[ok])) if ok.any() else None}
    finally:
        close = getattr(ev, "close", None)
        if callable(close):
            close()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--stress", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from reports.rundata import load_run

    run = load_run(args.run)
    U = scenes(run, args.samples, args.stress, args.seed)
    results = {spec: score(spec, run, U, args.seed) for spec in args.model}
    kinds = list(U)
    print(f"{run.metric} > {run.threshold:g}; failing / fair scenes (median {run.metric})")
    print("model".ljust(48) + "".join(k.ljust(22) for k in kinds))
    for spec, r in results.items():
        cells = [f"{r[k]['k']}/{r[k]['n']} {r[k]['k'] / max(r[k]['n'], 1):.0%} ({r[k]['median'] or float('nan'):.0f})"
                 for k in kinds]
        print(spec[-47:].ljust(48) + "".join(c.ljust(22) for c in cells))
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
