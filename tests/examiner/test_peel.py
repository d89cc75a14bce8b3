"""`examiner peel` (examiner/app/peel.py): each stage searches what the earlier ones left,
with the failures that need one constraint alone cut away; resumable, one-line errors,
and a page that lists the stages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from simulator.params import ParamSpace

from tests.reports.conftest import CoinFlip


def _model(spec: str) -> CoinFlip:
    """Fails (97%) where a fifth or more of the person is cut off, or the camera is above
    35 degrees: in physical units, so that it is the same model in every stage's space."""
    space = ParamSpace.from_groups(spec)
    t, e = space.names.index("camera.truncation"), space.names.index("camera.elevation")
    d_t, d_e = space.dimensions[t], space.dimensions[e]

    def p(u):
        cut = d_t.to_physical(u[t]) > 0.21
        high = d_e.to_physical(u[e]) > math.radians(35)
        return 0.97 if cut or high else 0.03
    return CoinFlip(p)


def _peel(out, stages):
    from examiner.app.peel import run_peel

    return run_peel(out, model="two-failures", space="camera", stages=stages, budget=700, agents=4,
                    strategy="random", seed=1, threshold=90.0, quiet=True, log=lambda s: None,
                    evaluator_for=_model)


def test_a_peel_cuts_each_failure_away_and_stops_when_nothing_is_left(tmp_path):
    from examiner.app.peel import PeelError, stage_lines
    from reports.peel import findings, write_peel_html

    first = _peel(tmp_path / "peel", stages=1)
    assert len(first["stages"]) == 1 and "--stages 1 reached" in first["ended"]
    s1 = first["stages"][0]
    assert s1["modes"] and s1["rest"], s1
    cut = {e.partition("=")[0] for e in s1["rest"]["entries"]}
    assert cut <= {"camera.truncation", "camera.elevation"} and cut
    log_1 = (tmp_path / "peel" / "stage-1" / "evaluations.jsonl").read_bytes()

    state = _peel(tmp_path / "peel", stages=4)  # goes on from where it stopped
    assert (tmp_path / "peel" / "stage-1" / "evaluations.jsonl").read_bytes() == log_1
    last = state["stages"][-1]
    assert last["modes"] == [] and state["ended"].startswith("no failure mode")
    final = ParamSpace.from_groups(last["space"])
    dims = {d.name: d for d in final.dimensions}
    assert dims["camera.truncation"].high <= 0.23 and dims["camera.elevation"].high <= math.radians(37)
    assert last["uniform"]["rate"] < 0.15  # what is left fails at the base rate
    assert isinstance(last["factors"], list) and all(not f["confirmed"] for f in last["factors"])
    assert [s["stage"] for s in state["stages"]] == list(range(1, len(state["stages"]) + 1))
    saved = json.loads((tmp_path / "peel" / "peel.json").read_text())
    assert saved["stages"] == state["stages"]
    assert saved["findings"] == findings(state) and saved["findings"], saved.get("findings")
    again = _peel(tmp_path / "peel", stages=4)  # finished: nothing runs again
    assert again["stages"] == state["stages"]
    meta = json.loads((tmp_path / "peel" / "stage-1" / "meta.json").read_text())
    assert meta["config"]["region"]["factor_samples"] == 200 == state["config"]["factor_samples"]
    assert meta["config"]["region"]["factor_slices"] == "ends" == state["config"]["factor_slices"]
    # A peel written before --factor-samples and factor_slices (its stages ran with a run's
    # 80 and any slice) still resumes.
    old = json.loads((tmp_path / "peel" / "peel.json").read_text())
    del old["config"]["factor_samples"], old["config"]["factor_slices"]
    (tmp_path / "peel" / "peel.json").write_text(json.dumps(old))
    assert _peel(tmp_path / "peel", stages=4)["stages"] == state["stages"]
    lines = stage_lines(state)
    assert lines[0].startswith("stage 1 (camera): ") and lines[-2].startswith("ended: no failure mode")
    assert lines[-1].startswith("found: conditions on ") and "camera.truncation" in lines[-1], lines[-1]
    html = write_peel_html(state, tmp_path / "peel" / "peel.html").read_text()
    assert html.count("<h2>Stage ") == len(state["stages"]) and "Cut away for the next stage" in html
    # The summary lists what was found, grouped by dimension, before the stages.
    found = html.split("<h2>What it found</h2>", 1)[1].split("<h2>Stages</h2>", 1)[0]
    assert "<code>camera.truncation</code>" in found and "<code>camera.elevation</code>" in found, found
    listed = findings(state)
    assert found.count("<li>") == (len({f["dimensions"][0] for f in listed if len(f["dimensions"]) == 1})
                                   + sum(len(f["dimensions"]) > 1 for f in listed))
    assert 'href="stage-1/report.html"' in html
    assert f"<code>{state['stages'][1]['space'].replace(',', ',<wbr>')}</code>" in html  # a long spec wraps
    with pytest.raises(PeelError) as e:
        from examiner.app.peel import run_peel

        run_peel(tmp_path / "peel", model="two-failures", space="camera", stages=2, budget=900, agents=4,
                 strategy="random", seed=1, threshold=90.0, quiet=True, evaluator_for=_model)
    assert "other options (budget)" in str(e.value) and "\n" not in str(e.value)


def test_peel_options_are_checked_before_anything_is_written(tmp_path):
    from examiner.app.peel import PeelError, run_peel

    for kw, says in [({"stages": 0}, "--stages must be 1 to"), ({"space": "camera,camera.truncation=0:0.9"}, "widens"),
                     ({"metric": "bogus", "threshold": None}, "pass --threshold"),
                     ({"model": "analytic:planted", "evaluator_for": None}, "peel a model that sees rendered"),
                     ({"factor_samples": 5}, "--factor-samples must be at least 20")]:
        args = {"model": "x", "space": "camera", "threshold": 90.0, "evaluator_for": _model, **kw}
        with pytest.raises(Exception) as e:
            run_peel(tmp_path / "p", quiet=True, **args)
        assert says in str(e.value) and "\n" not in str(e.value)
        assert not (tmp_path / "p").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    with pytest.raises(PeelError, match="not empty and holds no peel"):
        run_peel(tmp_path / "full", model="x", space="camera", threshold=90.0, quiet=True, evaluator_for=_model)
    for damaged in ("{not json", "[]", '{"config": {}, "stages": [{}], "threshold": 90}'):
        (tmp_path / "bad").mkdir(exist_ok=True)
        (tmp_path / "bad" / "peel.json").write_text(damaged)
        with pytest.raises(PeelError, match="peel.json is damaged") as e:
            run_peel(tmp_path / "bad", model="x", space="camera", threshold=90.0, quiet=True, evaluator_for=_model)
        assert "\n" not in str(e.value)


def test_a_stage_without_a_mode_to_cut_cuts_its_confirmed_failure_factor(tmp_path):
    """A model failing 60% of scenes seen from above 35 degrees (and 3% elsewhere) has no box
    at the 80% standard, but the failure factor is confirmed: the stage cuts it, and the
    next stage, below 35 degrees, has neither mode nor factor and ends the peel."""
    from examiner.app.peel import run_peel, stage_lines
    from reports.peel import peel_html

    def model(spec: str) -> CoinFlip:
        space = ParamSpace.from_groups(spec)
        e = space.names.index("camera.elevation")
        d_e = space.dimensions[e]
        return CoinFlip(lambda u: 0.6 if d_e.to_physical(u[e]) > math.radians(35) else 0.03)

    state = run_peel(tmp_path / "peel", model="high-camera", space="camera", stages=3, budget=700, agents=4,
                     strategy="random", seed=1, threshold=90.0, quiet=True, log=lambda s: None, evaluator_for=model)
    s1 = state["stages"][0]
    assert s1["modes"] == [] and s1["rest"] and s1["rest"]["factors"], s1
    assert [e.partition("=")[0] for e in s1["rest"]["entries"]] == ["camera.elevation"]
    high = ParamSpace.from_groups(s1["rest"]["space"]).dimensions[
        ParamSpace.from_groups(s1["rest"]["space"]).names.index("camera.elevation")].high
    # The factor's slice (38-50 degrees) grows by the next slice in (26-38, which holds the
    # 35-38 degrees that fail and fails more often than what lies below it); 14-26 stops it.
    assert math.radians(20) <= high <= math.radians(40)
    assert len(state["stages"]) == 2 and state["stages"][1]["rest"] is None
    assert state["ended"].startswith("no failure mode in this space and no confirmed failure factor")
    assert "(the confirmed failure factor camera.elevation" in peel_html(state)
    assert any("cut with the confirmed failure factor camera.elevation" in line for line in stage_lines(state))


def test_confirmed_factors_alone_are_cut_at_the_end_of_a_dimension_or_a_choice():
    from types import SimpleNamespace

    from reports.report import rest_of_space

    space = ParamSpace.from_groups("camera,occluder")
    run = SimpleNamespace(space=space, meta={"config": {"space": "camera,occluder", "budget": 100}, "model_spec": "m"})
    f = lambda dim, lo, hi, ok=True: {"dimension": dim, "lo_u": lo, "hi_u": hi, "label": dim, "confirmed": ok}  # noqa: E731
    rest = rest_of_space(run, [], [f("camera.elevation", 0.6, 1.0), f("occluder.kind", 0.34, 1.0),
                             f("camera.roll", -0.3, 0.3),              # inside the dimension: not a box
                             f("camera.truncation", 0.5, 1.0, False)])  # not confirmed
    assert rest["factors"] == ["camera.elevation", "occluder.kind"]
    narrowed = ParamSpace.from_groups(rest["space"])
    el = narrowed.dimensions[narrowed.names.index("camera.elevation")]
    full = space.dimensions[space.names.index("camera.elevation")]
    assert abs(el.high - full.to_physical(0.6)) < 1e-3 and el.low == full.low
    assert "occluder.kind=none|box" in rest["entries"]  # the pole cut away
    assert "examiner run" in rest["command"] and rest["cut"] == []
    assert rest_of_space(run, [], [f("camera.roll", -0.3, 0.3), f("camera.elevation", 0.6, 1.0, False)]) is None


def test_a_stage_run_records_the_threshold_rule_the_peel_decided(tmp_path):
    """A loop's or peel's runs are judged by the threshold decided once before them; each
    run's meta.json and report say how it was decided, not "absolute (set for this run)"."""
    from examiner.app.loop import _search, decided_rule

    rule = {"rule": "max(90, 2 x the model's median pa_mpjpe on 48 easy reference scenes)", "threshold": 90.0,
            "reference_median": 40.0, "reference_scored": 48, "reference_model_errors": 0, "reference_missed": 0}
    assert decided_rule(None, "by x") is None
    stage_rule = decided_rule(rule, "decided once by examiner peel before stage 1, on camera")
    cfg_kw = {"strategy": "random", "budget": 60, "agents": 4, "seed": 0, "metric": "pa_mpjpe"}
    examined = _search("analytic:planted", "camera", cfg_kw, 90.0, tmp_path / "stage-1", True,
                       threshold_rule=stage_rule)
    meta = json.loads((tmp_path / "stage-1" / "meta.json").read_text())
    assert meta["threshold_rule"] == {**rule, "decided": "decided once by examiner peel before stage 1, on camera"}
    html = (tmp_path / "stage-1" / "report.html").read_text()
    assert "decided once by examiner peel before stage 1, on camera" in html and "set for this run" not in html
    assert examined["report"]


def test_stage_lines_name_a_cut_factor_in_words_and_by_its_reach():
    from examiner.app.peel import stage_lines

    factor = {"label": "camera.elevation 38° to 50°", "reaches": "camera.elevation 26° to 50°",
              "words": "seen from above", "rate": 0.6, "n": 200, "ratio": 2.0, "confirmed": True}
    state = {"ended": "--stages 1 reached", "stages": [{
        "stage": 1, "space": "camera", "uniform": {"rate": 0.3, "n": 400}, "modes": [], "factors": [factor],
        "needs": {"failures": [], "nothing_alone": []},
        "rest": {"entries": ["camera.elevation=-10:26"], "factors": ["camera.elevation 26° to 50°"], "cut": [], "kept": []}}]}
    lines = stage_lines(state)
    assert "camera.elevation 38° to 50° (seen from above) 60% of 200 (2.0x, confirmed; fails more often as far as " \
           "camera.elevation 26° to 50°)" in lines[1]
    assert lines[2] == ("  cut with the confirmed failure factor camera.elevation 26° to 50° (seen from above): "
                        "camera.elevation=-10:26")


def test_stage_lines_name_a_latent_need_by_what_it_does_to_the_body():
    from examiner.app.peel import stage_lines

    need = {"dimension": "pose.z02", "box": "-2.50σ to -0.74σ", "words": None,
            "pose": "left hip flexion -23°, left knee flexion -20°"}
    state = {"ended": "--stages 1 reached", "stages": [{
        "stage": 1, "space": "pose", "uniform": {"rate": 0.5, "n": 400}, "factors": [],
        "modes": [{"rank": 1, "rate": 0.95}], "needs": {"failures": [{"dimensions": [need], "modes": [1]}],
                                                       "nothing_alone": []}, "rest": None}]}
    lines = stage_lines(state)
    assert lines[1] == ("  needs pose.z02 -2.50σ to -0.74σ (the poses: left hip flexion -23°, left knee flexion -20°): "
                        "mode(s) 1, failing 95%")
    assert lines[-1] == "found: conditions on 1 dimension(s) alone (pose.z02)"
