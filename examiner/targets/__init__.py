"""Target models: the adapter protocol, the spec-string registry and the built-in targets.

    from examiner.targets import load_target, TargetBatch, checked_predict
    with load_target("mediapipe") as model:
        pred = checked_predict(model, TargetBatch.from_samples(samples))
"""

from examiner.targets.base import (
    FAILURE_KINDS,
    OUTPUT_KINDS,
    ModelFailure,
    Prediction,
    TargetBatch,
    TargetError,
    TargetModel,
    checked_predict,
)
from examiner.targets.registry import Adapter, available_adapters, load_target, parse_spec, register_adapter

__all__ = [
    "FAILURE_KINDS",
    "OUTPUT_KINDS",
    "Adapter",
    "ModelFailure",
    "Prediction",
    "TargetBatch",
    "TargetError",
    "TargetModel",
    "available_adapters",
    "checked_predict",
    "load_target",
    "parse_spec",
    "register_adapter",
]
