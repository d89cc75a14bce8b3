"""The MARL strategy drives PPO by hand through stable-baselines3's private API
(examiner/search/strategies/marl.py): `_setup_learn`, `_last_obs`, `_last_episode_starts`,
`_n_updates`, `_current_progress_remaining`, `_update_current_progress_remaining`, plus
`collect_rollouts` and `train`. Private names can change in any release, so pyproject.toml
pins the exact version and this test fails loudly when an upgrade breaks one of them."""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")

REPO = Path(__file__).resolve().parents[2]


class _Walk(gym.Env):
    """A tiny deterministic continuous env: enough for PPO to run one update."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = np.zeros(2, np.float32)
        self.t = 0
        return self.x.copy(), {}

    def step(self, action):
        self.x = np.clip(self.x + 0.1 * np.asarray(action, np.float32), -1, 1)
        self.t += 1
        return self.x.copy(), float(-np.sum(self.x**2)), False, self.t >= 8, {}


def test_installed_version_is_the_pinned_one():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if re.match(r"stable-baselines3\b", d)]
    assert pins and pins[0].startswith("stable-baselines3=="), f"pin stable-baselines3 exactly, not {pins}"
    assert version("stable-baselines3") == pins[0].split("==")[1], (
        "the installed stable-baselines3 is not the pinned version: check the private API below still holds, "
        "then update the pin")


def test_private_api_the_marl_strategy_uses_still_exists(tmp_path, monkeypatch):
    import tempfile

    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import DummyVecEnv

    params = list(inspect.signature(PPO._setup_learn).parameters)
    assert params[:6] == ["self", "total_timesteps", "callback", "reset_num_timesteps", "tb_log_name", "progress_bar"], params
    assert list(inspect.signature(PPO.collect_rollouts).parameters)[:5] == [
        "self", "env", "callback", "rollout_buffer", "n_rollout_steps"]
    assert callable(PPO._update_current_progress_remaining)

    class Stop(BaseCallback):
        def _on_step(self) -> bool:
            return True

    model = PPO("MlpPolicy", DummyVecEnv([_Walk, _Walk]), n_steps=8, batch_size=8, n_epochs=1, seed=0,
                device="cpu", verbose=0, policy_kwargs={"net_arch": [8]})
    # As marl.py does: a logger with no outputs, so that _setup_learn makes no SB3-<time>
    # folder in the temp directory (one per run otherwise).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    model.set_logger(Logger(folder=None, output_formats=[]))
    _, callback = model._setup_learn(10**9, Stop(), True, "marl", False)
    assert not list(tmp_path.glob("SB3-*")), "SB3 made a log folder in the temp directory"
    assert isinstance(model._last_obs, np.ndarray) and model._last_obs.shape == (2, 2)
    assert np.asarray(model._last_episode_starts).shape == (2,)
    assert model._n_updates == 0 and isinstance(model._current_progress_remaining, float)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=8)
    model._update_current_progress_remaining(model.num_timesteps, 10**9)
    model.train()
    assert model._n_updates == 1 and model.num_timesteps == 16
