"""Body size and the size-rescaled PA-MPJPE (`pa_mpjpe_scaled`) on real renders."""

from __future__ import annotations

import numpy as np
import pytest

from examiner.scoring import REFERENCE_AGE_YEARS, REFERENCE_SIZE, body_size, ground_truth, score_batch
from examiner.targets.base import Prediction
from simulator.params import ParamSpace, SceneParams, anny_age
from simulator.renderer import render


def _aged(years: float, base: SceneParams | None = None) -> SceneParams:
    base = base or SceneParams()
    return base.replace(shape={**base.shape, "age": float(anny_age(years))})


@pytest.fixture(scope="module")
def samples():
    space = ParamSpace.from_groups("pose")
    posed = space.to_params(space.sample(np.random.default_rng(3), 1)[0])
    scenes = [_aged(REFERENCE_AGE_YEARS), _aged(REFERENCE_AGE_YEARS, posed), _aged(3.0)]
    return [render(s) for s in scenes]


def test_reference_size_is_the_reference_adults(samples):
    size = body_size(ground_truth(samples))
    assert size[0] == pytest.approx(REFERENCE_SIZE, rel=0.005)
    # pose barely changes it (segments between joints), age does
    assert size[1] == pytest.approx(size[0], rel=0.03)
    assert size[2] < 0.6 * size[0]


def test_scaled_error_is_the_same_for_errors_proportional_to_size(samples):
    """A prediction off by the same pattern relative to each body's size has the same
    pa_mpjpe_scaled on a toddler and an adult, while its PA-MPJPE in mm differs by the
    ratio of their sizes."""
    gt = ground_truth([samples[0], samples[2]])
    rng = np.random.default_rng(0)
    pattern = rng.normal(0.0, 0.03, size=gt.xyz.shape[1:])
    pred3d = gt.xyz + pattern[None] * (gt_size := body_size(gt))[:, None, None] / REFERENCE_SIZE
    s = score_batch(Prediction("common12", joints3d=pred3d.astype(np.float32)), [samples[0], samples[2]])
    assert s.pa_mpjpe_scaled[0] == pytest.approx(s.pa_mpjpe_scaled[1], rel=0.01)  # Procrustes sees the proportions
    assert s.pa_mpjpe[1] / s.pa_mpjpe[0] == pytest.approx(gt_size[1] / gt_size[0], rel=0.01)
    assert s.pa_mpjpe[1] < 0.6 * s.pa_mpjpe[0]


def test_scaled_metric_is_a_search_metric():
    from examiner.search.config import DEFAULT_THRESHOLDS
    from examiner.search.sim_evaluator import METRICS_3D

    assert "pa_mpjpe_scaled" in METRICS_3D and DEFAULT_THRESHOLDS["pa_mpjpe_scaled"] == 90.0


def test_a_space_with_children_and_a_millimetre_metric_gets_a_note():
    from examiner.search.reference import children_metric_note

    note = children_metric_note("pa_mpjpe", ["pose.z01", "shape.age"])
    assert note and "--metric pa_mpjpe_scaled" in note and "\n" not in note
    assert children_metric_note("pa_mpjpe_scaled", ["shape.age"]) is None  # judged at an adult's size
    assert children_metric_note("pa_mpjpe", ["pose.z01", "camera.azimuth"]) is None  # no age in the space
    assert children_metric_note("pck_miss", ["shape.age"]) is None  # image-relative already
