"""Uniform random search: each round, every agent draws one uniform point."""

from __future__ import annotations

from typing import Any

import numpy as np

from examiner.search.scorer import Scored
from examiner.search.strategies.base import Strategy


class RandomStrategy(Strategy):
    name = "random"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.rng = np.random.default_rng(self.seed_seq)

    def round_size(self) -> int:
        return self.cfg.agents

    def ask(self) -> tuple[np.ndarray, list[int]]:
        return self.rng.uniform(-1.0, 1.0, size=(self.cfg.agents, self.dim)), list(range(self.cfg.agents))

    def tell(self, P: np.ndarray, scored: list[Scored]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
