"""Realistic bodies: `shape.height` is a stature percentile for age and sex (anny's
WHO-calibrated height distributions) and `shape.age` is searched uniformly in years."""

import numpy as np
import pytest

from simulator.params import ANNY_AGE_ANCHORS, AGE_YEARS_ANCHORS, ParamSpace, SceneParams, age_years
from simulator.stature import height_phenotype


def test_age_anchors_are_annys_own_mapping():
    torch = pytest.importorskip("torch")
    from anny.paths import get_anny_root_dir

    for sex in ("boys", "girls"):
        m = torch.load(get_anny_root_dir() / "data" / "shape_calibration" / f"{sex}.pth", weights_only=True,
                       map_location="cpu")["morphological_age_mapping"]
        assert np.allclose(m["anny_age_anchors"].numpy(), ANNY_AGE_ANCHORS)
        assert np.allclose(m["morphological_age_anchors"].numpy(), AGE_YEARS_ANCHORS)


def test_the_default_space_draws_ages_uniformly_in_years():
    space = ParamSpace.from_groups("shape")
    i = space.names.index("shape.age")
    U = np.random.default_rng(0).uniform(-1, 1, (4000, space.dim))
    years = age_years([p.shape["age"] for p in space.to_params_batch(U)])
    assert years.min() >= 2 - 1e-6 and years.max() <= 80 + 1e-6
    assert 0.17 < (years < 18).mean() < 0.25 and 0.53 < ((years >= 18) & (years < 64)).mean() < 0.65
    d = space.dimensions[i]
    for u in (-1.0, -0.3, 0.0, 0.6, 1.0):  # the normalised <-> physical maps invert each other
        assert d.to_normalised(d.to_physical(u)) == pytest.approx(u, abs=1e-9)
    assert d.format(d.to_physical(0.0)) == "41 years"


def test_height_percentile_is_monotone_and_interpolates_between_the_sexes():
    p = np.linspace(0, 1, 11)
    for age in (0.05, 0.3, 0.8):
        for g in (0.0, 1.0):
            h = height_phenotype(p, age, g)
            assert np.all(np.diff(h) > 0) and 0 < h[0] < h[-1] < 1
    mid = height_phenotype(0.5, 0.8, 0.5)
    assert mid == pytest.approx(0.5 * (height_phenotype(0.5, 0.8, 0.0) + height_phenotype(0.5, 0.8, 1.0)))


def _stature(body, age, gender, height):
    from simulator.renderer import pose_vector, shape_vector

    p = SceneParams(shape={"age": age, "gender": gender, "height": height})
    v = body.forward(pose_vector(p)[None], shape_vector(p)[None]).vertices[0]
    return float(np.ptp(v, axis=0).max())


def test_adult_statures_are_human():
    """Adults (anny age 0.8, ~41 years) at the 1st, 50th and 99th percentile: no giants
    (the raw phenotype reached 2.4 m) and no 1.1 m adults."""
    from simulator.body_model import get_body_model

    body = get_body_model("anny")
    men = [_stature(body, 0.8, 0.0, h) for h in (0.0, 0.5, 1.0)]
    women = [_stature(body, 0.8, 1.0, h) for h in (0.0, 0.5, 1.0)]
    assert 1.55 < men[0] < men[1] < men[2] < 2.05 and 1.72 < men[1] < 1.84
    assert 1.38 < women[0] < women[1] < women[2] < 1.86 and 1.55 < women[1] < 1.67
    assert 0.9 < _stature(body, 0.215, 0.0, 0.5) < 1.2  # a 4-year-old

