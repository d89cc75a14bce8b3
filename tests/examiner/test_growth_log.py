"""Region growing from the log (examiner.search.growth_log): recovers a planted box with
fewer fresh evaluations than the probe path, under the same verification rule, and
resumes deterministically. Counts evaluations, never time."""

import dataclasses

import numpy as np
import pytest

from examiner.search import BoxEvaluator, SearchConfig, build_evaluator, run_search
from examiner.search.config import RegionConfig
from examiner.search.growth import RegionGrowth
from examiner.search.growth_log import EvaluationLog, LogGrowth
from examiner.store import RunStore
from simulator.params import ParamSpace
from tests.examiner.test_search_runs import CrashingEvaluator

THRESHOLD = 90.0
OLD = RegionConfig(growth="probe", probe_group=1, bisection_tol=1 / 16, edge_fraction=0.0)
NEW = RegionConfig(growth="log", probe_group=8, bisection_tol=1 / 32, edge_fraction=0.25)
BOUNDS = {"pose.l_knee_flexion": (0.45, 0.8), "pose.r_elbow_flexion": (-0.6, -0.3), "shape.age": (-0.9, -0.55)}


@pytest.fixture(scope="module")
def space():
    return ParamSpace.from_groups("joints,shape,camera")


def _seed_point(space, rng):
    x0 = rng.uniform(-1, 1, space.dim)
    for name, (lo, hi) in BOUNDS.items():
        x0[space.names.index(name)] = lo + 0.37 * (hi - lo)
    return x0


def _run(job, ev, log=None):
    """Run a job to completion; every batch it asks for is evaluated fresh (and logged)."""
    fresh = []
    while not job.done:
        qs = job.next_queries()
        U = np.array([q.u for q in qs])
        vals = np.array([o.error for o in ev.evaluate(U)])
        fresh.append(U)
        job.consume(vals > THRESHOLD, vals)
        if log is not None:
            log.append(U, vals > THRESHOLD, np.ones(len(U), bool))
    return job.result, np.concatenate(fresh)


def _check_box(space, r, cfg):
    for i, name in enumerate(space.names):
        if name in BOUNDS:
            lo, hi = BOUNDS[name]
            # within the bisection tolerance of the truth, never past it by more than
            # edge_fraction of the final bracket
            assert lo - cfg.edge_fraction * cfg.bisection_tol - 1e-9 <= r.lo[i] <= lo + cfg.bisection_tol, name
            assert hi - cfg.bisection_tol <= r.hi[i] <= hi + cfg.edge_fraction * cfg.bisection_tol + 1e-9, name
        else:
            assert r.lo[i] == -1.0 and r.hi[i] == 1.0, name


def test_log_growth_recovers_a_planted_box_with_fewer_fresh_evaluations(space):
    ev = BoxEvaluator(space, BOUNDS, noise=1.0)
    x0 = _seed_point(space, np.random.default_rng(3))
    old, _ = _run(RegionGrowth(0, 0, x0, OLD, np.random.default_rng(0)), ev)
    # A log as a search leaves it: uniform proposals plus points that cross a face of
    # the box (inside on the other bounding dimensions, just past the edge on one).
    rng = np.random.default_rng(1)
    U = rng.uniform(-1, 1, (400, space.dim))
    for k, name in enumerate(BOUNDS):
        rows = U[100 * k: 100 * k + 40]
        for other, (lo, hi) in BOUNDS.items():
            rows[:, space.names.index(other)] = rng.uniform(lo, hi, len(rows))
        lo, hi = BOUNDS[name]
        rows[:, space.names.index(name)] = np.where(rng.random(len(rows)) < 0.5, lo - rng.uniform(0.01, 0.3, len(rows)),
                                                    hi + rng.uniform(0.01, 0.3, len(rows)))
    vals = np.array([o.error for o in ev.evaluate(U)])
    log = EvaluationLog(space.dim)
    log.append(U, vals > THRESHOLD, np.ones(len(U), bool))
    n_logged = len(log)

    job = LogGrowth(0, 0, x0, NEW, np.random.default_rng(0), log)
    new, fresh = _run(job, ev, log)
    no_log, _ = _run(LogGrowth(0, 0, x0, NEW, np.random.default_rng(0), None), ev)

    for r, cfg in ((old, OLD), (new, NEW), (no_log, NEW)):
        # the same verification rule: N fresh samples, >= 80% failing, Wilson interval; or,
        # decided after the first half, a Wilson interval whose lower end is >= 80%
        assert r.accepted and r.n in (cfg.verify_samples // 2, cfg.verify_samples) and r.rate >= cfg.min_failure_rate
        assert r.n == cfg.verify_samples or r.interval[0] >= cfg.min_failure_rate
        assert r.interval[0] <= r.rate <= r.interval[1]
        _check_box(space, r, cfg)
    assert job.log_moves > 0  # the log moved bracket ends
    assert new.cost < no_log.cost < old.cost  # fewer fresh evaluations with the log than without
    assert new.cost == len(fresh)
    # verification samples are fresh draws, none taken from the log
    logged = log.arrays()[0][:n_logged]
    assert not (new.samples[:, None, :] == logged[None]).all(axis=2).any()
    assert np.all((new.samples >= new.lo) & (new.samples <= new.hi))


def test_log_growth_finds_a_box_bounded_on_one_side_only(space):
    """The mirror (side -1 presumed like side +1) must not cut a box open at -1."""
    bounds = {"pose.l_knee_flexion": (-1.0, 0.3), "shape.age": (-0.4, 0.2)}
    ev = BoxEvaluator(space, bounds, noise=1.0)
    x0 = np.random.default_rng(5).uniform(-1, 1, space.dim)
    x0[space.names.index("pose.l_knee_flexion")] = -0.2
    x0[space.names.index("shape.age")] = -0.1
    r, _ = _run(LogGrowth(0, 0, x0, NEW, np.random.default_rng(0)), ev)
    assert r.accepted
    i, j = space.names.index("pose.l_knee_flexion"), space.names.index("shape.age")
    assert r.lo[i] == -1.0 and 0.3 - NEW.bisection_tol <= r.hi[i] <= 0.3 + NEW.bisection_tol
    assert -0.4 - NEW.bisection_tol <= r.lo[j] and r.hi[j] <= 0.2 + NEW.bisection_tol


def test_an_implausible_scene_past_the_edge_does_not_extend_the_box(space):
    """Through the renderer, bisection steps past a region's edge often land on implausible
    scenes (the seed's pose at a joint's limit self-penetrates). Counted as failing, they
    walked the edge to the bound and the box failed verification (about 160 evaluations
    lost per such job, benchmarks/RESULTS-search-recall.md); they now close the bracket
    like a passing step. The model fails in `bounds`; a scene is implausible where
    age < -0.81 and camera.azimuth > 0.9: true on the seed's line past age's lower edge
    (-0.8), rare among the box's uniform samples, which pass there."""
    from examiner.search.outcome import Outcome

    bounds = {"pose.l_knee_flexion": (0.45, 0.8), "shape.age": (-0.8, -0.6)}
    age, k = space.names.index("shape.age"), space.names.index("camera.azimuth")
    box = BoxEvaluator(space, bounds, noise=1.0)

    def evaluate(U):
        outs = box.evaluate(U)
        plausible = ~((U[:, age] < -0.81) & (U[:, k] > 0.9))
        vals = np.array([o.error for o in outs])
        return (vals > THRESHOLD) & plausible, vals, plausible

    x0 = np.random.default_rng(3).uniform(-1, 1, space.dim)
    x0[space.names.index("pose.l_knee_flexion")], x0[age], x0[k] = 0.6, -0.7, 0.95
    for cls, cfg in ((LogGrowth, NEW), (RegionGrowth, OLD)):
        job = cls(0, 0, x0, cfg, np.random.default_rng(0))
        while not job.done:
            job.consume(*evaluate(np.array([q.u for q in job.next_queries()])))
        r = job.result
        assert r.accepted and job.verify_round == 1, cls.__name__  # right the first time
        assert -0.8 - cfg.bisection_tol <= r.lo[age] <= -0.8 + cfg.bisection_tol, (cls.__name__, r.lo[age])


def test_log_growth_rejects_what_does_not_verify(space):
    """A failure that is not a box (a thin diagonal slab) is verified on fresh samples and
    rejected or shrunk, exactly as on the probe path."""

    class Diagonal:
        def evaluate(self, U):
            from examiner.search.outcome import Outcome
            s = U[:, 0] + U[:, 1]
            return [Outcome(200.0 if abs(v) < 0.05 else 30.0, {"pa_mpjpe": 0.0}, False, None, True, {}) for v in s]

    x0 = np.zeros(space.dim)
    r, _ = _run(LogGrowth(0, 0, x0, NEW, np.random.default_rng(0)), Diagonal())
    if r.accepted:
        assert r.rate >= NEW.min_failure_rate and r.n == NEW.verify_samples
    else:
        assert r.rate < NEW.min_failure_rate


def test_evaluation_log_from_records_matches_the_session_log(tmp_path, space):
    ev = build_evaluator("analytic:planted", space)
    cfg = SearchConfig(strategy="random", budget=300, agents=4, seed=0)
    cfg = cfg.replace(region=NEW)
    run_search(cfg, ev, space, tmp_path / "r")
    recs = RunStore.open(tmp_path / "r").records()
    U, F, P = EvaluationLog.from_records(space.dim, recs).arrays()
    assert U.shape == (len(recs), space.dim) and F.sum() == sum(r["failed"] for r in recs)
    assert P.sum() == sum(bool(r["plausible"]) and not r["model_error"] for r in recs)


@pytest.mark.parametrize("strategy", ["marl", "random"])
def test_log_growth_resumes_to_the_uninterrupted_log(tmp_path, space, strategy):
    from examiner.search import PPOConfig

    cfg = SearchConfig(strategy=strategy, budget=400, agents=4, seed=0, checkpoint_every=5,
                       ppo=PPOConfig(n_steps=6, batch_size=24, n_epochs=2, net_arch=(32, 32)))
    cfg = cfg.replace(region=dataclasses.replace(NEW, max_jobs=4))
    ev = build_evaluator("analytic:planted", space)

    def log(out):
        return [{k: v for k, v in r.items() if k != "timings"} for r in RunStore.open(out).records()]

    run_search(cfg, ev, space, tmp_path / "ref")
    reference = log(tmp_path / "ref")
    assert any(r["phase"] == "bisect" for r in reference)
    for limit in (290, 263, 241, 219, 197):
        run = tmp_path / f"run{limit}"
        with pytest.raises(RuntimeError, match="renderer died"):
            run_search(cfg, CrashingEvaluator(ev, limit), space, run)
        n_ckpt, _ = RunStore.open(run).load_checkpoint()
        if 0 < n_ckpt < RunStore.open(run).n_evaluations:
            break
    res = run_search(cfg, ev, space, run, resume=True)
    assert res.resumed_from == n_ckpt > 0
    assert log(run) == reference


@pytest.mark.parametrize("region, match", [
    (RegionConfig(growth="tree"), "region.growth must be one of probe, log"),
    (RegionConfig(edge_fraction=1.0), r"region.edge_fraction must be in \[0, 1\)"),
])
def test_bad_growth_options_are_one_line_errors(region, match):
    from examiner.search import SearchConfigError

    with pytest.raises(SearchConfigError, match=match):
        SearchConfig(region=region).validate()
    with pytest.raises(SearchConfigError, match="region.growth"):
        SearchConfig.from_dict({"region": {"growth": 3}}).validate()
    with pytest.raises(SearchConfigError, match="region.shrink must be one of peel, band"):
        SearchConfig.from_dict({"region": {"shrink": "prim"}}).validate()


def _verify_once(cfg, pattern):
    """One verification round of a job put straight into verification: `pattern[i]` is
    whether sample i fails. Returns the result and the samples it asked for."""
    job = RegionGrowth(0, 0, np.zeros(4), dataclasses.replace(cfg, max_verify_rounds=1), np.random.default_rng(5))
    job.lo, job.hi = np.full(4, -0.5), np.full(4, 0.5)
    job.groups, job.stage = [], "verify"
    asked = []
    while not job.done:
        qs = job.next_queries()
        asked += [q.u for q in qs]
        job.consume(np.array([pattern[q.key] for q in qs]), np.array([100.0 if pattern[q.key] else 10.0 for q in qs]))
    return job.result, np.array(asked)


@pytest.mark.parametrize("n_fail_first, n_fail_second, asked_early", [
    (20, 20, 20),   # 20 of 20: Wilson [0.84, 1] >= 0.8, accepted after the first half
    (19, 20, 40),   # 19 of 20: [0.76, 0.99], not yet clear: all 40 decide (39/40, accepted)
    (18, 14, 40),   # 32 of 40 = 0.8: accepted on all 40
    (12, 19, 40),   # 12 of 20 could still reach 32 of 40: asked; 31/40 rejected
    (11, 20, 20),   # 11 of 20 can no longer reach 32 of 40: rejected after the first half
])
def test_early_verification_takes_the_full_rounds_decision_on_the_same_samples(n_fail_first, n_fail_second, asked_early):
    pattern = [i < n_fail_first for i in range(20)] + [i < n_fail_second for i in range(20)]
    full, U_full = _verify_once(RegionConfig(early_verify=False), pattern)
    early, U_early = _verify_once(RegionConfig(early_verify=True), pattern)
    assert len(U_full) == full.n == 40 and len(U_early) == early.n == asked_early
    assert np.array_equal(U_early, U_full[:asked_early])  # the same draws, a prefix of them
    assert early.accepted == full.accepted == (n_fail_first + n_fail_second >= 32)
    assert early.k == sum(pattern[:asked_early]) and early.interval[0] <= early.rate <= early.interval[1]


def _smooth_verify(shrink: str, seed: int, dim: int = 12):
    """A job already in verification on the whole cube around a seed in a failure core
    (u0 < 0 and u1 < 0 always fail) surrounded by a 40% failure probability elsewhere:
    a real model's smooth fall-off, where the box's first verification rate is ~0.55."""
    cfg = RegionConfig(shrink=shrink)
    job = RegionGrowth(0, 0, np.full(dim, -0.5), cfg, np.random.default_rng(seed))
    job.lo, job.hi, job.stage, job.groups = -np.ones(dim), np.ones(dim), "verify", []
    world = np.random.default_rng(1000 + seed)
    while not job.done:
        U = np.array([q.u for q in job.next_queries()])
        core = (U[:, 0] < 0) & (U[:, 1] < 0)
        job.consume(core | (world.random(len(U)) < 0.4), np.zeros(len(U)))
    return job.result


def test_peeling_accepts_a_smooth_failure_core_more_often_than_one_side_per_round():
    """The "peel" shrink pools the verification samples inside the box and can move
    several sides in a round, so on a smooth failure core it reaches the rate more often
    than the "band" shrink (one side by 30% per round). Measured on these 20 seeds: peel
    6/20 accepted, band 1/20 (a hard case: the first rounds stop after 20 samples in 12
    dimensions; the one both accept is seed 2, whose first 40 samples happen to fail 32
    times on the whole cube). Every box peel pulled in and accepted has moved a
    constrained side to the core's edge and left the other dimensions wide."""
    peel = [_smooth_verify("peel", s) for s in range(20)]
    band = [_smooth_verify("band", s) for s in range(20)]
    assert sum(r.accepted for r in peel) >= 4 and sum(r.accepted for r in band) <= 2
    shrunk = [r for r in peel if r.accepted and np.any(r.hi - r.lo < 2.0)]
    assert len(shrunk) >= 3
    for r in shrunk:
        assert min(r.hi[0], r.hi[1]) <= 0.1
        assert np.median((r.hi - r.lo)[2:]) >= 1.6  # the unconstrained dimensions stay wide
