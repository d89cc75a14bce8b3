"""A model's failure rate by occluder, on the same scenes with and without it (issue 15).

N scenes are drawn uniformly from the space (truncation off, so that the occluder is the
factor); each is scored with no occluder, then with a box and with a pole over each body
region (coverage uniform in the space's range, the same per scene), as a search scores
them (the target's failure metric against the threshold; a missed person fails). The
scenes are paired: the table gives each condition's failure rate and how many scenes it
turns from passing to failing and back.

    python benchmarks/occluder_failures.py --model mediapipe --n 60 [--space pose,shape,camera]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

PARTS = ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")


def main(argv: list[str] | None = None) -> int:
    from examiner.search import build_evaluator
    from examiner.search.boxes import wilson_interval
    from simulator.params import ParamSpace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mediapipe")
    ap.add_argument("--n", type=int, default=60, help="scenes per condition (the same scenes)")
    ap.add_argument("--space", default="pose,shape,camera")
    ap.add_argument("--kinds", default="box,pole")
    ap.add_argument("--threshold", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    space = ParamSpace.from_groups(a.space + ",occluder")
    names = space.names
    ev = build_evaluator(a.model, space, threshold=a.threshold, seed=a.seed)
    rng = np.random.default_rng(a.seed)
    U = space.sample(rng, a.n)
    if "camera.truncation" in names:
        U[:, names.index("camera.truncation")] = -1.0
    kind_dim = next(d for d in space.dimensions if d.name == "occluder.kind")
    part_dim = next(d for d in space.dimensions if d.name == "occluder.part")

    def scored(kind: str, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        V = U.copy()
        V[:, names.index("occluder.kind")] = kind_dim.to_normalised(kind)
        V[:, names.index("occluder.part")] = part_dim.to_normalised(part)
        outs = ev.evaluate(V)
        use = np.array([o.plausible and not o.model_error for o in outs])
        missed = np.array([bool(o.missed) for o in outs])
        vals = np.array([o.error for o in outs], dtype=float)
        return use, missed | (np.nan_to_num(vals, nan=np.inf) > a.threshold), vals

    print(f"{a.model}, space {a.space} (truncation off), threshold {a.threshold:g}, seed {a.seed}, n {a.n}")
    print("| occluder | scenes usable | failing | 95% interval | newly failing | newly passing | median |")
    print("|---|---|---|---|---|---|---|")
    use0, fail0, vals0 = scored("none", "torso")
    rows = [("none", use0, fail0, vals0)]
    for kind in a.kinds.split(","):
        for part in PARTS:
            rows.append((f"{kind} over {part}", *scored(kind, part)))
    for name, use, fail, vals in rows:
        both = use & use0
        k, n = int(fail[both].sum()), int(both.sum())
        lo, hi = wilson_interval(k, n)
        worse = int((fail & ~fail0 & both).sum())
        better = int((~fail & fail0 & both).sum())
        med = float(np.nanmedian(vals[both])) if both.any() else float("nan")
        print(f"| {name} | {n} | {k / max(n, 1):.0%} | {lo:.0%}-{hi:.0%} | {worse} | {better} | {med:.0f} |", flush=True)
    print(json.dumps({"model": a.model, "space": a.space, "n": a.n, "seed": a.seed, "threshold": a.threshold}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
