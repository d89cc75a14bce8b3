"""The shared failure definition and reward shaping every strategy sees: `judge` (one
failure definition), `Scorer` (value, score and claim-distance penalty of each outcome)
and `Scored` (what a strategy gets back per proposal)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from examiner.search.archive import FailureArchive
from examiner.search.config import SearchConfig
from examiner.search.errors import EvaluatorError
from examiner.search.outcome import Outcome


@dataclass
class Scored:
    """A scored outcome. value: the failure metric (NaN on model error); score: the shaped
    objective every strategy maximises (see Scorer); new_failure: failed and not inside a
    claimed region."""

    value: float
    score: float
    failed: bool
    claimed: bool
    new_failure: bool
    plausible: bool
    model_error: bool
    claim_proximity: float
    joint_concentration: float = 0.0


def joint_concentration(o: Outcome) -> float:
    """max / mean - 1 of the outcome's per-joint errors in mm (0 without them)."""
    je = o.extra.get("joint_errors") if isinstance(o.extra, dict) else None
    mm = je.get("mm") if isinstance(je, dict) else None
    if not mm:
        return 0.0
    v = np.array([x for x in mm if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0 or v.mean() <= 0:
        return 0.0
    return float(v.max() / v.mean() - 1.0)


def judge(o: Outcome, value: float, threshold: float) -> tuple[bool, bool]:
    """(unusable, failed) for an outcome whose metric value is `value`: the one failure
    definition (a plausible scene without a model error whose value exceeds the
    threshold, or where the model found no person)."""
    missed = bool(o.missed) and not o.model_error
    err = bool(o.model_error) or (not math.isfinite(value) and not missed)
    return err, bool(o.plausible) and not err and (missed or value > threshold)


class Scorer:
    """The shared failure definition and reward shaping.

    failed = plausible and not model_error and (missed or value > threshold)
    score  = clip((value - threshold) / scale, -1, 1)        (-1 for model errors, +1 for misses)
             - implausible_penalty * (not plausible)
             - claim_penalty * proximity to claimed regions   (claim-distance penalty)
    """

    def __init__(self, config: SearchConfig, archive: FailureArchive) -> None:
        self.metric = config.metric
        self.threshold = config.failure_threshold
        env = config.env
        self.scale = float(env.score_scale) if env.score_scale else abs(self.threshold) or 1.0
        self.claim_penalty = env.claim_penalty
        self.implausible_penalty = env.implausible_penalty
        self.archive = archive

    def value(self, o: Outcome) -> float:
        """The run's metric of `o`: `o.metrics[metric]`, NaN for a model error or a miss.
        It is also `o.error` (the evaluator is built for the run's metric); an outcome
        where the two differ raises EvaluatorError, so they cannot disagree."""
        if o.model_error:
            return float("nan")
        if o.missed:
            return float("nan")
        if self.metric in o.metrics:
            value = float(o.metrics[self.metric])
            if math.isfinite(o.error) and math.isfinite(value) and o.error != value:
                raise EvaluatorError(
                    f"the evaluator's error ({o.error:g}) is not its {self.metric} ({value:g}): it was built for another "
                    f"metric; build it for the run's (EvaluatorFactory(..., metric=...), no other sim.metric in the spec)"
                )
            return value
        raise EvaluatorError(
            f"the evaluator reports no metric {self.metric!r} (it reports: {', '.join(sorted(o.metrics)) or 'none'}); "
            "pass --metric with one of those"
        )

    def score(self, U: np.ndarray, outcomes: Sequence[Outcome]) -> list[Scored]:
        U = np.atleast_2d(U)
        prox = self.archive.proximity(U)
        claimed = self.archive.claimed(U)
        out = []
        for o, p, c in zip(outcomes, prox, claimed):
            v = self.value(o)
            ok = bool(o.plausible)
            missed = bool(o.missed) and not o.model_error
            err, failed = judge(o, v, self.threshold)
            if err:
                s = -1.0
            else:
                s = 1.0 if missed else float(np.clip((v - self.threshold) / self.scale, -1.0, 1.0))
            if not ok:
                s -= self.implausible_penalty
            s -= self.claim_penalty * float(p)
            out.append(Scored(v, s, failed, bool(c), failed and not bool(c), ok, err, float(p), joint_concentration(o)))
        return out
