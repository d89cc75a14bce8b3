"""Clothed scenes through the renderer: clothing mask, parts underneath, keypoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.garments.spec import ClothingParams
from simulator.params import ParamSpace, SceneParams

BODY_ONLY = {3, 4, 5, 6, 23, 24}  # hands, feet, head: never under a garment


@pytest.fixture(scope="module")
def renderer():
    from simulator.renderer import get_renderer

    return get_renderer()


def _scene(**clothing):
    return SceneParams(clothing=ClothingParams(**clothing)).with_values({"pose.l_shoulder_abduction": math.radians(40)})


def test_clothed_render_has_an_exact_clothing_mask(renderer):
    bare = renderer.render(_scene())
    dressed = renderer.render(_scene(upper="t-shirt", lower="pants", upper_pattern="stripes"))
    cm = dressed.clothing_mask
    assert cm.dtype == bool and cm.shape == dressed.mask.shape
    assert cm.mean() > 0.02 and not bare.clothing_mask.any()
    assert np.all(dressed.mask[cm])  # the person mask includes clothing
    assert np.array_equal(dressed.parts > 0, dressed.mask)
    under = set(np.unique(dressed.parts[cm]).tolist())
    assert {1, 2} <= under or {2} <= under  # torso under the shirt
    assert not (under & BODY_ONLY)
    assert (dressed.parts[cm] >= 7).any()  # legs under the trousers
    # Keypoints come from the body underneath.
    for conv in bare.keypoints:
        np.testing.assert_allclose(dressed.keypoints[conv].xy, bare.keypoints[conv].xy, atol=1e-4)
    # Cloth is coloured: pixels under the garment differ from the bare skin render.
    assert np.abs(dressed.rgb[cm].astype(int) - bare.rgb[cm].astype(int)).mean() > 20


def test_undressing_restores_the_bare_render(renderer):
    a = renderer.render(_scene())
    renderer.render(_scene(upper="shirt", lower="skirt"))
    b = renderer.render(_scene())
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.parts, b.parts) and not b.clothing_mask.any()


def test_long_sleeves_cover_the_forearms_in_the_image(renderer):
    short = renderer.render(_scene(upper="shirt", sleeve_length=0.0))
    long = renderer.render(_scene(upper="shirt", sleeve_length=1.0))
    forearm = [19, 20, 21, 22]
    n = lambda s: np.isin(s.parts[s.clothing_mask], forearm).sum()  # noqa: E731
    assert n(long) > n(short) + 20


def test_skirt_covers_the_thighs(renderer):
    s = renderer.render(_scene(lower="skirt", lower_length=0.8, lower_looseness=0.8))
    ys = np.nonzero(s.clothing_mask)[0]
    knee_y = s.keypoints["coco17"].xy[13, 1]
    assert ys.max() > knee_y  # a long skirt reaches below the knees
    assert s.clothing_mask.sum() > 500


def test_clothing_space_renders(renderer):
    space = ParamSpace.from_groups("clothing")
    for u in space.sample(np.random.default_rng(4), 3):
        p = space.to_params(u)
        s = renderer.render(p)
        assert s.clothing_mask.any() == p.clothing.worn
        assert SceneParams.from_json(p.to_json()) == p
