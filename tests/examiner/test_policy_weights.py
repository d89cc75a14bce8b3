"""Pretrained MARL policy weights (issue 20): the shipped file loads without pickle, the
policy it gives acts deterministically, and a bad weights file is one clear error."""

import json
import pickle

import numpy as np
import pytest

from examiner.search import SearchConfig, SearchConfigError, build_evaluator, run_search
from examiner.search.env import OBS_VERSION, observation_size
from examiner.search.policy_weights import DEFAULT_POLICY, load_policy, save_policy
from examiner.search.runner import _seeds
from examiner.search.session import SearchSession
from examiner.search.strategies.marl import MARLStrategy
from examiner.store import RunStore
from simulator.params import ParamSpace

SPACE = "pose,shape,camera"


@pytest.fixture(scope="module")
def space():
    return ParamSpace.from_groups(SPACE)


def strategy(space, pretrained="default", seed=0, budget=400):
    cfg = SearchConfig(strategy="marl", budget=budget, agents=8, seed=seed, space=SPACE)
    cfg = cfg.replace(ppo=cfg.ppo.__class__(pretrained=pretrained)).validate()
    session_seq, strategy_seq, agent_seqs, _ = _seeds(cfg)
    ev = build_evaluator("analytic:drawn?layout=3", space)
    return MARLStrategy(SearchSession(cfg, space, ev, None, session_seq), cfg, space, strategy_seq, agent_seqs)


def fixed_obs(dim, agents=8, agent=2):
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, observation_size(dim, agents)).astype(np.float32)
    obs[-agents:] = 0.0
    obs[-agents + agent] = 1.0
    return obs


def test_shipped_policy_is_a_plain_npz_for_this_observation(space):
    assert DEFAULT_POLICY.is_file(), "assets/policy/marl-35d.npz is missing; run scripts/train_policy.py"
    with np.load(DEFAULT_POLICY, allow_pickle=False) as z:  # raises if anything in it is pickled
        kinds = {k: z[k].dtype.kind for k in z.files}
        meta = json.loads(str(z["__meta__"]))
    assert set(kinds.values()) <= {"f", "U"} and kinds["__meta__"] == "U"
    assert meta["obs_version"] == OBS_VERSION and meta["dim"] == space.dim == 35 and meta["agents"] == 8
    assert "layout=L for L in [1000" in meta["training"]["targets"]  # disjoint from benchmark layouts 0-19


def test_pretrained_policy_loads_without_unpickling(space, monkeypatch):
    import torch

    def refuse(*a, **kw):
        raise AssertionError("the pretrained policy must load without unpickling")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    s = strategy(space)
    arrays, _ = load_policy(DEFAULT_POLICY, dim=space.dim, agents=8, net_arch=(64, 64))
    state = s.model.policy.state_dict()
    assert set(state) == set(arrays)
    for k, v in arrays.items():
        assert np.array_equal(state[k].numpy(), v), k


def test_pretrained_actions_are_deterministic_for_a_fixed_observation(space):
    a, b = strategy(space, seed=0), strategy(space, seed=5)
    fresh = strategy(space, pretrained="none")
    obs = fixed_obs(space.dim)
    act_a, _ = a.model.predict(obs, deterministic=True)
    act_a2, _ = a.model.predict(obs, deterministic=True)
    act_b, _ = b.model.predict(obs, deterministic=True)
    act_fresh, _ = fresh.model.predict(obs, deterministic=True)
    assert act_a.shape == (space.dim,)
    assert np.array_equal(act_a, act_a2) and np.array_equal(act_a, act_b)  # the weights, not the seed, decide
    assert not np.allclose(act_a, act_fresh, atol=1e-3)  # and they are not PPO's initialisation


def test_same_seed_same_log_with_the_pretrained_policy(tmp_path, space):
    ev = build_evaluator("analytic:drawn?layout=3", space)
    cfg = SearchConfig(strategy="marl", budget=500, agents=8, seed=2, space=SPACE)
    cfg = cfg.replace(ppo=cfg.ppo.__class__(pretrained="default"))
    logs = []
    for name in ("a", "b"):
        run_search(cfg, ev, space, tmp_path / name)
        logs.append([{k: v for k, v in r.items() if k != "timings"} for r in RunStore.open(tmp_path / name).records()])
    assert logs[0] == logs[1] and len(logs[0]) > 400
    assert RunStore.open(tmp_path / "a").metadata["config"]["ppo"]["pretrained"] == "default"


def _one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_bad_weights_files_give_one_line_errors(tmp_path, space):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(SearchConfigError) as e:
        strategy(space, pretrained=str(garbage))
    _one_line(e, "garbage.npz", "not a policy .npz", "train_policy.py")

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, weights=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SearchConfigError) as e:
        strategy(space, pretrained=str(pickled))
    _one_line(e, "pickled objects")

    with pytest.raises(SearchConfigError) as e:
        strategy(space, pretrained=str(tmp_path / "missing.npz"))
    _one_line(e, "does not exist", "none")

    # a real policy file written for another dimension count
    s = strategy(space, pretrained="none")
    other = save_policy(tmp_path / "d20.npz", s.model.policy,
                        {"obs_version": OBS_VERSION, "dim": 20, "agents": 8, "net_arch": [64, 64]})
    with pytest.raises(SearchConfigError) as e:
        strategy(space, pretrained=str(other))
    _one_line(e, "20 dimensions", "this run has 35")

    # right metadata, wrong tensor shape
    good = save_policy(tmp_path / "good.npz", s.model.policy,
                       {"obs_version": OBS_VERSION, "dim": 35, "agents": 8, "net_arch": [64, 64]})
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["action_net.bias"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(SearchConfigError) as e:
        strategy(space, pretrained=str(tmp_path / "shape.npz"))
    _one_line(e, "action_net.bias", "shape")
    # and the good one loads
    assert strategy(space, pretrained=str(good)).pretrained_meta["dim"] == 35


def test_a_bad_weights_file_stops_run_search_with_the_same_error(tmp_path, space):
    bad = tmp_path / "bad.npz"
    bad.write_text("{}")
    cfg = SearchConfig(strategy="marl", budget=100, agents=8, seed=0, space=SPACE)
    cfg = cfg.replace(ppo=cfg.ppo.__class__(pretrained=str(bad)))
    with pytest.raises(SearchConfigError, match="not a policy .npz"):
        run_search(cfg, build_evaluator("analytic:drawn?layout=3", space), space, tmp_path / "run")
