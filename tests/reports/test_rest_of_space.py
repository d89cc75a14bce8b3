"""What else fails (reports.report.rest_of_space): the run's space with every failure that
needs one constraint alone cut away, as a space spec and a command the CLI and the report
print; failures that need several constraints, or a range inside a dimension, stay."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from reports.report import rest_of_space
from simulator.params import ParamSpace

SPACE = ParamSpace.from_groups("camera")
NAMES = SPACE.names
TR, EL, AZ, SIDE = (NAMES.index(n) for n in ("camera.truncation", "camera.elevation", "camera.azimuth",
                                             "camera.truncation_side"))


def _mode(rank: int, bounds: dict[int, tuple[float, float]], matters: list[int]) -> dict:
    lo, hi = -np.ones(SPACE.dim), np.ones(SPACE.dim)
    for i, (a, b) in bounds.items():
        lo[i], hi[i] = a, b
    rows = [{"dimension": NAMES[i], "matters": i in matters} for i in bounds]
    return {"id": rank - 1, "rank": rank, "lo": lo.tolist(), "hi": hi.tolist(), "importance": {"constraints": rows}}


def _run(spec: str = "camera,camera.fov_y=45:60"):
    space = ParamSpace.from_groups(spec)
    return SimpleNamespace(space=space, meta={"model_spec": "mediapipe", "config": {
        "space": spec, "metric": "pa_mpjpe_scaled", "threshold": 90.7, "budget": 3000}})


def test_one_sided_and_categorical_needs_are_cut_and_the_rest_stays():
    run = _run("camera")
    high_trunc = _mode(1, {TR: (0.1, 1.0), AZ: (0.2, 0.4)}, [TR])      # needs truncation >= 0.19
    low_el = _mode(2, {EL: (-1.0, -0.5)}, [EL])                         # needs elevation <= 5 degrees
    side = _mode(3, {SIDE: (-0.5, 0.0)}, [SIDE])                        # needs the top side
    inner = _mode(4, {AZ: (-0.2, 0.2)}, [AZ])                           # a range inside azimuth: not a box
    pair = _mode(5, {EL: (0.5, 1.0), AZ: (0.5, 1.0)}, [EL, AZ])         # needs two together
    rest = rest_of_space(run, [[high_trunc], [low_el], [side], [inner], [pair]])
    assert rest["entries"] == ["camera.elevation=5:50", "camera.truncation=0:0.193",
                               "camera.truncation_side=bottom|left|right"]
    assert rest["cut"] == [1, 2, 3] and rest["kept"] == [4, 5]
    assert rest["space"] == "camera," + ",".join(rest["entries"])
    assert rest["command"] == ("examiner run --model mediapipe --space " + repr(rest["space"]).replace('"', "'")
                               + " --metric pa_mpjpe_scaled --threshold 90.7 --budget 3000 --out RUN_DIR")
    narrowed = ParamSpace.from_groups(rest["space"])  # the spec reads back
    assert narrowed.dim == SPACE.dim


def test_a_limit_already_in_the_spec_is_replaced_and_nothing_cuttable_gives_none():
    run = _run("camera,camera.truncation=0:0.3")
    rest = rest_of_space(run, [[_mode(1, {TR: (0.0, 1.0)}, [TR])]])
    assert rest["space"] == "camera,camera.truncation=0:0.15"
    assert rest_of_space(run, [[_mode(1, {AZ: (-0.2, 0.2)}, [AZ])]]) is None
    assert rest_of_space(run, [[_mode(1, {TR: (-1.0, 1.0)}, [TR])]]) is None  # nothing would be left


def test_a_search_on_the_rest_of_the_space_looks_only_there(tmp_path):
    """Through run_search, the CLI and the report: a model that fails where much of the
    person is cut off; the run says to search truncation below the failure's range, and a
    run on that space draws nothing above it and finds no mode."""
    from examiner.app.run import print_modes
    from examiner.search.config import SearchConfig
    from examiner.search.runner import run_search
    from reports import write_report
    from reports.report import load_results
    from reports.rundata import load_run

    from tests.reports.conftest import CoinFlip

    space = ParamSpace.from_groups("camera")
    cut = lambda u: 0.97 if u[TR] > 0.2 else 0.03  # noqa: E731
    cfg = SearchConfig(strategy="random", budget=800, agents=4, seed=1, threshold=90.0, space="camera")
    run_search(cfg, CoinFlip(cut), space, tmp_path / "run", model_spec="slab")
    printed: list[str] = []
    print_modes(tmp_path / "run", printed.append)
    assert printed[-1].startswith("what else fails: the space without what mode") and "camera.truncation=0:0.2" in printed[-1]
    results = load_results(write_report(tmp_path / "run", out_dir=tmp_path / "rep", max_examples=1).results)
    rest = results["needs"]["rest"]
    assert rest["entries"][0].startswith("camera.truncation=0:0.2") and rest["kept"] == []
    assert 'id="rest"' in (tmp_path / "rep" / "report.html").read_text()
    limit = float(rest["entries"][0].rpartition(":")[2])
    narrowed = ParamSpace.from_groups(rest["space"])
    run_search(cfg.replace(space=rest["space"]), CoinFlip(lambda u: cut(space.to_vector(narrowed.to_params(u)))),
               narrowed, tmp_path / "rest", model_spec="slab")
    again = load_run(tmp_path / "rest")
    assert again.modes == []
    trunc = [again.space.to_params(np.asarray(r["u"])).camera.truncation for r in again.table.records]
    assert max(trunc) <= limit + 1e-9


def test_the_modes_that_hold_the_standard_cut_together_and_without_one_only_the_common_need():
    run = _run("camera")
    held = lambda m, rate: {**m, "confirmed": {"rate": rate, "n": 40}}  # noqa: E731
    strong = held(_mode(1, {TR: (0.1, 1.0)}, [TR]), 0.95)                       # truncation >= 0.19
    wide = held(_mode(2, {TR: (-0.8, 1.0), EL: (0.5, 1.0)}, [TR]), 0.62)        # >= 0.03, below the standard
    assert rest_of_space(run, [[strong, wide]])["entries"] == ["camera.truncation=0:0.193"]
    wide_held = held(_mode(2, {TR: (-0.4, 1.0), EL: (0.5, 1.0)}, [TR]), 0.85)   # >= 0.10, at the standard
    assert rest_of_space(run, [[strong, wide_held]])["entries"] == ["camera.truncation=0:0.105"]
    weak = [held(_mode(1, {TR: (0.1, 1.0)}, [TR]), 0.7), held(_mode(2, {TR: (-0.4, 1.0)}, [TR]), 0.6)]
    assert rest_of_space(run, [weak])["entries"] == ["camera.truncation=0:0.193"]  # what both need
    top, top_left = _mode(3, {SIDE: (-0.5, 0.0)}, [SIDE]), _mode(4, {SIDE: (-0.5, 0.5)}, [SIDE])
    assert rest_of_space(run, [[top, top_left]])["entries"] == ["camera.truncation_side=bottom|left|right"]
    assert rest_of_space(run, [[held(top, 0.9), held(top_left, 0.9)]])["entries"] == \
        ["camera.truncation_side=bottom|right"]


def test_confirmed_failure_factors_are_cut_with_the_needs():
    """rest_of_space(..., factors): a confirmed factor at the end of a dimension is cut with
    the modes' needs; one on a dimension a need already cut further adds nothing; an
    unconfirmed one, or one inside a dimension, stays."""
    run = _run("camera")
    need = _mode(1, {TR: (0.1, 1.0)}, [TR])
    f = lambda dim, lo, hi, ok=True: {"dimension": NAMES[dim], "lo_u": lo, "hi_u": hi, "label": NAMES[dim],  # noqa: E731
                                      "confirmed": ok}
    rest = rest_of_space(run, [[need]], [f(EL, 0.6, 1.0), f(TR, 0.6, 1.0), f(AZ, -0.2, 0.2), f(SIDE, -1.0, -0.5, False)])
    assert rest["factors"] == [NAMES[EL]] and rest["cut"] == [1]
    assert [e.partition("=")[0] for e in rest["entries"]] == ["camera.elevation", "camera.truncation"]
    assert rest_of_space(run, [[need]])["factors"] == []


def test_a_factor_is_cut_as_far_in_as_it_was_found_to_reach():
    """A factor with `extended` (examiner.search.factors.extend) is cut at its reach, and
    named by it; without steps that grew, at its own slice."""
    run = _run("camera")
    f = {"dimension": NAMES[EL], "lo_u": 0.6, "hi_u": 1.0, "label": "el top", "confirmed": True,
         "extended": {"lo_u": -0.2, "hi_u": 1.0, "label": "el reach", "steps": [{"confirmed": True}]}}
    rest = rest_of_space(run, [], [f])
    assert rest["factors"] == ["el reach"]
    assert rest["entries"] == [f"camera.elevation={SPACE.dimensions[EL].format(SPACE.dimensions[EL].to_physical(-1.0))}:"
                               f"{SPACE.dimensions[EL].format(SPACE.dimensions[EL].to_physical(-0.2))}".replace("°", "")]
    short = {**f, "extended": {"lo_u": 0.6, "hi_u": 1.0, "label": "el top", "steps": [{"confirmed": False}]}}
    assert rest_of_space(run, [], [short])["entries"] == rest_of_space(run, [], [{**f, "extended": None}])["entries"]
