"""The failure threshold relative to the model's own accuracy.

A fixed threshold (PoseExaminer's PA-MPJPE > 90 mm) says little about a model whose
everyday error is 80 mm: it "fails" almost everywhere and its failure modes tile the
space. The default rule instead judges a scene against what the model achieves on easy
scenes of the same space:

    threshold = max(DEFAULT_THRESHOLDS[metric], REFERENCE_FACTOR x median error on the
                    reference set)

The reference set: REFERENCE_SCENES scenes of the run's own space with everything that
makes a scene hard held easy (pose near the prior's mean, camera in front and level,
person well framed and whole, no occluder, a well-lit scene) and the rest (body shape,
clothing, colours) drawn as the space draws them. Its seed is REFERENCE_SEED, the same
for every run seed, so that runs of one model and space with different seeds judge
against the same threshold (their modes can then be compared); its evaluations are
recorded in the run's meta.json, not in the evaluation log.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.params import DEG, ParamSpace, latent_to_u

REFERENCE_FACTOR = 2.0
REFERENCE_SCENES = 48
# Seeds the reference set; independent of the run seed (see the module docstring).
REFERENCE_SEED = 0
# Standard deviation (in prior sigmas) of the reference poses' latent values.
REFERENCE_LATENT_SIGMA = 0.5
# Physical values (or uniform ranges) of an easy scene, per dimension.
EASY_VALUES: dict[str, Any] = {
    "posture.tilt": (0.0, 15 * DEG),  # upright
    "camera.azimuth": (-30 * DEG, 30 * DEG),
    "camera.elevation": (0.0, 20 * DEG),
    "camera.framing": (0.6, 0.8),
    "camera.distance": (2.4, 3.2),
    "camera.fov_y": (45 * DEG, 55 * DEG),
    "camera.roll": 0.0,
    "camera.offset_x": 0.0,
    "camera.offset_y": 0.0,
    "camera.truncation": 0.0,
    "camera.truncation_side": "bottom",
    "occluder.kind": "none",
    "light.elevation": (30 * DEG, 60 * DEG),
    "light.intensity": (3.0, 5.0),
    "light.ambient": (0.25, 0.4),
    "light.azimuth": (-60 * DEG, 60 * DEG),
}
RULE_TEXT = "max({floor:g}, {factor:g} x the model's median {metric} on {n} easy reference scenes)"


def reference_vectors(space: ParamSpace, rng: np.random.Generator, n: int = REFERENCE_SCENES) -> np.ndarray:
    """(n, D) easy scenes of `space` (see the module docstring)."""
    from simulator.joints import neutral_pose

    U = space.sample(rng, n)
    has_latent = len(space.latent_index) > 0
    neutral = neutral_pose()
    for i, d in enumerate(space.dimensions):
        if d.is_latent:
            z = np.clip(rng.normal(0.0, REFERENCE_LATENT_SIGMA, n), d.low, d.high)
            U[:, i] = latent_to_u(z, d.low, d.high)
        elif d.group == "joints":
            # Offsets on a prior pose stay at zero; raw angles stand at the neutral pose.
            U[:, i] = 0.0 if has_latent else d.to_normalised(neutral[d.name.split(".", 1)[1]])
        elif d.name in EASY_VALUES:
            v = EASY_VALUES[d.name]
            if isinstance(v, tuple):
                U[:, i] = [d.to_normalised(x) for x in rng.uniform(v[0], v[1], n)]
            else:
                U[:, i] = d.to_normalised(v) if (d.choices is None or v in d.choices) else U[:, i]
    return np.clip(U, -1.0, 1.0)


def relative_threshold(evaluator: Any, space: ParamSpace, metric: str, floor: float,
                       seed: int = REFERENCE_SEED, n: int = REFERENCE_SCENES) -> dict[str, Any]:
    """Evaluate the reference set and return the rule's record: threshold, median, counts.

    Model errors and misses on the reference set are counted and left out of the median;
    when no reference scene scores, the threshold falls back to `floor`."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EF]))
    U = reference_vectors(space, rng, n)
    outcomes = evaluator.evaluate(U)
    values = [o.metrics.get(metric, o.error) for o in outcomes if not o.model_error and not o.missed]
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    median = float(np.median(values)) if values else float("nan")
    threshold = max(floor, REFERENCE_FACTOR * median) if values else floor
    return {
        "rule": RULE_TEXT.format(floor=floor, factor=REFERENCE_FACTOR, metric=metric, n=n),
        "threshold": round(threshold, 3),
        "reference_median": round(median, 3) if values else None,
        "reference_scored": len(values),
        "reference_model_errors": sum(o.model_error for o in outcomes),
        "reference_missed": sum(bool(o.missed) for o in outcomes),
        "reference_scenes": n,
        "factor": REFERENCE_FACTOR,
        "floor": floor,
        "seed": [seed, 0x5EF],
    }


def resolve_threshold(config: Any, model_spec: str, space: ParamSpace, evaluator: Any) -> tuple[Any, dict | None]:
    """The config with its threshold decided: an explicit threshold stays (absolute); else,
    for rendered targets and metrics with a default, the relative rule on `evaluator`.
    Returns (config, rule record or None)."""
    import dataclasses

    if config.threshold is not None or not uses_relative_threshold(model_spec, config.metric):
        return config, None
    from examiner.search.config import DEFAULT_THRESHOLDS

    rule = relative_threshold(evaluator, space, config.metric, DEFAULT_THRESHOLDS[config.metric])
    return dataclasses.replace(config, threshold=rule["threshold"]).validate(), rule


def uses_relative_threshold(model_spec: str, metric: str) -> bool:
    """The relative rule is the default for rendered targets and metrics with a default
    threshold (analytic targets have no scenes to be easy on)."""
    from examiner.search.config import DEFAULT_THRESHOLDS

    return not model_spec.startswith("analytic:") and metric in DEFAULT_THRESHOLDS


def most_space_fails_warning(failure_rate: float | None, uniform: bool = False) -> str | None:
    """The plain-words warning for a run in whose space the model mostly fails (the CLI and
    the report both print it). uniform: the rate is that of scenes drawn uniformly from the
    space after the search (the unbiased estimate; runs have it when
    `region.factor_samples` is on), else that of the search's proposals."""
    if failure_rate is None or failure_rate <= 0.5:
        return None
    what = "of scenes drawn uniformly from the space" if uniform else "of the search's proposals"
    return (f"{failure_rate:.0%} {what} fail: the model fails on most of this space, "
            "so its failure modes tile it rather than isolate conditions; narrow the space (--space: fewer groups, "
            "or ranges such as 'pose,camera,camera.truncation=0:0.1') or raise --threshold")


def children_metric_note(metric: str, dimension_names) -> str | None:
    """A note for a run whose space varies age and whose metric is in millimetres of the
    body's own size: a child's errors are fewer millimetres for the same relative error
    (MediaPipe: median PA-MPJPE 41 mm for 0-4-year-olds, 81 mm for adults, the scaled
    metric 83 and 83 mm; benchmarks/RESULTS-world.md), so children pass more often."""
    if metric not in ("pa_mpjpe", "mpjpe") or "shape.age" not in set(dimension_names):
        return None
    return (f"the space varies age and {metric} is in millimetres: children's smaller bodies make smaller errors, "
            "so they pass more often; --metric pa_mpjpe_scaled judges every body at an adult's size")
