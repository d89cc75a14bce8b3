"""What a step rule could buy hillclimb (issue 20): a fixed guided step instead of PPO's draw.

An experiment, not a feature: it replaces `FailureSearchEnv.propose` in this process with

    step = m * 0.5 * max_step * sqrt(D) * unit((1 - w) * e + w * g)

(e a random unit direction from the agent's own generator, g the unit vector of the
environment's running gradient estimate, the same estimate the MARL observation carries;
0.5 * max_step * sqrt(D) is about the length of the steps PPO's initial policy takes) and
runs `hillclimb` (MARL's loop with learning off) on the drawn analytic layouts of
bench_search_recall.py. A policy that chooses only these two numbers (w, m), per step,
cannot drift in a fixed direction the way the pretrained policies did
(benchmarks/RESULTS-search-recall.md, "Pretrained policy"); the best fixed pair says
roughly how much such a policy could gain.

    python benchmarks/guided_step_grid.py --seeds 10 --budget 6000                  # PPO's own steps
    python benchmarks/guided_step_grid.py --seeds 10 --budget 6000 --w 0.5 --m 1.0  # a fixed rule

Prints evaluations to 90% recall per layout (the budget where not reached) and the mean.
Counts evaluations, never time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_search_recall as bench  # noqa: E402
from examiner.search import env as env_module  # noqa: E402
from simulator.params import ParamSpace  # noqa: E402


def guided_propose(w: float, m: float):
    def propose(self, action):
        d = self.dim
        length = 0.5 * self.cfg.env.max_step * np.sqrt(d) * m
        e = self.np_random.normal(size=d)
        e /= np.linalg.norm(e)
        g = self.grad
        n = float(np.linalg.norm(g))
        direction = (1.0 - w) * e + w * (g / n if n > 1e-9 else e)
        direction /= max(float(np.linalg.norm(direction)), 1e-12)
        self._proposal = np.clip(self.anchor + length * direction, -1.0, 1.0)
        return self._proposal
    return propose


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--w", type=float, default=None, help="weight of the gradient direction (default: PPO's own steps)")
    p.add_argument("--m", type=float, default=1.0, help="step length multiplier")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=6000)
    p.add_argument("--strategy", default="hillclimb")
    args = p.parse_args(argv)
    if args.w is not None:
        env_module.FailureSearchEnv.propose = guided_propose(args.w, args.m)
    ns = argparse.Namespace(target="analytic", budget=args.budget, agents=8, space="pose,shape,camera",
                            pretrained="default", reward=None, hide_anchor=False, bisection_tol=None,
                            probe_group=None, growth=None, edge_fraction=None, early_verify=None, shrink=None,
                            simplify=None, ppo=None)
    space = ParamSpace.from_groups(ns.space)
    to90 = []
    for seed in range(args.seeds):
        row = bench.run_one(args.strategy, seed, ns, space)
        to90.append(row["to_90"] if row["to_90"] is not None else args.budget)
    print(json.dumps({"w": args.w, "m": args.m, "strategy": args.strategy, "to_90": to90,
                      "mean": float(np.mean(to90))}))


if __name__ == "__main__":
    main()
