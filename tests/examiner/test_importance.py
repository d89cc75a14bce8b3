"""What matters in a mode (examiner/search/importance.py): each constraint tested alone on
fresh samples outside its range, ranked, and shown in results.json, the report and the CLI."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from examiner.search.importance import constrained_dims, drawn, outside_samples, rank_constraints, sample_rng
from simulator.params import ParamSpace

SPACE = ParamSpace.from_groups("camera,occluder")
NAMES = list(SPACE.names)
AZ, EL, FR = (NAMES.index(n) for n in ("camera.azimuth", "camera.elevation", "camera.framing"))
KIND = NAMES.index("occluder.kind")


def _box(bounds: dict[int, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = -np.ones(SPACE.dim), np.ones(SPACE.dim)
    for i, (a, b) in bounds.items():
        lo[i], hi[i] = a, b
    return lo, hi


def _mode(mode_id: int, bounds: dict[int, tuple[float, float]], k: int = 39, n: int = 40) -> dict:
    lo, hi = _box(bounds)
    return {"id": mode_id, "lo": lo.tolist(), "hi": hi.tolist(), "confirmed": {"n": n, "k": k, "rate": k / n},
            "verified": {"n": 40, "k": 40, "rate": 1.0}}


def _evaluator(fails, log: list | None = None):
    def evaluate(U):
        if log is not None:
            log.append(np.array(U))
        return [SimpleNamespace(failed=bool(fails(u)), plausible=True, model_error=False, value=150.0 if fails(u) else 40.0)
                for u in U]
    return evaluate


def test_samples_leave_one_dimension_and_keep_the_rest_in_the_box():
    # occluder.kind has three choices (none, box, pole); the box keeps "box" and "pole".
    lo, hi = _box({FR: (0.0, 0.5), AZ: (-0.2, 0.9), KIND: (-0.2, 1.0)})
    assert constrained_dims(SPACE, lo, hi) == sorted([AZ, FR, KIND])
    rng = np.random.default_rng(0)
    for d in (FR, AZ):
        U = outside_samples(SPACE, lo, hi, d, 400, rng)
        assert np.all((U[:, d] < lo[d]) | (U[:, d] > hi[d]))
        assert np.any(U[:, d] < lo[d]) and np.any(U[:, d] > hi[d])  # both sides of the interval
        rest = np.delete(np.arange(SPACE.dim), d)
        assert np.all((U[:, rest] >= lo[rest]) & (U[:, rest] <= hi[rest]))
    U = outside_samples(SPACE, lo, hi, KIND, 50, rng)
    assert {SPACE.dimensions[KIND].to_physical(u) for u in U[:, KIND]} == {"none"}
    # A choice interval whose ends cut into the outer choices' bins leaves nothing out.
    assert KIND not in constrained_dims(SPACE, *_box({KIND: (-0.9, 0.9)}))


def test_the_constraint_the_failure_needs_matters_and_is_ranked_first():
    # The model fails wherever the framing is above 0; the box also pinned the azimuth and
    # the elevation, which the failure does not need.
    modes = [_mode(0, {AZ: (-0.5, 0.4), FR: (0.0, 1.0), EL: (0.2, 0.3)})]
    calls: list = []
    spent = rank_constraints(modes, _evaluator(lambda u: u[FR] > 0.0, calls), SPACE, samples=12, seed=0)
    # Screen: 3 constraints x 12 in one batch; only the framing (0 of 12 failing) is retested, on 24.
    assert [len(U) for U in calls] == [36, 24] and spent == 60
    imp = modes[0]["importance"]
    rows = imp["constraints"]
    assert [r["dimension"] for r in rows][0] == "camera.framing"
    top = rows[0]
    assert top["matters"] and top["k"] == 0 and top["n"] == 36 and top["retest"]["n"] == 24
    assert top["p_adjusted"] == top["retest"]["p_adjusted"] < 1e-4  # judged on the retest alone
    assert [r["matters"] for r in rows[1:]] == [False, False] and all(r["k"] == 12 and r["retest"] is None for r in rows[1:])
    assert imp["inside"] == {"basis": "confirmed", "n": 40, "k": 39, "rate": 39 / 40}
    assert [o[0] for o in top["outcomes"]] == [False] * 36
    # The samples are the run seed's: the report regenerates them from the record.
    assert drawn(imp) == 36 and drawn({"samples": 12}) == 24  # runs before the doubled retest drew 2 x 12
    again = outside_samples(SPACE, np.array(modes[0]["lo"]), np.array(modes[0]["hi"]), FR, 36, sample_rng(0, 0, FR))
    assert any(np.array_equal(U, again[:12]) for U in np.split(calls[0], 3)) and np.array_equal(calls[1], again[12:])


def test_a_screened_constraint_that_does_not_hold_up_on_fresh_samples_does_not_matter():
    # A model that fails 80% everywhere (a hash of the row decides): some constraint screens
    # through by chance; its retest, on samples of its own, decides, and nothing matters.
    noisy = lambda u: (int.from_bytes(np.round(u, 9).tobytes()[:8], "little") * 2654435761 % 97) < 78  # noqa: E731
    modes = [_mode(1, {AZ: (-0.5, 0.4), FR: (0.0, 1.0), EL: (0.2, 0.3)}, k=36, n=40)]
    calls: list = []
    rank_constraints(modes, _evaluator(noisy, calls), SPACE, samples=12, seed=3, screen=0.99)
    rows = modes[0]["importance"]["constraints"]
    assert len(calls) == 2 and all(r["retest"] is not None for r in rows)  # screen 0.99: all retested
    assert not any(r["matters"] for r in rows)
    assert [r["p_adjusted"] for r in rows] == [r["retest"]["p_adjusted"] for r in rows]


def test_results_are_seeded_and_modes_without_fresh_samples_are_skipped():
    def run(seed):
        modes = [_mode(2, {AZ: (-0.5, 0.4), FR: (0.0, 1.0)}), {**_mode(3, {FR: (0.0, 1.0)}), "confirmed": None,
                                                               "verified": {"n": 0, "k": 0, "rate": None}}]
        calls: list = []
        # A noisy model: fails 90% inside the framing slab, 30% outside (a hash of the row decides).
        noisy = lambda u: (hash(np.round(u, 9).tobytes()) % 10) < (9 if u[FR] > 0 else 3)  # noqa: E731
        rank_constraints(modes, _evaluator(noisy, calls), SPACE, samples=12, seed=seed)
        return modes, np.concatenate(calls)

    (a, Ua), (b, Ub), (_, Uc) = run(5), run(5), run(6)
    assert np.array_equal(Ua, Ub) and not np.array_equal(Ua, Uc)
    assert a[0]["importance"] == b[0]["importance"]
    assert "importance" not in a[1]  # no samples inside: nothing to compare with
    assert len(Ua) in (24, 48, 72)  # mode 2's two constraints, screened, some retested on 24


def test_a_search_says_what_matters(tmp_path):
    """Through run_search, the report and the CLI: the model fails where the elevation is
    high (noisily); whatever else the box pins, the elevation is what matters, and the
    report shows scenes outside its range that pass."""
    import jsonschema

    from examiner.app.run import mode_line, print_modes
    from examiner.search.config import SearchConfig
    from examiner.search.runner import run_search
    from reports import write_report
    from reports.report import load_results, results_schema
    from reports.rundata import load_run

    from tests.reports.conftest import CoinFlip

    space = ParamSpace.from_groups("camera")
    el = space.names.index("camera.elevation")
    slab = CoinFlip(lambda u: 0.97 if u[el] > 0.2 else 0.03)
    cfg = SearchConfig(strategy="random", budget=800, agents=4, seed=1, threshold=90.0)
    run_search(cfg, slab, space, tmp_path / "run", model_spec="slab")
    (m,) = load_run(tmp_path / "run").modes
    rows = m["importance"]["constraints"]
    assert rows[0]["dimension"] == "camera.elevation" and rows[0]["matters"] and rows[0]["rate"] <= 0.25
    assert [r["dimension"] for r in rows if r["matters"]] == ["camera.elevation"]
    paths = write_report(tmp_path / "run", out_dir=tmp_path / "rep", max_examples=1)
    results = load_results(paths.results)
    jsonschema.validate(results, results_schema())
    (r,) = results["modes"]
    assert r["importance"]["constraints"][0]["dimension"] == "camera.elevation"
    assert "outcomes" not in r["importance"]["constraints"][0]  # per-sample outcomes stay in modes.json
    html = paths.html.read_text()
    assert "What the failure needs: camera.elevation" in html
    # The card leads with what the failure needs, before what merely stands out in the box.
    lead = html.split('<p class="desc needs">Needs: ', 1)[1].split("</p>", 1)[0]
    assert "camera.elevation" in lead and "camera.azimuth" not in lead, lead
    assert html.index('class="desc needs"') < html.index("What the failure needs: ")
    assert html.count("outside the mode's range, example") == 2  # two passing scenes outside, rendered
    line = mode_line({**m, "rank": 1}, space)
    assert "\n      camera.elevation " in line and "what matters alone: camera.elevation (" in line
    assert results["needs"]["failures"] == [{"dimensions": [{**results["needs"]["failures"][0]["dimensions"][0],
                                                            "dimension": "camera.elevation"}], "modes": [1]}]
    assert 'id="needs"' in html and "What the failures need" in html
    printed: list[str] = []
    print_modes(tmp_path / "run", printed.append)
    assert printed[-1].startswith("  camera.elevation ") and printed[-1].endswith(": mode 1")


def _tested(mode_id: int, rank: int, lo: list, hi: list, matters: list[str]) -> dict:
    rows = [{"dimension": n, "matters": n in matters} for n in NAMES]
    return {"id": mode_id, "rank": rank, "lo": lo, "hi": hi, "importance": {"constraints": rows}}


def test_modes_needing_the_same_constraints_on_overlapping_ranges_are_one_failure():
    from examiner.search.importance import group_by_need, same_need

    lo, hi = -np.ones(SPACE.dim), np.ones(SPACE.dim)
    def box(**b):
        a, z = lo.copy(), hi.copy()
        for i, (x, y) in b.items():
            a[int(i[1:])], z[int(i[1:])] = x, y
        return a.tolist(), z.tolist()

    el, az = f"d{EL}", f"d{AZ}"
    m1 = _tested(1, 1, *box(**{el: (0.6, 1.0), az: (-0.2, 0.1)}), ["camera.elevation"])   # pins the azimuth too
    m2 = _tested(2, 2, *box(**{el: (0.7, 1.0), az: (0.5, 0.9)}), ["camera.elevation"])    # another azimuth: same need
    m3 = _tested(3, 3, *box(**{el: (-1.0, -0.6)}), ["camera.elevation"])                   # low elevation: another failure
    m4 = _tested(4, 4, *box(**{el: (0.6, 1.0), az: (-0.2, 0.1)}), ["camera.elevation", "camera.azimuth"])
    m5 = _tested(5, 5, *box(**{el: (0.6, 1.0)}), [])                                       # needs nothing alone
    assert same_need(m1, m2, NAMES) and not same_need(m1, m3, NAMES) and not same_need(m1, m4, NAMES)
    groups = group_by_need([m1, m2, m3, m4, m5], NAMES)
    assert [[m["id"] for m in g] for g in groups] == [[1, 2], [3], [4]]


def test_pose_change_says_what_a_latent_does_to_the_body():
    from examiner.search.importance import dof_words, pose_change, pose_change_text

    space = ParamSpace.from_groups("pose,camera")
    z = space.names.index("pose.z02")
    low = _space_box(space, {z: (-1.0, -0.3)})
    high = _space_box(space, {z: (0.3, 1.0)})
    a = pose_change(space, *low, z, seed=0, mode_id=1)
    assert a and all(abs(c["degrees"]) >= 10.0 for c in a)
    assert a == pose_change(space, *low, z, seed=0, mode_id=1)  # seeded
    # the opposite end of the latent moves the same joint the other way
    b = {c["dof"]: c["degrees"] for c in pose_change(space, *high, z, seed=0, mode_id=1, min_degrees=0.0, top=40)}
    assert np.sign(b[a[0]["dof"]]) == -np.sign(a[0]["degrees"])
    # a camera dimension does not move the pose (nor is it asked)
    el = space.names.index("camera.elevation")
    assert pose_change(space, *_space_box(space, {el: (0.5, 1.0)}), el, seed=0, mode_id=1) == []
    assert dof_words("l_knee_flexion") == "left knee flexion" and dof_words("root_pitch") == "body pitch"
    assert pose_change_text([{"dof": "r_hip_flexion", "degrees": -21.4}]) == "right hip flexion -21°"


def _space_box(space: ParamSpace, bounds: dict[int, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = -np.ones(space.dim), np.ones(space.dim)
    for i, (a, b) in bounds.items():
        lo[i], hi[i] = a, b
    return lo, hi


def test_at_most_max_retest_constraints_of_a_mode_are_retested_lowest_screen_p_first():
    from examiner.search.importance import MAX_RETEST

    dims = [i for i, d in enumerate(SPACE.dimensions) if not d.choices][:MAX_RETEST + 2]
    modes = [_mode(4, {i: (-0.2, 0.6) for i in dims}, k=32, n=40)]
    calls: list = []
    # Fails only inside the box on the first two dimensions (there 80% of the time, a hash
    # of the row decides): those two screen lowest, the other four screen through too.
    def fails(u):
        return (all(-0.2 <= u[i] <= 0.6 for i in dims[:2])
                and int.from_bytes(np.round(u, 9).tobytes()[:8], "little") * 2654435761 % 97 < 78)

    rank_constraints(modes, _evaluator(fails, calls), SPACE, samples=12, seed=0, screen=0.99)
    rows = modes[0]["importance"]["constraints"]
    retested = [r["dimension"] for r in rows if r["retest"] is not None]
    assert len(calls[1]) == MAX_RETEST * 24 and len(retested) == MAX_RETEST
    assert {NAMES[i] for i in dims[:2]} <= set(retested)
    assert {r["dimension"] for r in rows if r["matters"]} == {NAMES[i] for i in dims[:2]}


def test_a_damaged_constraint_test_in_modes_json_is_a_one_line_error():
    """A run folder someone sent may carry a hand-edited modes.json: the report, the CLI
    and the fine-tuning sets read `importance`, so its fields are checked on load."""
    import pytest

    from examiner.store import StoreError, check_modes

    good = {"samples": 12, "seed": {"root": 0}, "inside": {"n": 40, "k": 39, "rate": 0.975},
            "constraints": [{"dimension": "camera.elevation", "matters": True, "k": 1, "n": 12}]}
    mode = {"id": 1, "lo": [-1.0] * 3, "hi": [1.0] * 3, "verified": {"rate": 0.9}}
    check_modes([{**mode, "importance": good}, {**mode, "importance": None}, mode], 3, "modes.json")
    for bad in ("yes", {**good, "constraints": [{"dimension": "camera.elevation", "matters": "yes", "k": 1, "n": 12}]},
                {**good, "seed": {}}, {**good, "inside": {"n": 40, "k": 39, "rate": None}},
                {**good, "constraints": [{"matters": True, "k": 1, "n": 12}]}):
        with pytest.raises(StoreError, match=r"modes.json is damaged \(mode 1: 'importance' is not a constraint test") as e:
            check_modes([{**mode, "importance": bad}], 3, "modes.json")
        assert "\n" not in str(e.value)
