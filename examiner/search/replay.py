"""Resume by replay: the evaluations logged after the last checkpoint are handed back
instead of evaluated again, each checked against what the restored search proposes."""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from examiner.search.errors import ResumeError
from examiner.search.outcome import Outcome
from examiner.search.records import outcome_from_record


class Replay:
    """The logged records still to replay, oldest first."""

    def __init__(self, records: Sequence[dict] = ()) -> None:
        self._queue: collections.deque[dict] = collections.deque(records)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def take(self, U: np.ndarray, meta: Sequence[tuple[int, str, int | None]], first: int) -> list[Outcome]:
        """Logged outcomes for the leading rows of U (evaluation numbers first, first+1,
        ...) while records remain; raises ResumeError when a row differs from its record
        (point, agent, phase or job)."""
        out: list[Outcome] = []
        while self._queue and len(out) < len(U):
            rec = self._queue.popleft()
            i = len(out)
            agent, phase, job = meta[i]
            expect = first + i
            if (
                rec["i"] != expect or rec["agent"] != agent or rec["phase"] != phase or rec.get("job") != job
                or not np.array_equal(np.asarray(rec["u"], dtype=np.float64), U[i])
            ):
                raise ResumeError(
                    f"cannot resume deterministically: evaluation #{expect} differs from the log "
                    f"({rec['phase']} by agent {rec['agent']} logged, {phase} by agent {agent} proposed); "
                    "the evaluator, code or environment changed since the run started"
                )
            out.append(outcome_from_record(rec))
        return out
