"""The `Evaluator` contract between the search and whatever scores a scene: `Outcome`
(one scene's result), the `Evaluator` protocol and `check_outcomes`.

Implementations: the analytic targets (`examiner.search.analytic`) and the real
render -> model -> metric evaluator (`examiner.search.sim_evaluator`); a model spec names
one of them (`examiner.search.factory.build_evaluator`). Evaluators are batched: the
search hands one all agents' proposals of a round in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from examiner.search.errors import EvaluatorError


@dataclass
class Outcome:
    """The result of evaluating one scene.

    error: the evaluator's primary failure metric (e.g. PA-MPJPE in mm); NaN when
        model_error or missed. `metrics` holds every metric by name (the search's `metric` option
        picks one of them).
    plausible: False for scenes that are not humanly plausible; they are penalised and
        never count as failures.
    timings: seconds per stage ("render", "model", ...).
    extra: JSON-able data for reports, not used by the search: the simulator evaluator
        stores "prediction" ({"convention": name, "<name>_xy": [[x, y] | None, ...]},
        pixels) and "joint_errors" ({"joints": [...], "mm": [...], "px": [...]}).
    missed: the model ran and reported no person in a scene that has one (e.g. MediaPipe's
        "no_detection"): a failure of the model whatever the threshold, not a model error.
    """

    error: float
    metrics: dict[str, float] = field(default_factory=dict)
    model_error: bool = False
    model_error_message: str | None = None
    plausible: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    missed: bool = False


@runtime_checkable
class Evaluator(Protocol):
    """Scores a batch of normalised parameter vectors.

    evaluate(U): U is (N, D) float64 in [-1, 1] (rows are `ParamSpace` vectors); returns
    N `Outcome`s in row order. Must be deterministic per row (the same vector gives the
    same outcome whatever the batch it is in) for runs to be reproducible.
    """

    def evaluate(self, U: np.ndarray) -> list[Outcome]: ...


def check_outcomes(outcomes: Sequence[Outcome], n: int) -> list[Outcome]:
    """Validate an evaluator's answer; raise EvaluatorError naming the problem."""
    if not isinstance(outcomes, Sequence) or len(outcomes) != n:
        got = len(outcomes) if isinstance(outcomes, Sequence) else type(outcomes).__name__
        raise EvaluatorError(f"evaluator returned {got} outcomes for a batch of {n}; it must return one per row")
    for o in outcomes:
        if not isinstance(o, Outcome):
            raise EvaluatorError(f"evaluator returned a {type(o).__name__}, expected examiner.search.Outcome")
    return list(outcomes)

