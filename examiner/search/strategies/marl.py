"""MARL: K agents, one shared stable-baselines3 PPO policy with an agent-id input.

The K agents are the sub-environments of one `AgentVecEnv`, so PPO's rollout collection
steps all of them together and every step is ONE batched evaluation (K proposals plus the
region-growing queries). Why a shared policy (docs/search.md has the long form): with a
budget of a few thousand evaluations, K separate policies would each learn from 1/K of
the data, and separate SB3 models cannot share a batched step; the one-hot agent id lets
the shared policy still behave differently per agent, and the claim penalty in the
shared score keeps agents apart.

We drive PPO's own `collect_rollouts` / `train` (not `learn`) so that we can checkpoint
between rollouts and stop exactly at the budget. All torch/numpy global randomness SB3
uses runs inside this strategy's scoped global state (rng.py): no global seeding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from examiner.search.env import AgentVecEnv, FailureSearchEnv
from examiner.search.rng import GlobalRNGState, child_seed_int, scoped_global_rng, torch_threads
from examiner.search.strategies.base import Strategy

_HUGE = 10**12


def _budget_callback(session, k):
    from stable_baselines3.common.callbacks import BaseCallback

    class BudgetCallback(BaseCallback):
        """Stops a rollout when the budget cannot pay for another step of K proposals."""

        def _on_step(self) -> bool:
            return session.can_afford(k)

    return BudgetCallback()


class MARLStrategy(Strategy):
    name = "marl"
    learns = True  # PPO updates after each rollout (HillclimbStrategy turns this off)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        from stable_baselines3 import PPO
        from stable_baselines3.common.logger import Logger

        k = self.cfg.agents
        self.envs = [
            FailureSearchEnv(self.dim, self.cfg, scorer=self.session.scorer, agent_id=i, n_agents=k)
            for i in range(k)
        ]
        for env, seq in zip(self.envs, self.agent_seqs):
            env.reset(seed=int.from_bytes(seq.generate_state(2, dtype=np.uint32).tobytes(), "little"))
        self.vec = AgentVecEnv(self.envs, self.session, self.name)
        self.rng_state = GlobalRNGState.from_seed(child_seed_int(self.seed_seq))
        p = self.cfg.ppo
        with scoped_global_rng(self.rng_state), torch_threads(p.torch_threads):
            self.model = PPO(
                "MlpPolicy", self.vec, n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs,
                learning_rate=p.learning_rate, gamma=p.gamma, gae_lambda=p.gae_lambda, clip_range=p.clip_range,
                ent_coef=p.ent_coef, policy_kwargs={"net_arch": list(p.net_arch), "log_std_init": p.log_std_init},
                seed=None, device="cpu", verbose=0,
            )
            # A logger with no outputs: otherwise _setup_learn configures SB3's default one,
            # which makes an empty SB3-<time> folder in the temp directory per run.
            self.model.set_logger(Logger(folder=None, output_formats=[]))
            _, self.callback = self.model._setup_learn(_HUGE, _budget_callback(self.session, k), True, "marl", False)
        self.pretrained_meta: dict[str, Any] | None = None
        if p.pretrained != "none":
            self.load_pretrained(p.pretrained)
        self.updates = 0

    def load_pretrained(self, spec: str) -> None:
        """Start from pretrained weights (`ppo.pretrained`: "default" or a .npz path),
        read without pickle; PPO then fine-tunes them online as usual."""
        from examiner.search.policy_weights import apply_policy, load_policy, resolve

        path = resolve(spec)
        arrays, meta = load_policy(path, dim=self.dim, agents=self.cfg.agents, net_arch=tuple(self.cfg.ppo.net_arch))
        trained_env = (meta.get("training") or {}).get("env") or {}
        for key in ("reward", "observe_anchor"):
            want = getattr(self.cfg.env, key)
            if key in trained_env and trained_env[key] != want:
                from examiner.search.errors import SearchConfigError

                raise SearchConfigError(
                    f"pretrained policy {path} was trained with env.{key} = {trained_env[key]!r}, this run has "
                    f"{want!r}; set env.{key}: {trained_env[key]!r} (YAML) to use it")
        apply_policy(self.model.policy, arrays, path)
        self.pretrained_meta = meta

    def run(self) -> None:
        k = self.cfg.agents
        m = self.model
        while self.session.can_afford(k):
            with scoped_global_rng(self.rng_state), torch_threads(self.cfg.ppo.torch_threads):
                complete = m.collect_rollouts(self.vec, self.callback, m.rollout_buffer, n_rollout_steps=self.cfg.ppo.n_steps)
                if not complete:
                    break
                if self.learns:
                    m._update_current_progress_remaining(m.num_timesteps, _HUGE)
                    m.train()
            self.updates += 1  # rollouts (with `learns`, PPO updates)
            self.checkpoint()

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "policy": m.policy.state_dict(), "optimizer": m.policy.optimizer.state_dict(),
            "num_timesteps": m.num_timesteps, "n_updates": m._n_updates,
            "progress_remaining": m._current_progress_remaining,
            "last_obs": np.array(m._last_obs), "last_episode_starts": np.array(m._last_episode_starts),
            "rng_state": self.rng_state, "envs": [env.get_state() for env in self.envs], "updates": self.updates,
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        m = self.model
        m.policy.load_state_dict(s["policy"])
        m.policy.optimizer.load_state_dict(s["optimizer"])
        m.num_timesteps, m._n_updates = s["num_timesteps"], s["n_updates"]
        m._current_progress_remaining = s["progress_remaining"]
        m._last_obs, m._last_episode_starts = s["last_obs"].copy(), s["last_episode_starts"].copy()
        self.rng_state = s["rng_state"]
        for env, st in zip(self.envs, s["envs"]):
            env.set_state(st)
        self.updates = s["updates"]
