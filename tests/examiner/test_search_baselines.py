"""Drawn analytic targets, the hillclimb and QD baselines, and recall measures (issue 20)."""

import numpy as np
import pytest

from examiner.search import SearchConfig, SearchConfigError, build_evaluator, run_search
from examiner.search.drawn_targets import drawn_regions, planted_boxes, region_box
from examiner.search.recall import box_iou, recall_report
from simulator.params import ParamSpace


@pytest.fixture(scope="module")
def space():
    return ParamSpace.from_groups("pose,shape,camera")


def test_drawn_layouts_are_seeded_and_differ(space):
    a, b = drawn_regions(3, space), drawn_regions(3, space)
    assert a == b
    layouts = [drawn_regions(k, space) for k in range(12)]
    assert len({tuple(sorted(r[1])) for L in layouts for r in L}) > 40  # dimensions vary
    assert len({len(L) for L in layouts}) > 2  # counts vary
    sizes = [float(np.prod([(h - l) / 2 for l, h in r[1].values()])) for L in layouts for r in L]
    assert 1e-5 <= min(sizes) and max(sizes) <= 3e-2 and max(sizes) / min(sizes) > 30
    assert {len(r[1]) for L in layouts for r in L} == {2, 3, 4}


def test_drawn_target_fails_inside_each_box_and_not_outside(space):
    ev = build_evaluator("analytic:drawn?layout=5", space)
    boxes = planted_boxes(ev)
    assert len(boxes) == len(drawn_regions(5, space)) >= 3
    rng = np.random.default_rng(0)
    for name, lo, hi in boxes:
        U = rng.uniform(lo, hi, size=(200, space.dim))
        err, inside = ev.error_field(U)
        assert (err > 90).all() and inside.any(axis=1).all()
    U = rng.uniform(-1, 1, size=(5000, space.dim))
    err, inside = ev.error_field(U)
    assert ((err > 90) == inside.any(axis=1)).all()  # failure exactly inside the boxes
    lo, hi = region_box(ev.regions[0].bounds, space.names)
    assert np.array_equal(lo, boxes[0][1]) and np.array_equal(hi, boxes[0][2])


@pytest.mark.parametrize("spec, match", [
    ("analytic:drawn", r"needs \?layout=N"),
    ("analytic:drawn?layout=x", "layout must be a non-negative integer"),
    ("analytic:drawn?layout=-2", "layout must be a non-negative integer"),
    ("analytic:drawn?layout=1&size=3", "unknown option"),
])
def test_drawn_spec_errors_are_one_line(space, spec, match):
    with pytest.raises(SearchConfigError, match=match) as e:
        build_evaluator(spec, space)
    assert "\n" not in str(e.value)


def test_box_iou():
    z, o = np.zeros(3), np.ones(3)
    assert box_iou(z, o, z, o) == pytest.approx(1.0)
    assert box_iou(z, o, o, 2 * o) == 0.0
    assert box_iou(z, o, z, np.array([1.0, 1.0, 0.5])) == pytest.approx(0.5)
    assert box_iou(z, o, z, np.array([2.0, 1.0, 1.0]), dims=[1, 2]) == pytest.approx(1.0)


def test_recall_report_of_a_run_on_a_drawn_target(tmp_path, space):
    ev = build_evaluator("analytic:drawn?layout=1", space)
    cfg = SearchConfig(strategy="random", budget=1500, agents=8, seed=0)
    res = run_search(cfg, ev, space, tmp_path / "r")
    rep = recall_report(tmp_path / "r", planted_boxes(ev))
    assert rep.planted == len(ev.regions) and rep.evaluations == res.evaluations
    found = [t for t in rep.found_at if t is not None]
    assert found and rep.false_modes == 0
    assert rep.evals_to_recall(1 / rep.planted) == min(found) + 1
    assert all(0.2 < x <= 1.0 for x in rep.iou if x is not None)
    assert rep.accepted >= len(found) and rep.evals_per_region > 20
    if len(found) < rep.planted:
        assert rep.evals_to_recall(1.0) is None


def test_hillclimb_never_updates_the_policy(tmp_path, space):
    import torch

    from examiner.search.strategies.hillclimb import HillclimbStrategy

    ev = build_evaluator("analytic:planted", space)
    seen = {}
    orig = HillclimbStrategy.__init__

    def spy(self, *a, **k):
        orig(self, *a, **k)
        seen["init"] = {n: t.clone() for n, t in self.model.policy.state_dict().items()}
        seen["strategy"] = self

    HillclimbStrategy.__init__ = spy
    try:
        res = run_search(SearchConfig(strategy="hillclimb", budget=600, agents=4, seed=0), ev, space, tmp_path / "h")
    finally:
        HillclimbStrategy.__init__ = orig
    after = seen["strategy"].model.policy.state_dict()
    assert all(torch.equal(seen["init"][n], after[n]) for n in after)
    assert seen["strategy"].updates >= 2 and res.evaluations > 500


def test_qd_fills_an_archive_over_its_measures(tmp_path, space):
    from examiner.search.strategies.qd import QDStrategy

    ev = build_evaluator("analytic:drawn?layout=2", space)
    seen = {}
    orig = QDStrategy.run

    def spy(self):
        orig(self)
        seen["s"] = self

    QDStrategy.run = spy
    try:
        run_search(SearchConfig(strategy="qd", budget=800, agents=8, seed=0), ev, space, tmp_path / "q")
    finally:
        QDStrategy.run = orig
    s = seen["s"]
    P = np.array([[0.1] * space.dim])
    P[0, 4] = -0.95
    m = s.measures(P)
    assert m[0, 0] == 4.5 and m[0, 1] == -0.5 and m[0, 2] == P[0, space.names.index("camera.azimuth")]
    assert len(s.archive) > 30  # elites in many cells: diversity, not one optimum
