"""A uniform control of another size for a finished `bench_finetune.py` folder (issue 18).

The loop's set of N scenes with K in its modes holds N - K uniform ones; is what it loses
off the modes against the N-scene uniform control the mode scenes' doing, or only the K
uniform scenes it lacks? This trains the control on N - K uniform scenes (the same
generator, recipe and evaluator options) and scores it exactly as the bench does: round
1's modes (same fresh samples) and the stress set (same scenes, paired outcomes).

    PYTHONPATH=. nice -n 10 python benchmarks/finetune_control_size.py --bench /work/runs/ft18s1 --n 19200

Writes BENCH/control_<n>/result.json and prints the numbers beside the bench's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="a finished bench_finetune.py --out folder")
    ap.add_argument("--n", type=int, required=True, help="uniform scenes in the control")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_finetune import cached, paired_line, stress_eval, train_uniform_control
    from examiner.app.loop import _rates_on
    from examiner.training.finetune import FinetuneConfig

    bench = Path(args.bench)
    res = json.loads((bench / "bench.json").read_text())
    a, thr = res["args"], res["threshold"]
    run1 = res["loop"]["rounds"][0]["examine"]["run"]
    out = bench / f"control_{args.n}"
    out.mkdir(exist_ok=True)
    cfg = FinetuneConfig(seed=a["seed"], **({} if a.get("epochs") is None else {"epochs": a["epochs"]}))

    ctrl = cached(out / "control.json", lambda: train_uniform_control(run1, out, args.n, a["seed"], a["model"], cfg,
                                                                      args.workers))
    stress = cached(out / "stress.json", lambda: stress_eval(run1, ctrl["model"], a["stress"], a["seed"] + 4242, thr))
    modes = cached(out / "modes.json", lambda: _rates_on(run1, ctrl["model"], a["samples"], a["seed"]))
    result = {"n": args.n, "control": ctrl, "stress": stress, "modes": modes}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    ev = ctrl["everyday"]
    print(f"control of {args.n} uniform scenes: modes " + ", ".join(f"{x['k']}/{x['n']} ({x['rate']:.0%}, median "
                                                                    f"{x['median']:.0f} mm)" for x in modes)
          + f"; stress {stress['failing']}/{stress['n']} ({stress['rate']:.1%}); everyday "
          f"{ev['before']['mpjpe_mm']:.1f} -> {ev['after']['mpjpe_mm']:.1f} mm")
    for name in ("loop round 1", "control (uniform)"):
        other = res["stress"].get(name)
        if other and other.get("outcomes"):
            print("".join(paired_line(other["outcomes"], stress["outcomes"], f"{name} minus this control, stress set",
                                      a_name=name, b_name="this control")))


if __name__ == "__main__":
    main()
