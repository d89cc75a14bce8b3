"""Pretrain the MARL policy offline across drawn analytic targets (issue 20).

    nice -n 10 python scripts/train_policy.py                       # assets/policy/marl-35d.npz
    python scripts/train_policy.py --layouts 4 --budget 600 --out /tmp/p.npz   # a smoke run

One shared PPO policy (the `marl` strategy's, same environment, observation, reward,
region growing and budget accounting) is trained on `analytic:drawn?layout=L` for
L = first_layout .. first_layout + layouts - 1 in turn: each layout is one search run of
`--budget` evaluations whose policy and Adam state start where the previous layout's
ended. The layouts default to 1000 and up, disjoint from the benchmark's evaluation
layouts (0-19, benchmarks/bench_search_recall.py). Run l uses seed `seed * 100000 + L`,
so the same command writes the same weights (CPU, one torch thread; nothing depends on
wall time). The weights are written as a plain .npz (examiner/search/policy_weights.py;
loaded without pickle) with the layout range, budget, seed and PPO settings in its
metadata; `--every` also writes the file every that many layouts.

Progress: one line per layout (regions recalled, evaluations to the last recalled
region, mean search reward).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from examiner.search import SearchConfig, build_evaluator
from examiner.search.drawn_targets import planted_boxes
from examiner.search.env import OBS_VERSION
from examiner.search.policy_weights import DEFAULT_POLICY, save_policy
from examiner.search.runner import _seeds
from examiner.search.session import SearchSession
from examiner.search.strategies.marl import MARLStrategy
from simulator.params import ParamSpace


def recalled(session: SearchSession, boxes) -> int:
    """Planted regions whose centre lies in some accepted mode's box (a quick progress
    count; the benchmark's recall rule is examiner.search.recall)."""
    modes = session.modes.modes
    n = 0
    for _, lo, hi in boxes:
        c = (lo + hi) / 2.0
        n += any(np.all((c >= m.lo) & (c <= m.hi)) for m in modes)
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layouts", type=int, default=120, help="drawn layouts to train on (default 120)")
    p.add_argument("--first-layout", type=int, default=1000, help="first training layout (default 1000)")
    p.add_argument("--budget", type=int, default=2000, help="evaluations per layout (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agents", type=int, default=8)
    p.add_argument("--space", default="pose,shape,camera")
    p.add_argument("--reward", default="gain", choices=("gain", "score"),
                   help="env.reward while pretraining (default gain; runs that load the policy should use the same)")
    p.add_argument("--hide-anchor", action="store_true", help="env.observe_anchor False while pretraining")
    p.add_argument("--learning-rate", type=float, default=None, help="ppo.learning_rate (default: the config's)")
    p.add_argument("--out", default=str(DEFAULT_POLICY))
    p.add_argument("--every", type=int, default=20, help="also write the weights every N layouts (0: only at the end)")
    args = p.parse_args(argv)
    if args.layouts < 1 or args.budget < 10 * args.agents or args.first_layout < 0 or args.seed < 0:
        p.error("--layouts >= 1, --budget >= 10 x agents, --first-layout >= 0 and --seed >= 0")
    if args.first_layout < 20 < args.first_layout + args.layouts or args.first_layout < 20:
        print("warning: training layouts overlap the benchmark's evaluation layouts 0-19", file=sys.stderr)

    space = ParamSpace.from_groups(args.space)
    base = SearchConfig(strategy="marl", budget=args.budget, agents=args.agents, space=args.space)
    base = base.replace(env=dataclasses.replace(base.env, reward=args.reward, observe_anchor=not args.hide_anchor))
    if args.learning_rate is not None:
        base = base.replace(ppo=dataclasses.replace(base.ppo, learning_rate=args.learning_rate))
    command = "python scripts/train_policy.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    meta = {
        "obs_version": OBS_VERSION, "dim": space.dim, "agents": args.agents, "net_arch": list(base.ppo.net_arch),
        "space": args.space,
        "training": {
            "targets": f"analytic:drawn?layout=L for L in [{args.first_layout}, {args.first_layout + args.layouts})",
            "budget_per_layout": args.budget, "seed": args.seed, "ppo": dataclasses.asdict(base.ppo),
            "env": dataclasses.asdict(base.env), "command": command,
        },
    }
    policy_state = optim_state = None
    t0 = time.process_time()
    total_recalled = total_planted = 0
    for i, layout in enumerate(range(args.first_layout, args.first_layout + args.layouts)):
        cfg = base.replace(seed=args.seed * 100_000 + layout).validate()
        spec = f"analytic:drawn?layout={layout}"
        ev = build_evaluator(spec, space)
        boxes = planted_boxes(ev)
        session_seq, strategy_seq, agent_seqs, _ = _seeds(cfg)
        session = SearchSession(cfg, space, ev, None, session_seq)
        strat = MARLStrategy(session, cfg, space, strategy_seq, agent_seqs)
        if policy_state is not None:
            strat.model.policy.load_state_dict(policy_state)
            strat.model.policy.optimizer.load_state_dict(optim_state)
        rewards: list[float] = []
        buf = strat.model.rollout_buffer
        orig_add = buf.add

        def add(*a, **kw):  # the search reward of every transition, for the progress line
            rewards.append(float(np.mean(kw["reward"] if "reward" in kw else a[2])))
            return orig_add(*a, **kw)

        buf.add = add
        strat.run()
        policy_state = {k: v.clone() for k, v in strat.model.policy.state_dict().items()}
        optim_state = strat.model.policy.optimizer.state_dict()
        found = recalled(session, boxes)
        total_recalled += found
        total_planted += len(boxes)
        cpu = time.process_time() - t0
        print(f"[{i + 1}/{args.layouts}] layout {layout}: {found}/{len(boxes)} regions, "
              f"{session.n_evals} evaluations, mean search reward {np.mean(rewards) if rewards else float('nan'):+.3f}, "
              f"{strat.updates} PPO updates, cpu {cpu:.0f} s", flush=True)
        if args.every and (i + 1) % args.every == 0 and i + 1 < args.layouts:
            save_policy(args.out, strat.model.policy, {**meta, "layouts_done": i + 1})
    save_policy(args.out, strat.model.policy, {**meta, "layouts_done": args.layouts})
    print(f"wrote {args.out}: {args.layouts} layouts, {total_recalled}/{total_planted} regions recalled during "
          f"training, {time.process_time() - t0:.0f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
