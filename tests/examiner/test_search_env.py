"""The per-agent gymnasium env and the multi-agent VecEnv."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from examiner.search import BoxEvaluator, SearchConfig
from examiner.search.env import FailureSearchEnv
from simulator.params import ParamSpace


@pytest.fixture(scope="module")
def space():
    return ParamSpace.from_groups("camera")


def make_env(space, **kw):
    ev = BoxEvaluator(space, {"camera.roll": (0.5, 1.0)}, noise=0.5)
    return FailureSearchEnv(space.dim, SearchConfig(), evaluator=ev, **kw)


def test_check_env_passes(space):
    check_env(make_env(space, agent_id=1, n_agents=3), skip_render_check=True)


def test_reset_is_seeded_and_uses_the_env_generator(space):
    a, b = make_env(space), make_env(space)
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    assert np.array_equal(oa, ob)
    oc, _ = b.reset(seed=6)
    assert not np.array_equal(oa, oc)
    # same seed, same actions -> same trajectory
    a.reset(seed=9)
    b.reset(seed=9)
    for t in range(6):
        act = np.linspace(-1, 1, space.dim).astype(np.float32) * (1 if t % 2 else -1)
        sa, sb = a.step(act), b.step(act)
        assert np.array_equal(sa[0], sb[0]) and sa[1] == sb[1] and sa[2:4] == sb[2:4]


def test_step_finds_failure_terminates_with_bonus(space):
    env = make_env(space)
    roll = space.names.index("camera.roll")
    start = np.zeros(space.dim)
    start[roll] = 0.6  # inside the box already
    env.reset(seed=0, options={"start": start})
    obs, reward, terminated, truncated, info = env.step(np.zeros(space.dim, dtype=np.float32))
    assert info["failed"] and info["new_failure"] and terminated and not truncated
    assert reward >= SearchConfig().env.fail_bonus  # score >= 0 inside the box, plus the bonus
    assert env.observation_space.contains(obs)


def test_episode_truncates_and_anchor_keeps_better_points(space):
    cfg = SearchConfig()
    env = make_env(space)
    env.reset(seed=1)
    truncated = False
    for t in range(cfg.env.episode_length):
        before = env.anchor.copy()
        proposal = np.clip(before + cfg.env.max_step * 0.5, -1, 1)
        _, _, terminated, truncated, info = env.step(np.full(space.dim, 0.5, dtype=np.float32))
        if terminated:
            break
        assert np.array_equal(env.anchor, proposal if info["accepted"] else before)
    assert truncated or terminated


def test_claimed_region_is_penalised_and_not_a_new_failure(space):
    env = make_env(space)
    roll = space.names.index("camera.roll")
    lo, hi = -np.ones(space.dim), np.ones(space.dim)
    lo[roll], hi[roll] = 0.5, 1.0
    env.scorer.archive.add(lo, hi, "claimed", owner=0)
    start = np.zeros(space.dim)
    start[roll] = 0.7
    env.reset(seed=0, options={"start": start})
    _, reward, terminated, _, info = env.step(np.zeros(space.dim, dtype=np.float32))
    assert info["failed"] and not info["new_failure"] and not terminated
    assert reward < 0.5  # the claim penalty (1.0) outweighs the failure score


def test_restarts_start_far_from_claimed_regions(space):
    roll = space.names.index("camera.roll")
    lo, hi = -np.ones(space.dim), np.ones(space.dim)
    lo[roll], hi[roll] = -1.0, 0.2  # 60% of the roll axis is claimed

    def start_distances(candidates):
        cfg = SearchConfig().replace(env=SearchConfig().env.__class__(restart_candidates=candidates))
        env = FailureSearchEnv(space.dim, cfg, evaluator=BoxEvaluator(space, {"camera.roll": (0.5, 1.0)}))
        env.scorer.archive.add(lo, hi, "claimed", owner=0)
        env.reset(seed=3)
        return np.array([env.scorer.archive.distance(env.reset()[0][None, : space.dim].astype(float))[0]
                         for _ in range(40)])

    plain, far = start_distances(1), start_distances(4)
    assert (plain == 0).mean() > 0.4  # ~60% of uniform starts land in the claim
    assert (far == 0).mean() < 0.3 and far.mean() > plain.mean()  # ~0.6 ** 4 of the farthest-of-4


def test_patience_truncates_a_stalled_episode(space):
    cfg = SearchConfig().replace(env=SearchConfig().env.__class__(patience=3))
    env = FailureSearchEnv(space.dim, cfg, evaluator=BoxEvaluator(space, {"camera.roll": (0.9, 1.0)}, noise=0.0))
    start = np.zeros(space.dim)
    env.reset(seed=0, options={"start": start})
    steps = 0
    truncated = False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.zeros(space.dim, dtype=np.float32))  # stays put
        steps += 1
        assert not terminated and steps < cfg.env.episode_length
    assert steps == 1 + 3  # the first step sets the best score, three more without a better one


def test_gain_reward_is_the_score_change_over_the_anchor(space):
    from examiner.search.config import EnvConfig

    cfg = SearchConfig().replace(env=EnvConfig(reward="gain"))
    ev = BoxEvaluator(space, {"camera.roll": (0.9, 1.0)}, noise=0.5)
    env, ref = FailureSearchEnv(space.dim, cfg, evaluator=ev), FailureSearchEnv(space.dim, SearchConfig(), evaluator=ev)
    env.reset(seed=4)
    ref.reset(seed=4)
    act = np.full(space.dim, 0.3, dtype=np.float32)
    _, r0, *_ = env.step(act)
    _, s0, *_ = ref.step(act)
    assert r0 == 0.0 and s0 != 0.0  # first step: no anchor score to gain over
    for t in range(5):
        anchor_score = env.anchor_score
        obs, r, term, _, info = env.step(-act if t % 2 else act)
        _, s, *_ = ref.step(-act if t % 2 else act)  # same trajectory, score reward
        assert not term and r == pytest.approx(s - anchor_score)
        assert obs[4 * space.dim + 7] == (1.0 if info["accepted"] else -1.0)
    with pytest.raises(Exception, match="env.reward"):
        SearchConfig().replace(env=EnvConfig(reward="regret")).validate()


def test_claim_map_points_away_from_the_nearest_box(space):
    env = make_env(space)
    D = space.dim
    roll = space.names.index("camera.roll")
    start = np.zeros(D)
    obs, _ = env.reset(seed=0, options={"start": start})
    assert np.all(obs[3 * D: 4 * D] == 0.0)  # no boxes yet
    lo, hi = -np.ones(D), np.ones(D)
    lo[roll], hi[roll] = 0.2, 0.5  # a slab 0.2 above the anchor on camera.roll
    env.scorer.archive.add(lo, hi, "claimed", owner=0)
    claim = env._obs()[3 * D: 4 * D]
    radius = env.scorer.archive.radius
    expected = np.zeros(D)
    expected[roll] = -(1.0 - 0.2 / (2 * radius))  # away from the box, closeness 1 - d / (2 r)
    assert np.allclose(claim, expected, atol=1e-6)
    start[roll] = 0.3  # inside the box: no direction
    obs, _ = env.reset(seed=0, options={"start": start})
    assert np.all(obs[3 * D: 4 * D] == 0.0)
    cfg = SearchConfig().replace(env=SearchConfig().env.__class__(observe_anchor=False))
    hidden = FailureSearchEnv(D, cfg, evaluator=BoxEvaluator(space, {"camera.roll": (0.5, 1.0)}))
    o, _ = hidden.reset(seed=3)
    assert np.all(o[:D] == 0.0) and np.any(hidden.anchor != 0.0)
