"""PoseExaminer-style REINFORCE bandit: one Gaussian policy over the normalised space.

Each round the policy N(mu, diag(sigma^2)) draws `agents` points (clipped to [-1, 1]); the
update is the score-function gradient with a mean baseline and normalised advantages,
applied with Adam. The policy restarts from a uniform mean when sigma collapses or after
`stall_rounds` without a better score (PoseExaminer's agents stop after one region; here
the claim penalty and restarts let one policy go on to the next region).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from examiner.search.scorer import Scored
from examiner.search.strategies.base import Strategy


class ReinforceStrategy(Strategy):
    name = "reinforce"
    stall_rounds = 25
    min_sigma = 0.02

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.rng = np.random.default_rng(self.seed_seq)
        self.restarts = 0
        self._restart()

    def _restart(self) -> None:
        self.mu = self.rng.uniform(-0.8, 0.8, size=self.dim)
        self.log_sigma = np.full(self.dim, np.log(self.cfg.reinforce_init_std))
        self.m = np.zeros(2 * self.dim)
        self.v = np.zeros(2 * self.dim)
        self.t = 0
        self.best = -np.inf
        self.stall = 0

    def round_size(self) -> int:
        return self.cfg.agents

    def ask(self) -> tuple[np.ndarray, list[int]]:
        self._eps = self.rng.standard_normal(size=(self.cfg.agents, self.dim))
        P = np.clip(self.mu + np.exp(self.log_sigma) * self._eps, -1.0, 1.0)
        return P, list(range(self.cfg.agents))

    def tell(self, P: np.ndarray, scored: list[Scored]) -> None:
        r = np.array([s.score for s in scored])
        adv = (r - r.mean()) / (r.std() + 1e-8)
        eps = self._eps
        # d log N / d mu = eps / sigma ; d log N / d log_sigma = eps^2 - 1
        g_mu = (adv[:, None] * eps / np.exp(self.log_sigma)).mean(axis=0)
        g_ls = (adv[:, None] * (eps**2 - 1.0)).mean(axis=0)
        g = np.concatenate([g_mu, g_ls])
        self.t += 1
        b1, b2, lr = 0.9, 0.999, self.cfg.reinforce_lr
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g * g
        step = lr * (self.m / (1 - b1**self.t)) / (np.sqrt(self.v / (1 - b2**self.t)) + 1e-8)
        self.mu = np.clip(self.mu + step[: self.dim], -1.0, 1.0)
        self.log_sigma = np.clip(self.log_sigma + step[self.dim:], np.log(1e-3), np.log(2.0))
        if r.max() > self.best + 1e-6:
            self.best, self.stall = float(r.max()), 0
        else:
            self.stall += 1
        if np.exp(self.log_sigma).mean() < self.min_sigma or self.stall >= self.stall_rounds:
            self.restarts += 1
            self._restart()

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("mu", "log_sigma", "m", "v", "t", "best", "stall", "restarts")} | {
            "rng": self.rng.bit_generator.state}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        for k in ("mu", "log_sigma", "m", "v", "t", "best", "stall", "restarts"):
            setattr(self, k, s[k])
        self.rng.bit_generator.state = s["rng"]
