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


def shipped_env():
    """The env settings the shipped policy was trained with (a run that loads it must match)."""
    with np.load(DEFAULT_POLICY, allow_pickle=False) as z:
        env = json.loads(str(z["__meta__"]))["training"]["env"]
    return SearchConfig().env.__class__(reward=env["reward"], observe_anchor=env.get("observe_anchor", True))


def pretrained_config(pretrained="default", **kw):
    cfg = SearchConfig(strategy="marl", agents=8, space=SPACE, **kw)
    return cfg.replace(ppo=cfg.ppo.__class__(pretrained=pretrained), env=shipped_env())


def strategy(space, pretrained="default", seed=0, budget=400):
    cfg = pretrained_config(pretrained, budget=budget, seed=seed).validate()
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
    cfg = pretrained_config(budget=500, seed=2)
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
    cfg = pretrained_config(str(bad), budget=100, seed=0)
    with pytest.raises(SearchConfigError, match="not a policy .npz"):
        run_search(cfg, build_evaluator("analytic:drawn?layout=3", space), space, tmp_path / "run")


def test_a_policy_trained_with_another_reward_is_refused(space):
    other = "score" if shipped_env().reward == "gain" else "gain"
    cfg = pretrained_config(budget=400, seed=0)
    cfg = cfg.replace(env=cfg.env.__class__(reward=other, observe_anchor=cfg.env.observe_anchor)).validate()
    session_seq, strategy_seq, agent_seqs, _ = _seeds(cfg)
    ev = build_evaluator("analytic:drawn?layout=3", space)
    with pytest.raises(SearchConfigError) as e:
        MARLStrategy(SearchSession(cfg, space, ev, None, session_seq), cfg, space, strategy_seq, agent_seqs)
    _one_line(e, "env.reward", "trained with")


def _train_policy_main():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "train_policy.py"
    spec = importlib.util.spec_from_file_location("train_policy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.mark.slow
def test_pretraining_is_seeded_same_seed_same_weights(tmp_path):
    main = _train_policy_main()
    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / f"{name}.npz"
        assert main(["--layouts", "2", "--budget", "500", "--seed", str(seed), "--out", str(out)]) == 0
        with np.load(out, allow_pickle=False) as z:
            outs.append({k: z[k] for k in z.files})
    a, b, c = outs
    meta_a, meta_b = (json.loads(str(x.pop("__meta__"))) for x in (a, b))
    del meta_a["training"]["command"], meta_b["training"]["command"]  # they name different --out files
    assert meta_a == meta_b
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["action_net.weight"], c["action_net.weight"])
    assert meta_a["training"]["targets"] == "analytic:drawn?layout=L for L in [1000, 1002)" and meta_a["dim"] == 35
