"""A mode's words against its constraint test (reports.report.description_check): a
described property that comes with a constraint the failure does not need alone is
flagged; one whose constraint matters, or whose removal makes the model fail clearly
less, is not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from reports.posecodes import region_description
from reports.report import description_check
from simulator.params import ParamSpace

SPACE = ParamSpace.from_groups("camera")
TR = SPACE.names.index("camera.truncation")


def _case(matters: bool, k: int, n: int = 24):
    lo, hi = -np.ones(SPACE.dim), np.ones(SPACE.dim)
    lo[TR] = 0.6  # a quarter or more of the person cut off
    desc = region_description(SPACE, lo, hi, np.random.default_rng(0), n=40)
    mode = {"id": 3, "lo": lo.tolist(), "hi": hi.tolist()}
    imp = {"samples": 12, "seed": {"root": 0},
           "constraints": [{"dimension": "camera.truncation", "matters": matters, "k": k, "n": n, "rate": k / n}]}
    run = SimpleNamespace(space=SPACE, meta={"space": SPACE.to_dict()})
    return run, mode, imp, desc


def test_a_described_property_the_failure_does_without_is_flagged():
    run, mode, imp, desc = _case(matters=False, k=19)
    assert any(c.key.startswith("truncated") for c, _, _ in desc.codes), desc.text
    flagged = description_check(run, mode, imp, desc)
    assert flagged and {u["dimension"] for u in flagged} == {"camera.truncation"}
    assert all(u["k"] == 19 and u["n"] == 24 and "cut off" in u["phrase"] for u in flagged)


def test_a_property_whose_constraint_matters_or_clearly_lowers_the_rate_is_not_flagged():
    assert description_check(*_case(matters=True, k=5)) == []
    assert description_check(*_case(matters=False, k=13)) == []  # 54% without it: not "does without"


def test_the_card_leads_with_the_words_the_failure_needs():
    """reports.report.needed_words: the description without the flagged properties; "" when
    every property is flagged (the card then leads with what the failure needs); None when
    nothing is flagged."""
    from reports.report import needed_words

    run, mode, imp, desc = _case(matters=False, k=19)
    assert needed_words(desc, description_check(run, mode, imp, desc)) == ""
    assert needed_words(desc, []) is None
    EL = SPACE.names.index("camera.elevation")
    lo, hi = -np.ones(SPACE.dim), np.ones(SPACE.dim)
    lo[TR], lo[EL] = 0.6, 0.7  # cut off, and seen from above
    both = region_description(SPACE, lo, hi, np.random.default_rng(0), n=40)
    assert "cut off" in both.text and "above" in both.text, both.text
    flagged = description_check(run, {**mode, "lo": lo.tolist(), "hi": hi.tolist()}, imp, both)
    assert {u["dimension"] for u in flagged} == {"camera.truncation"}
    words = needed_words(both, flagged)
    assert "above" in words and "cut off" not in words, words


def test_a_constraint_is_described_only_by_what_its_dimension_can_change():
    """A body-shape constraint is not described by a head pose that 40 scenes happened to
    show more often (MediaPipe's shape.belly mode read "head bowed"); a pose latent can
    change the pose, the view and the framing, a camera dimension the view and framing."""
    from reports.posecodes import Posecode
    from reports.report import caused_by

    bowed = Posecode("head_bowed", "head bowed", "pose")
    above = Posecode("view_above", "seen from above", "view")
    slim = Posecode("slim", "very slim", "body")
    cut = Posecode("truncated", "partly cut off", "frame")
    codes = [bowed, above, slim, cut]
    assert caused_by("shape.belly", codes) == [slim, cut]
    assert caused_by("pose.z03", codes) == [bowed, above, cut]
    assert caused_by("camera.elevation", codes) == [above, cut]
    assert caused_by("future.dimension", codes) == codes
