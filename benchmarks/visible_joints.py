"""Does a model fail on the joints it can see, or only on those it cannot? (issue 15)

Truncation and occluders are the strongest failure conditions the examiner finds. A pose
researcher's first question is whether the errors come from joints the image does not
show (out of frame, behind the occluder), where any model must guess, or from joints in
plain view. For each condition this script renders N scenes and their clear twins (the
same scene with truncation off and no occluder), runs the model on both, and scores them
on the same prediction (examiner.scoring.score_batch(joint_mask=...)):

- all: PA-MPJPE over the 12 common joints, what the search uses;
- seen: over the joints the condition leaves in view (inside the image for truncation;
  inside it and not hidden by the occluder or the body for occluders); a scene with fewer
  than 6 such joints is not scored that way ('too few');
- the clear twin scored on the same joints: the control. If the condition's failure rate
  on seen joints is near its twin's, the condition's extra failures come from joints the
  model cannot see; if it is well above, the model also misplaces what it can see.

A missed person fails every way.

    python benchmarks/visible_joints.py --model mediapipe --n 80 [--space pose,shape,camera]
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def conditions(space, rng, n: int) -> dict[str, tuple[np.ndarray, str]]:
    """Name -> ((n, dim) normalised scenes, which joints stay seen); truncation off and no
    occluder unless the condition sets them."""
    names = space.names
    dim = {d.name: d for d in space.dimensions}

    def clear() -> np.ndarray:
        U = space.sample(rng, n)
        U[:, names.index("camera.truncation")] = -1.0
        U[:, names.index("occluder.kind")] = dim["occluder.kind"].to_normalised("none")
        return U

    out = {}
    U = clear()
    t = dim["camera.truncation"]
    U[:, names.index("camera.truncation")] = rng.uniform(t.to_normalised(0.28), t.to_normalised(0.35), n)
    out["truncation 0.28-0.35"] = (U, "in_frame")
    for kind, part in (("box", "torso"), ("box", "left_leg"), ("box", "left_arm"), ("box", "head"), ("pole", "torso")):
        U = clear()
        U[:, names.index("occluder.kind")] = dim["occluder.kind"].to_normalised(kind)
        U[:, names.index("occluder.part")] = dim["occluder.part"].to_normalised(part)
        out[f"{kind} over {part}"] = (U, "visible")
    return out


def twin(space, U: np.ndarray) -> np.ndarray:
    """The same scenes with truncation off and no occluder."""
    names = space.names
    kind = next(d for d in space.dimensions if d.name == "occluder.kind")
    V = U.copy()
    V[:, names.index("camera.truncation")] = -1.0
    V[:, names.index("occluder.kind")] = kind.to_normalised("none")
    return V


def main(argv: list[str] | None = None) -> int:
    from examiner.scoring import joints_seen, score_batch
    from examiner.search import build_evaluator
    from examiner.search.boxes import wilson_interval
    from examiner.targets.base import TargetBatch, checked_predict
    from simulator.params import ParamSpace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mediapipe")
    ap.add_argument("--n", type=int, default=80, help="scenes per condition")
    ap.add_argument("--space", default="pose,shape,camera")
    ap.add_argument("--threshold", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    space = ParamSpace.from_groups(a.space + ",occluder")
    ev = build_evaluator(a.model, space, threshold=a.threshold, seed=a.seed)
    ev._setup()  # the evaluator's renderer, model and joint calibration, as a search has them
    rng = np.random.default_rng(a.seed)
    print(f"{a.model}, space {a.space} + occluder, threshold {a.threshold:g} mm, seed {a.seed}, n {a.n} per condition")
    print("| condition | scenes | missed (twin) | fail, all joints | twin, all joints | seen joints: too few "
          "| fail, seen joints | twin, same joints | median PA-MPJPE seen / twin |")
    print("|---|---|---|---|---|---|---|---|---|")

    def rate(fail: np.ndarray, use: np.ndarray) -> str:
        k, m = int(fail[use].sum()), int(use.sum())
        lo, hi = wilson_interval(k, m)
        return f"{k / max(m, 1):.0%} [{lo:.0%}, {hi:.0%}] of {m}"

    record = {}
    for name, (U, which) in conditions(space, rng, a.n).items():
        runs = []
        for V in (U, twin(space, U)):
            samples = ev._render(space.to_params_batch(V))
            pred = checked_predict(ev.model, TargetBatch.from_samples(samples, with_ground_truth=ev.model.needs_ground_truth))
            failures = pred.failures or [None] * len(samples)
            runs.append((samples, pred, np.array([bool(f) and f.kind == "no_detection" for f in failures]),
                         np.array([bool(f) and f.kind != "no_detection" for f in failures])))
        (s_c, p_c, miss_c, broken_c), (s_t, p_t, miss_t, broken_t) = runs
        use = np.array([getattr(x, "plausible", True) for x in s_c]) & ~broken_c & ~broken_t
        seen = joints_seen(s_c, ev.joint_set, which)
        e = {}
        for key, (smp, pred, mask) in {"all": (s_c, p_c, None), "twin_all": (s_t, p_t, None),
                                        "seen": (s_c, p_c, seen), "twin_seen": (s_t, p_t, seen)}.items():
            e[key] = score_batch(pred, smp, ev.joint_set, ev.calibration, joint_mask=mask).pa_mpjpe * 1000.0
        miss = {"all": miss_c, "seen": miss_c, "twin_all": miss_t, "twin_seen": miss_t}
        fail = {k: miss[k] | (np.nan_to_num(v, nan=-1.0) > a.threshold) for k, v in e.items()}
        few = use & ~miss_c & ~np.isfinite(e["seen"])
        use_seen = use & ~few
        cells = [rate(fail["all"], use), rate(fail["twin_all"], use), str(int(few.sum())),
                 rate(fail["seen"], use_seen), rate(fail["twin_seen"], use_seen),
                 f"{np.nanmedian(e['seen'][use_seen]):.0f} / {np.nanmedian(e['twin_seen'][use_seen]):.0f}"]
        print(f"| {name} | {int(use.sum())} | {int(miss_c[use].sum())} ({int(miss_t[use].sum())}) | " + " | ".join(cells) + " |",
              flush=True)
        record[name] = {k: {"failing": int(fail[k][use_seen if "seen" in k else use].sum()),
                            "scored": int((use_seen if "seen" in k else use).sum())} for k in fail}
    ev.close()
    print(json.dumps({"model": a.model, "space": a.space, "n": a.n, "seed": a.seed, "threshold": a.threshold,
                      "conditions": record}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
