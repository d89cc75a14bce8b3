"""Region growing, Wilson intervals, claims and mode merging."""

import math

import numpy as np
import pytest

from examiner.search import BoxEvaluator, SearchConfig
from examiner.search.config import RegionConfig
from examiner.search.archive import FailureArchive
from examiner.search.boxes import box_overlap, wilson_interval
from examiner.search.growth import GrownRegion, RegionGrowth
from examiner.search.modes import ModeSet
from examiner.search.session import SearchSession
from simulator.params import ParamSpace


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10, 0.95)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    lo, hi = wilson_interval(40, 40, 0.95)
    assert hi == 1.0 and lo == pytest.approx(0.9124, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def grow(space, evaluator, seed_point, cfg=RegionConfig(), seed=0):
    """Run one job to completion against the evaluator; return (region, cost)."""
    threshold = 90.0
    job = RegionGrowth(0, 0, seed_point, cfg, np.random.default_rng(seed))
    while not job.done:
        qs = job.next_queries()
        outs = evaluator.evaluate(np.array([q.u for q in qs]))
        vals = np.array([o.error for o in outs])
        job.consume(vals > threshold, vals)
    return job.result


@pytest.mark.parametrize("probe_group", [1, 8])
@pytest.mark.parametrize("bounds", [
    {"camera.roll": (0.2, 0.7), "camera.framing": (-0.8, -0.1)},
    {"pose.l_knee_flexion": (0.5, 0.8), "pose.r_elbow_flexion": (-0.6, -0.3), "shape.age": (-1.0, -0.5)},
])
def test_region_growing_recovers_a_known_box(bounds, probe_group):
    space = ParamSpace.from_groups("joints,shape,camera")
    ev = BoxEvaluator(space, bounds, noise=1.0)
    rng = np.random.default_rng(3)
    seed_point = rng.uniform(-1, 1, space.dim)
    for name, (lo, hi) in bounds.items():
        seed_point[space.names.index(name)] = lo + 0.37 * (hi - lo)
    cfg = RegionConfig(probe_group=probe_group)
    r = grow(space, ev, seed_point, cfg)
    assert r.accepted and r.rate >= cfg.min_failure_rate
    # all N samples, or the first half when its Wilson interval already clears the rate
    assert r.n in (cfg.verify_samples // 2, cfg.verify_samples) and r.interval[0] <= r.rate <= r.interval[1]
    assert r.n == cfg.verify_samples or r.interval[0] >= cfg.min_failure_rate
    for i, name in enumerate(space.names):
        if name in bounds:
            lo, hi = bounds[name]
            # conservative edges, within the bisection tolerance of the truth
            assert lo - 1e-9 <= r.lo[i] <= lo + cfg.bisection_tol, name
            assert hi - cfg.bisection_tol <= r.hi[i] <= hi + 1e-9, name
        else:
            assert r.lo[i] == -1.0 and r.hi[i] == 1.0, name
    assert r.cost < 2 * space.dim + 4 * 2 * len(bounds) * 6 + r.n


def test_group_probes_cost_less_than_axis_probes():
    space = ParamSpace.from_groups("joints,shape,camera")
    bounds = {"pose.l_knee_flexion": (0.5, 0.8), "camera.roll": (-0.6, -0.3), "shape.age": (-0.9, -0.5)}
    ev = BoxEvaluator(space, bounds, noise=1.0)
    seed_point = np.random.default_rng(4).uniform(-0.9, 0.9, space.dim)  # no coordinate at a bound
    for name, (lo, hi) in bounds.items():
        seed_point[space.names.index(name)] = 0.5 * (lo + hi)
    probes = {}
    for g in (1, 8):
        job = RegionGrowth(0, 0, seed_point, RegionConfig(probe_group=g), np.random.default_rng(0))
        n_probe = 0
        while not job.done:
            qs = job.next_queries()
            n_probe += sum(q.phase == "probe" for q in qs)
            vals = np.array([o.error for o in ev.evaluate(np.array([q.u for q in qs]))])
            job.consume(vals > 90.0, vals)
        assert job.result.accepted
        probes[g] = n_probe
    assert probes[1] == 2 * space.dim  # one probe per dimension and side
    # 2 * ceil(51 / 8) = 14 group probes, then halving down to the 6 constrained sides
    assert probes[8] <= 14 + 6 * 2 * 3 < probes[1]


def test_a_group_probe_that_lands_in_another_region_is_re_probed_alone():
    # heavy_side_view constrains pose.root_yaw to (0.35, 0.5); the group probe that moves
    # root_yaw to +1 also moves root_pitch to +1, lands in upside_down (root_pitch >= 0.7),
    # fails, and puts root_yaw's edge at +1. Verification then fails, every side a group
    # probe put at its bound is probed alone, root_yaw's passes and bisection recovers
    # the true edge.
    from examiner.search.analytic import PLANTED_REGIONS, AnalyticEvaluator

    space = ParamSpace.from_groups("joints,shape,camera")
    regions = {r.name: r for r in PLANTED_REGIONS}
    ev = AnalyticEvaluator(space, regions=[regions["upside_down"], regions["heavy_side_view"]], noise=1.0)
    yaw = space.names.index("pose.root_yaw")
    cfg = RegionConfig(probe_group=8)
    tol = cfg.bisection_tol
    for seed in range(3):
        rng = np.random.default_rng(seed)
        seed_point = rng.uniform(-0.6, 0.6, space.dim)  # root_pitch < 0.7: outside upside_down
        for name, (lo, hi) in regions["heavy_side_view"].bounds.items():
            seed_point[space.names.index(name)] = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))
        job = RegionGrowth(0, 0, seed_point, cfg, np.random.default_rng(seed))
        while not job.done:
            qs = job.next_queries()
            vals = np.array([o.error for o in ev.evaluate(np.array([q.u for q in qs]))])
            job.consume(vals > 90.0, vals)
        r = job.result
        assert job.reprobes >= 1, seed  # the group probe did put root_yaw at +1
        assert r.accepted and r.rate >= cfg.min_failure_rate, (seed, r.reason)
        assert 0.35 - 1e-9 <= r.lo[yaw] <= 0.35 + tol and 0.5 - tol <= r.hi[yaw] <= 0.5 + 1e-9, seed
        for name, (lo, hi) in regions["heavy_side_view"].bounds.items():
            i = space.names.index(name)
            assert lo - 1e-9 <= r.lo[i] and r.hi[i] <= hi + 1e-9, (seed, name)


def test_implausible_scenes_neither_extend_the_box_nor_count_in_its_rate():
    # The model fails whenever camera.roll > 0.2; scenes with camera.framing > 0.5 are
    # implausible (they never fail). The box stops at framing 0.5, where the seed's scene
    # stops being plausible (an implausible step closes a bracket like a passing one), and
    # its rate is over the plausible samples only: 100%.
    space = ParamSpace.from_groups("camera")
    roll, dist = space.names.index("camera.roll"), space.names.index("camera.framing")

    def grow_implausible(seed):
        job = RegionGrowth(0, 0, np.where(np.arange(space.dim) == roll, 0.6, 0.0), RegionConfig(),
                           np.random.default_rng(seed))
        while not job.done:
            U = np.array([q.u for q in job.next_queries()])
            plausible = U[:, dist] <= 0.5
            failed = (U[:, roll] > 0.2) & plausible
            job.consume(failed, np.where(failed, 150.0, 30.0), plausible)
        return job.result

    r = grow_implausible(0)
    assert r.accepted and r.rate == 1.0 and r.k == r.n
    tol = RegionConfig().bisection_tol
    assert 0.5 - tol <= r.hi[dist] <= 0.5 + tol and r.lo[dist] == -1.0
    assert abs(r.lo[roll] - 0.2) <= tol
    assert 0 <= r.n_implausible < 20 and r.n + r.n_implausible in (20, RegionConfig().verify_samples)
    m = ModeSet(RegionConfig())
    mode = m.add(r)
    assert len(mode.errors) == r.n and mode.to_dict()["verified"]["implausible"] == r.n_implausible
    assert all(e["failed"] for e in mode.examples[:-1])


def test_an_implausible_group_probe_is_split_not_taken_as_failing():
    # Fails for 0.2 < camera.roll < 0.7; implausible for camera.framing > 0.5. The group
    # probe that moves every camera dimension to +1 is implausible: it must not put
    # roll's upper edge at +1 (which verification would then have to catch).
    space = ParamSpace.from_groups("camera")
    roll, dist = space.names.index("camera.roll"), space.names.index("camera.framing")
    cfg = RegionConfig(probe_group=8)
    job = RegionGrowth(0, 0, np.where(np.arange(space.dim) == roll, 0.45, 0.0), cfg, np.random.default_rng(0))
    while not job.done:
        U = np.array([q.u for q in job.next_queries()])
        plausible = U[:, dist] <= 0.5
        failed = (U[:, roll] > 0.2) & (U[:, roll] < 0.7) & plausible
        job.consume(failed, np.where(failed, 150.0, 30.0), plausible)
    r = job.result
    assert r.accepted and job.reprobes == 0
    assert 0.7 - cfg.bisection_tol <= r.hi[roll] <= 0.7 and 0.2 <= r.lo[roll] <= 0.2 + cfg.bisection_tol
    # framing: the box stops where the seed's scene stops being plausible
    assert 0.5 - cfg.bisection_tol <= r.hi[dist] <= 0.5 + cfg.bisection_tol and r.lo[dist] == -1.0


def test_a_failure_narrower_than_the_resolution_is_not_a_zero_width_mode():
    # Fails only within +-0.01 of camera.roll = 0.3: every bisection step falls back to the
    # seed. The box is verified at the bisection tolerance's width (where ~1/3 fails) and
    # rejected, instead of being accepted as a point.
    space = ParamSpace.from_groups("camera")
    roll = space.names.index("camera.roll")
    cfg = RegionConfig()

    class Spike:
        def evaluate(self, U):
            from examiner.search import Outcome
            return [Outcome(150.0 if abs(u[roll] - 0.3) < 0.01 else 30.0, {"pa_mpjpe": 0.0}) for u in U]

    r = grow(space, Spike(), np.where(np.arange(space.dim) == roll, 0.3, 0.0), cfg)
    assert r.hi[roll] - r.lo[roll] >= cfg.bisection_tol - 1e-12 and r.lo[roll] <= 0.3 <= r.hi[roll]
    assert not r.accepted and r.rate < 0.8
    assert np.all(r.hi - r.lo >= cfg.bisection_tol - 1e-12)


def test_verification_rejects_a_region_that_is_not_a_box():
    # Failure on a cross of two thin strips: every axis probe from the centre fails, so
    # the probes see the whole square, but few uniform samples in it fail.
    space = ParamSpace.from_groups("camera")

    class Band:
        def evaluate(self, U):
            from examiner.search import Outcome
            return [Outcome(120.0 if min(abs(u[0]), abs(u[1])) < 0.1 else 30.0, {"pa_mpjpe": 0.0}) for u in U]

    r = grow(space, Band(), np.zeros(space.dim), RegionConfig(max_verify_rounds=2))
    assert not r.accepted and r.rate < 0.8 and r.reason


def test_archive_proximity_and_claims():
    a = FailureArchive(3, radius=0.5, margin=0.05)
    assert a.proximity(np.zeros((2, 3))).tolist() == [0.0, 0.0]
    a.add(np.array([0.0, -1, -1]), np.array([0.5, 1, 1]), "claimed", 0)
    U = np.array([[0.2, 0, 0], [0.52, 0, 0], [0.75, 0, 0], [1.0, 0, 0]])
    assert a.claimed(U).tolist() == [True, True, False, False]
    assert a.proximity(U) == pytest.approx([1.0, 0.96, 0.5, 0.0])
    a.remove_owner(0, "claimed")
    assert not a.claimed(U).any()


def _region(job, lo, hi):
    lo, hi = np.array(lo, float), np.array(hi, float)
    U = np.random.default_rng(job).uniform(lo, hi, size=(10, len(lo)))
    return GrownRegion(job, job, U[0], lo, hi, True, 10, 9, 0.9, wilson_interval(9, 10), U,
                       np.full(10, 100.0 + job), np.ones(10, bool), 50)


def test_overlapping_regions_merge_into_one_mode():
    assert box_overlap(np.array([0, 0.]), np.array([1, 1.]), np.array([0.5, 0.5]), np.array([2, 2.])) == pytest.approx(0.25)
    modes = ModeSet(RegionConfig(merge_overlap=0.5))
    modes.add(_region(0, [0.0, -1], [0.5, 1]))
    modes.add(_region(1, [0.6, -1], [0.9, 1]))  # disjoint -> new mode
    m = modes.add(_region(2, [0.05, -1], [0.6, 1]))  # overlaps mode 0 almost entirely
    assert len(modes) == 2 and m.id == 0 and m.members == [0, 2]
    assert m.lo.tolist() == [0.05, -1] and m.hi.tolist() == [0.6, 1]  # the larger member's box
    assert len(m.errors) == 20 and m.examples and m.examples[0]["failed"]
    d = m.to_dict(["a", "b"])
    assert d["constrained"] == {"a": [0.05, 0.6]} and d["verified"]["k"] == 9


def test_session_budget_counts_growing_and_claims_stop_regrowth():
    space = ParamSpace.from_groups("camera")
    ev = BoxEvaluator(space, {"camera.roll": (0.0, 1.0)}, noise=0.5)
    cfg = SearchConfig(budget=400, agents=4, strategy="random").validate()
    s = SearchSession(cfg, space, ev, None, np.random.SeedSequence(0))
    rng = np.random.default_rng(0)
    while s.can_afford(4):
        s.evaluate_round(rng.uniform(-1, 1, (4, space.dim)), [0, 1, 2, 3], "random")
    s.drain("random")
    assert s.n_evals <= cfg.budget
    assert sum(s.evals_by_phase.values()) == s.n_evals
    assert s.evals_by_phase["probe"] > 0 and s.evals_by_phase["verify"] > 0
    assert len(s.modes) == 1  # half the space fails; later hits are claimed, not regrown
    accepted = [j for j in s.job_log if j.accepted]
    assert len(accepted) == 1


@pytest.mark.parametrize("growth", ["probe", "log"])
def test_provisional_claim_follows_the_running_job(growth):
    space = ParamSpace.from_groups("camera")
    roll = space.names.index("camera.roll")
    ev = BoxEvaluator(space, {"camera.roll": (0.0, 0.5)}, noise=0.5)
    cfg = SearchConfig(budget=400, agents=1, strategy="random", region=RegionConfig(growth=growth)).validate()
    s = SearchSession(cfg, space, ev, None, np.random.SeedSequence(0))
    seed_point = np.zeros((1, space.dim))
    seed_point[0, roll] = 0.25
    s.evaluate_round(seed_point, [0], "random")  # a failure: a job starts, claim = the seed
    assert len(s.jobs) == 1 and s.archive.kind == ["provisional"]
    job = s.jobs[0]
    def probing():  # the probes (groups split over a few rounds)
        return job.stage == "identify" if growth == "log" else (job.groups is None or job.groups)

    while probing():
        s.evaluate_round(np.zeros((0, space.dim)), [], "random")
    assert not job.done
    lo, hi = s.archive.lo[0], s.archive.hi[0]
    free = [i for i in range(space.dim) if i != roll]
    assert (lo[free] == -1).all() and (hi[free] == 1).all()  # free dimensions reach both bounds
    assert lo[roll] == hi[roll] == 0.25  # the constrained one waits for bisection
    inside = np.zeros((1, space.dim))
    inside[0, roll] = 0.25
    inside[0, free] = 0.9
    assert s.archive.claimed(inside)[0]  # a failure there is no new seed
