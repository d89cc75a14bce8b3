"""Evaluation records: the JSONL line the run store logs per evaluation, and outcomes
as they read back from it (so a fresh run and a replayed one compute with the same
values)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from examiner.search.outcome import Outcome
from examiner.search.scorer import Scored
from simulator.params import ParamSpace


def evaluation_record(i: int, round_: int, agent: int, phase: str, job: int | None, strategy: str, seed: int,
                      u: np.ndarray, space: ParamSpace, o: Outcome, s: Scored) -> dict[str, Any]:
    """The log record of evaluation number `i`."""
    return {
        # Evaluator extras first (e.g. "prediction", "joint_errors" that reports draw);
        # the search's own keys below always win.
        **(o.extra or {}),
        "i": i, "round": round_, "agent": agent, "phase": phase, "job": job,
        "strategy": strategy, "seed": seed, "u": u.tolist(),
        "params": space.to_params(u).to_dict(),
        "error": o.error, "value": s.value, "failed": s.failed, "metrics": o.metrics,
        "model_error": o.model_error, "model_error_message": o.model_error_message,
        "missed": o.missed, "plausible": o.plausible, "timings": o.timings,
    }


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def normalise(o: Outcome) -> Outcome:
    """The outcome as it reads back from the log (plain floats), so a fresh run and a
    replayed one compute with identical values."""
    return Outcome(
        error=_num(o.error) if o.error is not None else float("nan"),
        metrics={str(k): _num(v) if v is None or math.isfinite(float(v)) else float("nan") for k, v in o.metrics.items()},
        model_error=bool(o.model_error),
        model_error_message=None if o.model_error_message is None else str(o.model_error_message),
        plausible=bool(o.plausible),
        timings={str(k): float(v) for k, v in o.timings.items()},
        extra=o.extra,
        missed=bool(o.missed),
    )


def outcome_from_record(rec: dict) -> Outcome:
    """The outcome a logged record holds."""
    return Outcome(
        error=_num(rec.get("error")),
        metrics={k: _num(v) for k, v in (rec.get("metrics") or {}).items()},
        model_error=bool(rec["model_error"]),
        model_error_message=rec.get("model_error_message"),
        plausible=bool(rec["plausible"]),
        timings=dict(rec.get("timings") or {}),
        missed=bool(rec.get("missed", False)),
    )
