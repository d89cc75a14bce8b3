"""The strategy interface. A strategy proposes points; the `SearchSession` evaluates them
(with region growing, budget accounting and logging shared by all strategies).

Round-based strategies implement `ask() -> (P, agent_ids)` and `tell(P, scored)`; the
base class runs the loop and checkpoints every `checkpoint_every` rounds. A strategy that
drives its own loop (MARL, through stable-baselines3) overrides `run`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from examiner.search.config import SearchConfig
from examiner.search.scorer import Scored
from examiner.search.session import SearchSession
from simulator.params import ParamSpace


class Strategy:
    name: str = "base"

    def __init__(
        self,
        session: SearchSession,
        config: SearchConfig,
        space: ParamSpace,
        seed_seq: np.random.SeedSequence,
        agent_seqs: Sequence[np.random.SeedSequence],
    ) -> None:
        self.session = session
        self.cfg = config
        self.space = space
        self.dim = space.dim
        self.seed_seq = seed_seq
        self.agent_seqs = list(agent_seqs)
        self.checkpoint: Callable[[], None] = lambda: None

    # ---- round-based protocol ------------------------------------------------------------
    def round_size(self) -> int:
        raise NotImplementedError

    def ask(self) -> tuple[np.ndarray, list[int]]:
        raise NotImplementedError

    def tell(self, P: np.ndarray, scored: list[Scored]) -> None:
        raise NotImplementedError

    def run(self) -> None:
        rounds = 0
        while self.session.can_afford(self.round_size()):
            P, ids = self.ask()
            scored = self.session.evaluate_round(P, ids, self.name)
            self.tell(P, scored)
            rounds += 1
            if rounds % self.cfg.checkpoint_every == 0:
                self.checkpoint()

    # ---- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
