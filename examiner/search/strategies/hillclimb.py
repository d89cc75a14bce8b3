"""Hillclimb: the MARL environment and agents with PPO's learning switched off.

Everything MARL does except learning: the same K agents (`FailureSearchEnv`), the same
shared score with its claim penalty, the same restarts away from claimed regions, the
same accept rule (the anchor moves to a proposal that scores at least the anchor's minus
`env.accept_slack`), the same batched evaluation and region growing. The actions come
from the PPO policy as initialised (`ppo.log_std_init`, a near-zero mean), and
`PPO.train()` is never called, so every step is a Gaussian perturbation of the anchor:
K stochastic hill-climbers with restarts and a shared tabu archive.

It is the control that says what MARL's learning adds: if `marl` does no better than
`hillclimb` on evaluations to recall, the policy's learning adds nothing
(docs/search-baselines.md).
"""

from __future__ import annotations

from examiner.search.strategies.marl import MARLStrategy


class HillclimbStrategy(MARLStrategy):
    name = "hillclimb"
    learns = False  # no PPO.train(): the policy stays as initialised
