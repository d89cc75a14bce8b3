"""write_report outputs (results.json, JUnit), the CLI's exit codes, and report size."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from examiner.app import report as cli
from reports.errors import ReportError
from reports.report import RESULTS_SCHEMA, load_results, results_schema, write_report
from tests.reports.conftest import HOSTILE_MODEL, write_synthetic_run


@pytest.fixture(scope="module")
def planted_report(planted_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    junit = out / "junit.xml"
    paths = write_report(planted_run, out_dir=out, junit=junit, fail_on=["modes>0", "failure_rate>0.9"])
    return paths


def test_results_json(planted_run, planted_report):
    res = load_results(planted_report.results)
    assert res["schema"] == RESULTS_SCHEMA and res["schema_version"] == 1
    stored = json.loads((planted_run / "modes.json").read_text())["modes"]
    assert len(res["modes"]) == len(stored) >= 2
    rates = [(m["confirmed"]["rate"], (m["errors"]["quantiles"] or {}).get("0.5", 0)) for m in res["modes"]]
    assert rates == sorted(rates, reverse=True), "modes must be worst first"
    assert [m["rank"] for m in res["modes"]] == list(range(1, len(stored) + 1))
    dims = [d["name"] for d in res["run"]["space"]]
    for m in res["modes"]:
        assert len(m["box"]["lo"]) == len(dims)
        for name, c in m["box"]["constrained"].items():
            assert name in dims and -1 <= c["lo_u"] < c["hi_u"] <= 1 and c["text"]
        assert m["description"], "each planted mode is describable"
        assert all(ex["evaluation"] is not None for ex in m["examples"]), "examples are logged evaluations"
        c = m["confirmed"]  # planted boxes fail everywhere: fresh samples confirm them
        assert c["n"] + c["implausible"] + c["model_errors"] == 40 and c["rate"] >= 0.9
    stats = res["stats"]
    assert stats["evaluations"] == sum(1 for _ in open(planted_run / "evaluations.jsonl"))
    lo, hi = stats["failure_rate"]["interval"]
    assert lo <= stats["failure_rate"]["rate"] <= hi
    assert res["run"]["model_spec"] == "analytic:planted" and res["run"]["seeds"]["root"] == 0
    assert [g["tripped"] for g in res["gates"]] == [True, False]


def test_results_json_matches_the_published_schema(planted_report, synthetic_run, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = results_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    res = load_results(planted_report.results)
    jsonschema.validate(res, schema)
    other = load_results(write_report(synthetic_run, out_dir=tmp_path / "r", images=False).results)
    assert other["per_joint"] is not None and other["stats"]["model_errors"] > 0
    jsonschema.validate(other, schema)
    # the schema can fail: a missing section, a wrong type, an unknown field
    for broken in ({k: v for k, v in res.items() if k != "stats"},
                   {**res, "modes": [{**res["modes"][0], "rank": "1"}]},
                   {**res, "run": {**res["run"], "surprise": 1}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_a_mode_whose_confirmation_falls_short_is_marked(tmp_path):
    """A model failing 70% everywhere: its one mode passed a lucky verification round; the
    report leads with the confirmed rate and says the mode is not reliable."""
    from examiner.search.config import RegionConfig, SearchConfig
    from examiner.search.runner import run_search
    from simulator.params import ParamSpace
    from tests.reports.conftest import CoinFlip

    sp = ParamSpace.from_groups("camera.azimuth,camera.elevation,camera.roll,camera.fov_y")
    cfg = SearchConfig(strategy="random", budget=1500, agents=4, seed=0, threshold=90.0, region=RegionConfig(confirm_samples=300))
    run_search(cfg, CoinFlip(0.7), sp, tmp_path / "run", model_spec="coin")
    paths = write_report(tmp_path / "run", out_dir=tmp_path / "rep", images=False, junit=tmp_path / "j.xml",
                         fail_on=["modes>0", "reliable_modes>0"])
    res = load_results(paths.results)
    (m,) = res["modes"]
    assert res["stats"]["modes"] == 1 and res["stats"]["reliable_modes"] == 0
    assert [g["tripped"] for g in res["gates"]] == [True, False]
    assert m["verified"]["rate"] >= 0.8 and m["confirmed"]["rate"] == pytest.approx(0.72)
    html = paths.html.read_text()
    assert "fails 72%" in html and "lucky draw" in html and "216 of 300" in html
    assert "confirmed after the search: 72% of 300" in (tmp_path / "j.xml").read_text()


def test_planted_modes_are_found_and_described(planted_report):
    """The planted target's biggest regions come out with the words that match them."""
    res = load_results(planted_report.results)
    texts = {tuple(sorted(m["box"]["constrained"])): m["description"] for m in res["modes"]}
    assert texts.get(("pose.root_pitch",), "").startswith("body lying horizontally") or \
        "torso leaning forward" in texts.get(("pose.root_pitch",), "")
    cam = texts.get(("camera.elevation", "camera.framing"))
    assert cam is not None and "seen from above" in cam and "small in the image" in cam


def test_junit_parses_back(planted_report):
    root = ET.parse(planted_report.junit).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 2
    modes, gates = suites
    n_modes = len(load_results(planted_report.results)["modes"])
    assert len(modes.findall("testcase")) == n_modes == int(modes.get("failures"))
    assert all(tc.find("failure") is not None for tc in modes.findall("testcase"))
    cases = gates.findall("testcase")
    assert [c.get("name") for c in cases] == ["fail-on modes>0", "fail-on failure_rate>0.9"]
    assert cases[0].find("failure") is not None and cases[1].find("failure") is None
    assert int(root.get("tests")) == n_modes + 2 and int(root.get("failures")) == n_modes + 1


def test_junit_without_modes_has_one_passing_case(tmp_path):
    run = write_synthetic_run(tmp_path / "run", n=60, n_modes=0, model="m")
    paths = write_report(run, junit=tmp_path / "j.xml", images=False)
    root = ET.parse(paths.junit).getroot()
    (case,) = root.iter("testcase")
    assert case.get("name") == "no failure modes" and case.find("failure") is None


def test_cli_exit_codes(planted_run, tmp_path, capsys):
    base = ["report", str(planted_run), "--out", str(tmp_path), "--no-images"]
    assert cli.main(base) == 0
    assert cli.main(base + ["--fail-on", "failure_rate>100%"]) == 0
    capsys.readouterr()
    assert cli.main(base + ["--fail-on", "modes>0"]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"error: gate failed: modes>0 \(modes = \d+\)", last), err
    assert cli.main(base + ["--fail-on", "modes>>0"]) == 2
    assert "must look like NAME OP NUMBER" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    assert cli.main(base + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["html"].endswith("report.html") and out["gate_failure"] is None


def test_bad_run_dir_is_a_report_error(tmp_path):
    with pytest.raises(ReportError, match="not a run directory"):
        write_report(tmp_path)


def test_report_of_5k_evaluations_stays_small(tmp_path):
    """5000 evaluations, 12 modes with 4 rendered examples each: well under 20 MB.
    (Descriptions are left out to save time; they add a few hundred bytes.)"""
    run = write_synthetic_run(tmp_path / "big", n=5000, n_modes=12, model="big")
    paths = write_report(run, describe=False)
    size = paths.html.stat().st_size
    html = paths.html.read_text()
    assert html.count("data:image/jpeg;base64,") == 2 * 12 * 4
    assert size < 20e6, f"report is {size / 1e6:.1f} MB"
    print(f"5k-evaluation report: {size / 1e6:.2f} MB")


def test_hostile_names_are_escaped_in_the_file(synthetic_run, tmp_path):
    paths = write_report(synthetic_run, out_dir=tmp_path, images=False)
    html = paths.html.read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<b>bold</b>" not in html
    assert json.loads(paths.results.read_text())["run"]["model_spec"] == HOSTILE_MODEL


def test_prediction_and_joint_errors_read_from_record_or_extra():
    from reports.images import joint_errors, prediction_xy

    pred = {"convention": "coco17", "coco17_xy": [[1.0, 2.0]] * 16 + [None]}
    je = {"joints": ["nose", "left_knee"], "mm": [10.0, None], "px": [1.5, 2.5]}
    for rec in ({"prediction": pred, "joint_errors": je}, {"extra": {"prediction": pred, "joint_errors": je}}):
        conv, xy = prediction_xy(rec)
        assert conv == "coco17" and xy.shape == (17, 2) and bool(np.isnan(xy[16]).all())
        assert joint_errors(rec) == {"mm": {"nose": 10.0}, "px": {"nose": 1.5, "left_knee": 2.5}}
    assert prediction_xy({"u": [0.0]}) is None and joint_errors(None) == {}


def test_report_of_a_run_killed_before_its_first_evaluation(tmp_path):
    from examiner.store import RunStore
    from simulator.params import ParamSpace

    space = ParamSpace.from_groups("camera")
    RunStore.create(tmp_path / "run", {"space": space.to_dict(), "dimension_names": space.names, "metric": "pa_mpjpe",
                                       "threshold": 90.0, "model_spec": "m", "config": {"budget": 100}}).close()
    paths = write_report(tmp_path / "run", fail_on=["modes>0"])
    res = load_results(paths.results)
    assert res["stats"]["evaluations"] == 0 and res["stats"]["status"] == "unfinished" and res["modes"] == []
    # The report is written, but a gate never passes a run it cannot judge ("0 modes").
    assert paths.gate_failure and "no summary.json" in paths.gate_failure
    assert "modes>0" not in paths.gate_failure
    assert "found no failure mode" in paths.html.read_text()


def test_map_projection_separates_modes_and_hull_is_convex():
    from reports.views import convex_hull, projection

    rng = np.random.default_rng(0)
    U = rng.uniform(-1, 1, size=(400, 12))
    labels = np.where(U[:, 7] > 0.6, 1, -1)
    P, n_disc = projection(U, labels)
    assert n_disc == 1 and P.shape == (12, 2)
    assert abs(P[7, 0]) > 0.9  # the discriminant direction is the mode's dimension
    hull = convex_hull(np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.2, 0.7]]))
    assert hull.tolist() == [[0, 0], [1, 0], [1, 1], [0, 1]]  # counter-clockwise from the smallest
    assert convex_hull(np.array([[2, 2], [0, 0], [1, 1], [1, 1]])).tolist() == [[0, 0], [2, 2]]  # one line
    assert convex_hull(np.array([[3, 1], [3, 1]])).tolist() == [[3, 1]]


def test_a_band_narrower_than_the_display_precision_is_shown_with_more_digits():
    from reports.views import box_text
    from simulator.params import ParamSpace

    dims = {d.name: d for d in ParamSpace.from_groups("pose,camera").dimensions}
    assert box_text(dims["camera.roll"], 0.18, 0.215) == "2.7° to 3.2°"  # was "3° to 3°"
    assert box_text(dims["pose.z08"], -0.81, -0.80) == "-1.28σ to -1.25σ"
    narrow = box_text(dims["camera.truncation"], 0.5, 0.51)
    a, b = narrow.split(" to ")
    assert a != b
    assert box_text(dims["camera.azimuth"], -0.5, 0.5) == "-90° to 90°"  # wide bands unchanged
    # An end just inside the range does not read as the range's own end (MediaPipe's seed-3
    # mode needed truncation "0.00 to 0.35": some of the person cut off, not any amount).
    assert box_text(dims["camera.truncation"], -0.987, 1.0) == "0.002 to 0.35"
    assert box_text(dims["camera.azimuth"], -0.999, 0.5) == "-179.8° to 90°"
