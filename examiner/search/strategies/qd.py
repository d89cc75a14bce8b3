"""Quality-diversity search (CMA-ME, pyribs) on the shared score.

Each round the pyribs `Scheduler` asks its CMA-ES emitters for solutions, the session
evaluates them (with region growing, budget accounting and the run store shared by every
strategy), and the scores go back with each solution's measures. The emitters rank by
improvement of the archive (`2imp`: new cells first, then gains in a cell), which is
CMA-ME (Fontaine et al. 2020); an emitter restarts from an archive elite when it stops
improving the archive.

Objective: the shared score (error above threshold, less the claim and implausibility
penalties), so claimed regions repel QD the way they repel every strategy.

Measure space (docs/search-baselines.md has the reasoning), for a space of D continuous
dimensions:
  1. which dimension is at its most extreme value: argmax_i |u_i| (D bins);
  2. at which end: the sign of that coordinate (2 bins);
  3. viewpoint: `camera.azimuth` (6 bins), when the space has it.
That is "which body part (or camera or shape parameter) is at an extreme, seen from
where": the archive keeps the best scene for each extreme parameter, end and viewpoint,
so the emitters are pushed to fail in many different ways rather than one.

Solutions are clipped to [-1, 1] for evaluation (the emitters get no bounds: pyribs
would resample out-of-bounds solutions, up to forever near a corner), as `cmaes` does.

pyribs draws from its own generators, seeded here from the strategy's seed sequence; the
whole scheduler (archive, emitters, their CMA-ES states and generators) is pickled into
checkpoints, so a resumed run asks the same solutions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from examiner.search.session import Scored
from examiner.search.strategies.base import Strategy


class QDStrategy(Strategy):
    name = "qd"
    n_emitters = 2
    azimuth_bins = 6

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        try:
            from ribs.archives import GridArchive
            from ribs.emitters import EvolutionStrategyEmitter
            from ribs.schedulers import Scheduler
        except ImportError:  # pragma: no cover - a core dependency
            from examiner.search.errors import SearchConfigError

            raise SearchConfigError("strategy 'qd' needs pyribs; install it with `pip install ribs==0.12.0`") from None
        self.rng = np.random.default_rng(self.seed_seq)
        names = list(self.space.names)
        self.cont = np.array([d.choices is None for d in self.space.dimensions])
        self.azimuth = names.index("camera.azimuth") if "camera.azimuth" in names else None
        dims = [self.dim, 2] + ([self.azimuth_bins] if self.azimuth is not None else [])
        ranges = [(0.0, float(self.dim)), (-1.0, 1.0)] + ([(-1.0, 1.0)] if self.azimuth is not None else [])
        archive = GridArchive(solution_dim=self.dim, dims=dims, ranges=ranges, seed=self._seed())
        self.batch = max(math.ceil(self.cfg.agents / self.n_emitters), 4 + int(3 * math.log(self.dim)) // 2)
        emitters = [
            EvolutionStrategyEmitter(
                archive, x0=self.rng.uniform(-0.9, 0.9, size=self.dim), sigma0=self.cfg.cmaes_sigma0,
                ranker="2imp", batch_size=self.batch, seed=self._seed(),
            )
            for _ in range(self.n_emitters)
        ]
        self.scheduler = Scheduler(archive, emitters)

    def _seed(self) -> int:
        return int(self.rng.integers(1, 2**31 - 1))

    def measures(self, P: np.ndarray) -> np.ndarray:
        """(N, 2 or 3) measures of solutions P (see the module docstring)."""
        A = np.where(self.cont[None, :], np.abs(P), -1.0)
        idx = np.argmax(A, axis=1)
        cols = [idx + 0.5, np.sign(P[np.arange(len(P)), idx]) * 0.5]
        if self.azimuth is not None:
            cols.append(P[:, self.azimuth])
        return np.stack(cols, axis=1).astype(np.float64)

    def round_size(self) -> int:
        return self.batch * self.n_emitters

    def ask(self) -> tuple[np.ndarray, list[int]]:
        P = np.clip(np.asarray(self.scheduler.ask(), dtype=np.float64), -1.0, 1.0)
        # One "agent" per emitter (the run store's agent column).
        return P, [i // self.batch for i in range(len(P))]

    def tell(self, P: np.ndarray, scored: list[Scored]) -> None:
        scores = np.array([s.score for s in scored], dtype=np.float64)
        self.scheduler.tell(scores, self.measures(P))

    @property
    def archive(self):
        return self.scheduler.archive

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "scheduler": self.scheduler}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.scheduler = s["scheduler"]
