"""Simplifying modes after the search (examiner/search/simplify.py): which constraints are
candidates, which are released, merging, and putting a released box back."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from examiner.search.boxes import box_log_volume
from examiner.search.config import RegionConfig
from examiner.search.simplify import release_candidates, revert_unconfirmed, simplify_modes
from simulator.params import ParamSpace

SPACE = ParamSpace.from_groups("camera,occluder")
NAMES = list(SPACE.names)
AZ, EL, FR, OFF_Y = (NAMES.index(n) for n in ("camera.azimuth", "camera.elevation", "camera.framing", "camera.offset_y"))
KIND = NAMES.index("occluder.kind")
CFG = RegionConfig()


def _mode(mode_id: int, bounds: dict[int, tuple[float, float]]) -> dict:
    lo, hi = -np.ones(SPACE.dim), np.ones(SPACE.dim)
    for i, (a, b) in bounds.items():
        lo[i], hi[i] = a, b
    return {"id": mode_id, "lo": lo.tolist(), "hi": hi.tolist(), "volume_fraction": math.exp(box_log_volume(lo, hi)),
            "members": [mode_id], "agents": [0], "errors": {"n": 1, "mean": 100.0, "quantiles": {}, "values": [100.0]},
            "constrained": {NAMES[i]: [a, b] for i, (a, b) in bounds.items()}}


def _evaluator(fails, log: list | None = None):
    """evaluate(U) -> scored stand-ins: failed where fails(u) (a deterministic rule)."""
    def evaluate(U):
        if log is not None:
            log.append(len(U))
        return [SimpleNamespace(failed=bool(fails(u)), plausible=True, model_error=False) for u in U]
    return evaluate


def test_candidates_are_weak_and_sliver_constraints_on_continuous_dimensions():
    m = _mode(0, {AZ: (-1.0, 0.7), EL: (0.1, 0.15), FR: (0.0, 1.0), KIND: (0.4, 1.0)})
    weak, slivers = release_candidates(np.array(m["lo"]), np.array(m["hi"]), SPACE, CFG.bisection_tol)
    assert weak == [AZ]  # keeps 1.7 of 2: weak
    assert slivers == [EL]  # 0.05 <= 2 x 1/32
    # framing (half the range: a real constraint) and the categorical occluder.kind are never candidates


def test_constraints_that_do_not_matter_are_released():
    # The model fails wherever the framing is above 0; the search's box also pinned the
    # azimuth a little (weak) and the vertical offset to a sliver (a noisy bisection).
    m = _mode(0, {FR: (0.0, 1.0), AZ: (-0.9, 1.0), OFF_Y: (0.30, 0.33)})
    calls: list[int] = []
    spent = simplify_modes([m], _evaluator(lambda u: u[FR] > 0.0, calls), SPACE, CFG, seed=0)
    assert m["simplified"]["released"] == ["camera.azimuth", "camera.offset_y"]
    assert list(m["constrained"]) == ["camera.framing"]
    assert m["lo"][AZ] == -1.0 and m["hi"][OFF_Y] == 1.0 and m["lo"][FR] == 0.0
    assert m["volume_fraction"] > m["simplified"]["searched"]["volume_fraction"]
    assert m["simplified"]["searched"]["constrained"]["camera.offset_y"] == [0.30, 0.33]
    assert spent == sum(calls) == 20  # 20 of 20 failing: accepted on the first half


def test_a_real_narrow_condition_is_kept():
    # The failure needs the camera at the top of its elevation range (a real sliver); the
    # weak azimuth constraint does not matter.
    m = _mode(0, {EL: (0.95, 1.0), AZ: (-1.0, 0.6), FR: (0.0, 1.0)})
    simplify_modes([m], _evaluator(lambda u: u[EL] >= 0.95 and u[FR] > 0.0), SPACE, CFG, seed=0)
    tests = m["simplified"]["tests"]
    assert [t["accepted"] for t in tests] == [False, True]  # all released: fails; weak only: holds
    assert tests[0]["samples"] == 20  # curtailed after the first half: 32 of 40 out of reach
    assert m["simplified"]["released"] == ["camera.azimuth"]
    assert list(m["constrained"]) == ["camera.elevation", "camera.framing"]


def test_nothing_released_when_every_test_fails_and_results_are_seeded():
    m = _mode(3, {FR: (0.0, 1.0), AZ: (-1.0, 0.5)})
    before = dict(m)
    simplify_modes([m], _evaluator(lambda u: u[FR] > 0.0 and u[AZ] < 0.5), SPACE, CFG, seed=0)
    assert m["simplified"]["released"] == [] and m["lo"] == before["lo"] and m["hi"] == before["hi"]

    def run(seed):  # a rule that fails about 80% of the released box, unevenly
        x = _mode(3, {FR: (0.0, 1.0), AZ: (-1.0, 0.6)})
        simplify_modes([x], _evaluator(lambda u: (u[AZ] * 997.0) % 1.0 < 0.8), SPACE, CFG, seed=seed)
        return x["simplified"]["tests"]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_a_released_box_takes_in_the_modes_it_contains():
    # Mode 0: framing above 0 with a spurious sliver on the offset; mode 1: framing above
    # 0.5 (inside mode 0 once the sliver is released) -> one mode.
    a = _mode(0, {FR: (0.0, 1.0), OFF_Y: (0.30, 0.33)})
    b = _mode(1, {FR: (0.5, 1.0)})
    modes = [a, b]
    simplify_modes(modes, _evaluator(lambda u: u[FR] > 0.0), SPACE, CFG, seed=0)
    assert [m["id"] for m in modes] == [0]
    assert a["simplified"]["merged"] == [1] and a["members"] == [0, 1]
    assert a["errors"]["n"] == 2


def test_a_release_that_confirms_below_the_standard_is_put_back_when_the_searched_box_meets_it():
    searched = [_mode(0, {FR: (0.0, 1.0), AZ: (-0.9, 1.0)}), _mode(1, {FR: (0.5, 1.0), AZ: (0.0, 1.0)})]
    released = _mode(0, {FR: (0.0, 1.0)})
    released["simplified"] = {"released": ["camera.azimuth"], "tests": [], "merged": [1],
                              "searched": {"lo": searched[0]["lo"], "hi": searched[0]["hi"]}}
    released["confirmed"] = {"rate": 0.7, "n": 40, "k": 28, "interval": [0.55, 0.82]}

    def confirm(ms, rate):
        for m in ms:
            m["confirmed"] = {"rate": rate, "n": 40, "k": int(40 * rate), "interval": [0.0, 1.0]}

    modes = [released]
    revert_unconfirmed(modes, searched, 0.8, lambda ms: confirm(ms, 0.9))
    assert [m["id"] for m in modes] == [0, 1]  # the searched box and the mode it had taken in
    assert modes[0]["lo"] == searched[0]["lo"] and modes[0]["simplified"]["released"] == []
    assert modes[0]["simplified"]["reverted"]["released"] == ["camera.azimuth"]
    assert modes[0]["confirmed"]["rate"] == 0.9

    modes = [dict(released, simplified=dict(released["simplified"], searched=dict(released["simplified"]["searched"])))]
    revert_unconfirmed(modes, searched, 0.8, lambda ms: confirm(ms, 0.75))
    assert [m["id"] for m in modes] == [0]  # neither meets the standard: the simpler box stays
    assert modes[0]["simplified"]["released"] == ["camera.azimuth"]
    assert modes[0]["simplified"]["searched"]["confirmed"]["rate"] == 0.75


def test_a_search_reports_the_simplified_box(tmp_path):
    """Through run_search and the report: growth pinned camera.framing a little (a noisy
    passing probe); the release test frees it, the mode is the elevation slab alone, and
    results.json and the CLI lines say what was released."""
    from examiner.app.run import mode_line
    from examiner.search.config import SearchConfig
    from examiner.search.runner import run_search
    from reports import write_report
    from reports.rundata import load_run
    from reports.report import load_results

    from tests.reports.conftest import CoinFlip

    space = ParamSpace.from_groups("camera")
    el = space.names.index("camera.elevation")
    slab = CoinFlip(lambda u: 0.97 if u[el] > 0.2 else 0.03)  # the elevation slab, noisy
    cfg = SearchConfig(strategy="random", budget=800, agents=4, seed=1, threshold=90.0)
    run_search(cfg, slab, space, tmp_path / "run", model_spec="slab")
    run = load_run(tmp_path / "run")
    (m,) = run.modes
    assert list(m["constrained"]) == ["camera.elevation"]
    s = m["simplified"]
    assert s["released"] == ["camera.framing"] and "camera.framing" in s["searched"]["constrained"]
    assert m["confirmed"]["rate"] >= 0.8
    (r,) = load_results(write_report(tmp_path / "run", out_dir=tmp_path / "rep", images=False).results)["modes"]
    assert r["simplified"]["released"] == ["camera.framing"] and r["simplified"]["test"]["k"] == 20
    assert "1 looser constraint released after the search (20 of 20" in mode_line({**m, "rank": 1}, space)
