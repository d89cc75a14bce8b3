"""Progress events: what a progress display gets after each round."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class ProgressEvent:
    """What a progress display needs after each round."""

    evaluations: int
    budget: int
    failures: int
    modes: int
    evals_per_s: float
    rounds: int
    active_jobs: int
    replaying: bool
    strategy: str
    done: bool = False


class ProgressClock:
    """Evaluations per second since this process started on the run (replayed and
    restored evaluations excluded: `restart(n)` sets the count the rate starts from)."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._n0 = 0

    def restart(self, n_evals: int) -> None:
        self._n0 = n_evals

    def rate(self, n_evals: int) -> float:
        dt = time.perf_counter() - self._t0
        return (n_evals - self._n0) / dt if dt > 0 else 0.0


ProgressCallback = Callable[[ProgressEvent], None]
