"""Failure factors: conditions tested on fresh samples after the search (examiner.search.factors)."""

import json

import numpy as np
import pytest

from examiner.app.run import factor_lines
from examiner.search import Outcome, SearchConfig, SearchConfigError, run_search
from examiner.search.config import RegionConfig
from examiner.search.factors import candidates, holm
from simulator.params import ParamSpace


def _coin(u) -> float:
    """A number in [0, 1) that a scene's point decides (a hash): the same scene, the same coin."""
    return float(np.modf(abs(np.sin(u @ np.arange(1.0, len(u) + 1.0) * 12.9898)) * 43758.5453)[0])


class Graded:
    """Fails 65% of scenes with camera.elevation in the top fifth of its range and 10%
    elsewhere, deterministically per scene (a hash of the point): a factor, but no box
    reaches the 80% standard."""

    dimension = "camera.elevation"

    def __init__(self, space):
        self.d = space.names.index(self.dimension)

    def rate(self, u) -> float:
        """The probability that the scene at u fails."""
        return 0.65 if u[self.d] > 0.6 else 0.10

    def evaluate(self, U):
        out = []
        for u in np.atleast_2d(U):
            e = 150.0 if _coin(u) < self.rate(u) else 30.0
            out.append(Outcome(e, {"pa_mpjpe": e}))
        return out


def test_holm_adjusts_known_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


def test_a_graded_factor_is_found_and_confirmed_and_nothing_else(tmp_path):
    space = ParamSpace.from_groups("camera")
    cfg = SearchConfig(strategy="random", budget=800, agents=4, seed=0)
    res = run_search(cfg, Graded(space), space, tmp_path / "r")
    assert not res.modes  # 65% is below the 80% standard everywhere
    f = json.loads((tmp_path / "r" / "summary.json").read_text())["factors"]
    confirmed = [x for x in f["factors"] if x["confirmed"]]
    assert [x["dimension"] for x in confirmed] == ["camera.elevation"]
    top = confirmed[0]
    assert top["lo_u"] == pytest.approx(0.6) and top["hi_u"] == pytest.approx(1.0)
    assert 0.45 <= top["fresh"]["rate"] <= 0.85 and f["reference"]["n"] == 2 * f["samples"] == 160
    assert 0.05 <= f["reference"]["rate"] <= 0.35
    lines = factor_lines(f)
    assert "camera.elevation" in lines[1] and "confirmed" in lines[1]
    # Same seed, same factors (the fresh samples have their own seeded generator).
    run_search(cfg, Graded(space), space, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["factors"] == f


def test_candidates_need_evidence_above_the_base_rate():
    space = ParamSpace.from_groups("camera")
    rng = np.random.default_rng(0)
    U = rng.uniform(-1, 1, (400, space.dim))
    failed = rng.uniform(size=400) < 0.2  # no factor at all
    conds, base = candidates(space, U, failed)
    assert abs(base - 0.2) < 0.05 and len(conds) <= 1  # a chance slice may pass the Wilson screen, rarely two
    d = space.names.index("camera.roll")
    failed = failed | (U[:, d] < -0.6)
    conds, _ = candidates(space, U, failed)
    assert conds[0].name == "camera.roll" and conds[0].lo == -1.0 and conds[0].hi == pytest.approx(-0.6)


def test_a_peel_asks_only_for_slices_it_can_cut():
    # A failure in the middle slice of one dimension and a weaker one at the end of another:
    # every slice may be a candidate by default; with ends_only (examiner peel) the middle
    # slice is not one, and the end of the other dimension is tested instead.
    space = ParamSpace.from_groups("camera")
    rng = np.random.default_rng(1)
    U = rng.uniform(-1, 1, (1000, space.dim))
    roll, yaw = space.names.index("camera.roll"), space.names.index("camera.azimuth")
    p = np.where(np.abs(U[:, roll]) < 0.2, 0.9, np.where(U[:, yaw] > 0.6, 0.5, 0.1))
    failed = rng.uniform(size=len(U)) < p
    conds, _ = candidates(space, U, failed, top=1)
    assert (conds[0].name, conds[0].lo, conds[0].hi) == ("camera.roll", pytest.approx(-0.2), pytest.approx(0.2))
    conds, _ = candidates(space, U, failed, top=1, ends_only=True)
    assert (conds[0].name, conds[0].lo, conds[0].hi) == ("camera.azimuth", pytest.approx(0.6), 1.0)
    assert all(c.lo == -1.0 or c.hi == 1.0 for c in candidates(space, U, failed, top=9, ends_only=True)[0])


def test_factors_off_and_bad_values(tmp_path):
    space = ParamSpace.from_groups("camera")
    cfg = SearchConfig(strategy="random", budget=300, agents=4, region=RegionConfig(factor_samples=0))
    run_search(cfg, Graded(space), space, tmp_path / "off")
    assert json.loads((tmp_path / "off" / "summary.json").read_text())["factors"] is None
    with pytest.raises(SearchConfigError, match="region.factor_samples"):
        SearchConfig(region=RegionConfig(factor_samples=-1)).validate()
    with pytest.raises(SearchConfigError, match="region.factors"):
        SearchConfig(region=RegionConfig(factors=0)).validate()
    with pytest.raises(SearchConfigError, match="region.factor_slices must be 'any' or 'ends'"):
        SearchConfig(region=RegionConfig(factor_slices="inner")).validate()


def test_the_report_and_results_show_the_factors(tmp_path):
    import jsonschema

    from reports import write_report
    from reports.report import results_schema

    space = ParamSpace.from_groups("camera")
    run_search(SearchConfig(strategy="random", budget=800, agents=4, seed=0), Graded(space), space, tmp_path / "r")
    paths = write_report(tmp_path / "r", images=False, describe=False)
    html = paths.html.read_text()
    assert 'id="factors"' in html and "camera.elevation" in html.split('id="factors"')[1].split("</section>")[0]
    results = json.loads(paths.results.read_text())
    jsonschema.validate(results, results_schema())
    assert [f["dimension"] for f in results["factors"]["factors"] if f["confirmed"]] == ["camera.elevation"]


class Everywhere(Graded):
    """Fails 70% of all scenes, no condition matters."""

    def rate(self, u) -> float:
        return 0.7


def test_the_space_failure_rate_is_measured_on_uniform_samples_and_drives_the_warning(tmp_path):
    from reports import write_report
    from reports.gating import report_quantities
    from reports.rundata import load_run, run_stats

    space = ParamSpace.from_groups("camera")
    run_search(SearchConfig(strategy="random", budget=400, agents=4, seed=0), Everywhere(space), space, tmp_path / "r")
    stats = run_stats(load_run(tmp_path / "r"))
    ref = stats["space_failure_rate"]
    assert ref["basis"] == "uniform" and ref["n"] == 160 and 0.55 <= ref["rate"] <= 0.85
    assert report_quantities(stats)["space_failure_rate"] == ref["rate"]
    html = write_report(tmp_path / "r", images=False, describe=False).html.read_text()
    assert "of scenes drawn uniformly from the space fail" in html.split('id="space-warning"')[1].split("</p>")[0]
    # No box holds 80% of a 70% failure that no condition changes: the report says the
    # failures are spread out.
    assert load_run(tmp_path / "r").modes == []
    no_mode = html.split('id="no-mode">')[1].split("</p>")[0]
    assert "at least 80% of fresh samples" in no_mode and "spread out rather than held in a box" in no_mode


class GradedPartlyUnscored(Graded):
    """Graded, but a third of the scenes cannot be scored (too few joints in view under
    sim.joints=visible): implausible, with no metric, like the simulator evaluator's."""

    def evaluate(self, U):
        out = super().evaluate(U)
        for k, u in enumerate(np.atleast_2d(U)):
            if u[0] < -1.0 / 3.0:
                out[k] = Outcome(float("nan"), {"pa_mpjpe": float("nan")}, plausible=False)
        return out


def test_unscored_scenes_are_counted_as_implausible_not_as_model_errors(tmp_path):
    space = ParamSpace.from_groups("camera")
    assert space.names.index("camera.elevation") != 0
    cfg = SearchConfig(strategy="random", budget=800, agents=4, seed=0)
    run_search(cfg, GradedPartlyUnscored(space), space, tmp_path / "r")
    f = json.loads((tmp_path / "r" / "summary.json").read_text())["factors"]
    tallies = [f["reference"]] + [x["fresh"] for x in f["factors"]]
    assert sum(t["implausible"] for t in tallies) > 0
    assert all(t["model_errors"] == 0 for t in tallies)


class Stairs(Graded):
    """Fails 75% of scenes with camera.elevation in the top fifth of its range, 50% in the
    fifth below it and 10% elsewhere: a failure that rises gradually towards one end."""

    def rate(self, u) -> float:
        return 0.75 if u[self.d] > 0.6 else 0.5 if u[self.d] > 0.2 else 0.10


def test_a_gradual_factor_is_extended_inwards_until_a_slice_fails_no_more_often(tmp_path):
    from reports.report import rest_of_space
    from reports.rundata import load_run

    space = ParamSpace.from_groups("camera")
    cfg = SearchConfig(strategy="random", budget=800, agents=4, seed=0, space="camera")
    run_search(cfg, Stairs(space), space, tmp_path / "r")
    f = json.loads((tmp_path / "r" / "summary.json").read_text())["factors"]
    top = [x for x in f["factors"] if x["confirmed"]]
    assert [x["dimension"] for x in top] == ["camera.elevation"] and top[0]["lo_u"] == pytest.approx(0.6)
    ext = top[0]["extended"]
    assert [s["confirmed"] for s in ext["steps"]] == [True, False]  # 0.2 to 0.6 grows it, -0.2 to 0.2 does not
    assert ext["lo_u"] == pytest.approx(0.2) and ext["hi_u"] == 1.0 and ext["steps"][0]["fresh"]["n"] == f["samples"]
    assert 0.3 <= ext["steps"][0]["fresh"]["rate"] <= 0.7 and ext["steps"][0]["rest"]["rate"] < 0.3
    assert "fails more often as far as camera.elevation" in "\n".join(factor_lines(f))
    rest = rest_of_space(load_run(tmp_path / "r"), [], f["factors"])
    assert rest["factors"] == [ext["label"]]
    # Same seed, same extension; a step factor (Graded) does not grow; off with 0.
    run_search(cfg, Stairs(space), space, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["factors"] == f
    run_search(cfg, Graded(space), space, tmp_path / "step")
    g = [x for x in json.loads((tmp_path / "step" / "summary.json").read_text())["factors"]["factors"] if x["confirmed"]]
    assert [s["confirmed"] for s in g[0]["extended"]["steps"]] == [False]
    step_lines = factor_lines(json.loads((tmp_path / "step" / "summary.json").read_text())["factors"])
    assert any("reaches no further in: camera.elevation" in line for line in step_lines)
    off = SearchConfig(strategy="random", budget=800, agents=4, seed=0, region=RegionConfig(factor_extend=0))
    run_search(off, Stairs(space), space, tmp_path / "off")
    assert all("extended" not in x for x in json.loads((tmp_path / "off" / "summary.json").read_text())["factors"]["factors"])
    with pytest.raises(SearchConfigError, match="region.factor_extend"):
        SearchConfig(region=RegionConfig(factor_extend=-1)).validate()


class PoseGraded(Graded):
    """Fails 75% of scenes with the pose prior's first latent in the top fifth of its range
    and 10% elsewhere (a hash of the point decides each scene)."""

    dimension = "pose.z01"

    def rate(self, u) -> float:
        return 0.75 if u[self.d] > 0.6 else 0.10


def test_a_pose_latent_factor_says_what_it_does_to_the_body(tmp_path):
    """A slice of a pose latent is a number to a reader: the report says, for one that no
    posecode names, the joint angles it changes most against outside it."""
    from examiner.search.importance import pose_change, pose_change_text
    from reports import write_report

    space = ParamSpace.from_groups("pose,camera")
    run_search(SearchConfig(strategy="random", budget=800, agents=4, seed=0, space="pose,camera"),
               PoseGraded(space), space, tmp_path / "r")
    results = json.loads(write_report(tmp_path / "r", images=False, describe=True, seed=0).results.read_text())
    f = [x for x in results["factors"]["factors"] if x["confirmed"]]
    assert [x["dimension"] for x in f] == ["pose.z01"]
    lo, hi = -np.ones(space.dim), np.ones(space.dim)
    lo[space.names.index("pose.z01")], hi[space.names.index("pose.z01")] = f[0]["lo_u"], f[0]["hi_u"]
    expected = pose_change_text(pose_change(space, lo, hi, space.names.index("pose.z01"), 0, 0xFAC7))
    assert expected and (f[0]["words"] or f[0]["pose"] == expected)
    html = (tmp_path / "r" / "report.html").read_text().split('id="factors"')[1].split("</section>")[0]
    assert (f[0]["words"] or f"the poses against outside it: {expected}") in html
