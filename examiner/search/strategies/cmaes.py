"""CMA-ES (the `cma` package) on the shared score, with restarts.

One evolution strategy at a time, population = max(agents, cma's default). It maximises
the same shaped score as every strategy (so claimed regions repel it); it restarts from a
new uniform point when `cma` reports convergence or after `stall_generations` without a
better score. `cma` samples from numpy's global generator: each call runs inside this
strategy's own scoped global state (no global seeding leaks out).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from examiner.search.rng import GlobalRNGState, child_seed_int, scoped_global_rng
from examiner.search.scorer import Scored
from examiner.search.strategies.base import Strategy


def _global_randn(*shape: int) -> np.ndarray:
    """cma's sampler, by reference: a bound `np.random.randn` would pickle a private copy
    of the global RandomState into checkpoints and stop following the scoped state."""
    return np.random.randn(*shape)


class CMAESStrategy(Strategy):
    name = "cmaes"
    stall_generations = 15

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        import cma  # noqa: F401  (a core dependency; fail early if missing)

        self.rng = np.random.default_rng(self.seed_seq)
        self.rng_state = GlobalRNGState.from_seed(child_seed_int(self.seed_seq.spawn(1)[0]))
        self.popsize = max(self.cfg.agents, 4 + int(3 * math.log(self.dim)))
        self.restarts = 0
        self._new_es()

    def _new_es(self) -> None:
        import cma

        x0 = self.rng.uniform(-0.9, 0.9, size=self.dim)
        seed = int(self.rng.integers(1, 2**31 - 1))
        opts = {"bounds": [-1.0, 1.0], "popsize": self.popsize, "seed": seed, "verbose": -9,
                "verb_log": 0, "verb_disp": 0, "randn": _global_randn, "tolfun": 1e-4, "tolx": 1e-3}
        with scoped_global_rng(self.rng_state):
            self.es = cma.CMAEvolutionStrategy(x0, self.cfg.cmaes_sigma0, opts)
        self.best = -np.inf
        self.stall = 0

    def round_size(self) -> int:
        return self.popsize

    def ask(self) -> tuple[np.ndarray, list[int]]:
        with scoped_global_rng(self.rng_state):
            self._asked = self.es.ask()
        P = np.clip(np.array(self._asked, dtype=np.float64), -1.0, 1.0)
        return P, [0] * len(P)

    def tell(self, P: np.ndarray, scored: list[Scored]) -> None:
        scores = np.array([s.score for s in scored])
        with scoped_global_rng(self.rng_state):
            self.es.tell(self._asked, list(-scores))
        if scores.max() > self.best + 1e-6:
            self.best, self.stall = float(scores.max()), 0
        else:
            self.stall += 1
        if self.es.stop() or self.stall >= self.stall_generations:
            self.restarts += 1
            self._new_es()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "rng_state": self.rng_state, "es": self.es,
                "best": self.best, "stall": self.stall, "restarts": self.restarts}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.rng_state, self.es = s["rng_state"], s["es"]
        self.best, self.stall, self.restarts = s["best"], s["stall"], s["restarts"]
