"""The per-agent gymnasium environment and the vectorised multi-agent wrapper.

`FailureSearchEnv` is one agent searching the normalised parameter space. Its step is
split in two so that many agents can share one batched evaluation:

    u = env.propose(action)          # where the agent wants to look
    ... evaluate all agents' u together ...
    env.consume(scored)              # -> obs, reward, terminated, truncated, info

`step()` does both for a single agent (with the evaluator and scorer it was built with),
which is what `gymnasium.utils.env_checker.check_env` exercises. `AgentVecEnv` is a
stable-baselines3 `VecEnv` whose sub-envs are the K agents; its `step_wait` evaluates all
K proposals (plus the region-growing queries) in one `SearchSession.evaluate_round` call.

Observation (float32, all in [-1, 1]), for D dimensions and K agents (version
`OBS_VERSION`; everything after the anchor means the same on any target, so a policy
pretrained on some targets can be used on others, scripts/train_policy.py):
    [0, D)        anchor: the agent's current point (zeros with env.observe_anchor False)
    [D, 2D)       last step, as a fraction of max_step
    [2D, 3D)      tanh of a running finite-difference estimate of the score gradient
    [3D, 4D)      local claim map: unit direction from the nearest archive box (claimed,
                  provisional or tabu) to the anchor, times its closeness
                  (1 - distance / (2 claim_radius), clipped at 0); zero without boxes
    [4D, 4D+10)   anchor score, last proposal score, best score this episode,
                  recent failure rate, claim proximity of the anchor, episode progress,
                  tanh of the last proposal's score change over the anchor's / 0.1,
                  last proposal accepted (+1) or not (-1; 0 before the first),
                  tanh of the gradient estimate's norm, and the last proposal's joint
                  error concentration (`Scored.joint_concentration`: worst joint over
                  mean joint error, minus 1, tanh; 0 for evaluators without per-joint
                  errors, e.g. the analytic targets)
    [4D+10, +K)   one-hot agent id (the shared policy's agent input)
Scores are normalised by the failure threshold (Scorer), so the score features and the
gradient are in the same units on every target.
Action: (D,) in [-1, 1]; the proposal is clip(anchor + max_step * action, -1, 1).
Dynamics: the anchor moves to the proposal when the proposal's score is at least the
anchor's minus `accept_slack` (a local search that the policy steers).
Reward: the proposal's score (env.reward "score") or its gain over the anchor's score
("gain"), plus `fail_bonus` for a new, unclaimed failure, which also ends the episode (the failure goes to region growing). Episodes are truncated after
`episode_length` steps; reset draws a uniform start point from `self.np_random`.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from examiner.search.config import SearchConfig
from examiner.search.outcome import Evaluator
from examiner.search.archive import FailureArchive, far_start
from examiner.search.scorer import Scored, Scorer

N_STATS = 10
OBS_VERSION = 2  # bump when the observation layout changes (pretrained policies record it)


def observation_size(dim: int, n_agents: int) -> int:
    return 4 * dim + N_STATS + n_agents


class FailureSearchEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        dim: int,
        config: SearchConfig | None = None,
        evaluator: Evaluator | None = None,
        scorer: Scorer | None = None,
        agent_id: int = 0,
        n_agents: int = 1,
    ) -> None:
        self.cfg = config or SearchConfig()
        self.dim = int(dim)
        self.evaluator = evaluator
        self.scorer = scorer or Scorer(self.cfg, FailureArchive(self.dim, self.cfg.env.claim_radius, self.cfg.region.claim_margin))
        if not 0 <= agent_id < n_agents:
            raise ValueError(f"agent_id {agent_id} must be in [0, {n_agents})")
        self.agent_id = int(agent_id)
        self.n_agents = int(n_agents)
        n_obs = observation_size(self.dim, self.n_agents)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(n_obs,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.dim,), dtype=np.float32)
        self._onehot = np.zeros(self.n_agents, dtype=np.float32)
        self._onehot[self.agent_id] = 1.0
        self._clear(np.zeros(self.dim))
        self._proposal: np.ndarray | None = None

    # ---- state ----------------------------------------------------------------------------
    def _clear(self, start: np.ndarray) -> None:
        self.anchor = np.asarray(start, dtype=np.float64).copy()
        self.anchor_score: float | None = None  # unknown until evaluated
        self.last_step = np.zeros(self.dim)
        self.grad = np.zeros(self.dim)
        self.last_score = 0.0
        self.best_score = -1.0
        self.fail_rate = 0.0
        self.anchor_prox = 0.0
        self.last_gain = 0.0
        self.last_accepted = 0.0
        self.joint_conc = 0.0
        self.t = 0
        self.stall = 0

    def _claim_map(self) -> np.ndarray:
        """(D,) unit direction from the nearest archive box to the anchor times its
        closeness (the local claim map; zero without boxes or inside one)."""
        a = self.scorer.archive
        if len(a.lo) == 0:
            return np.zeros(self.dim)
        nearest = np.clip(self.anchor[None], a.lo, a.hi)  # (B, D) nearest point of each box
        gaps = self.anchor[None] - nearest
        dist = np.sqrt(np.sum(gaps**2, axis=1))
        j = int(np.argmin(dist))
        if dist[j] <= 1e-12:
            return np.zeros(self.dim)
        closeness = max(0.0, 1.0 - dist[j] / (2.0 * max(a.radius, 1e-6)))
        return gaps[j] / dist[j] * closeness

    def _obs(self) -> np.ndarray:
        stats = np.array([
            0.0 if self.anchor_score is None else self.anchor_score,
            self.last_score,
            self.best_score,
            2.0 * self.fail_rate - 1.0,
            self.anchor_prox,
            2.0 * self.t / self.cfg.env.episode_length - 1.0,
            np.tanh(self.last_gain / 0.1),
            self.last_accepted,
            np.tanh(float(np.sqrt(self.grad @ self.grad))),
            self.joint_conc,
        ])
        anchor = self.anchor if self.cfg.env.observe_anchor else np.zeros(self.dim)
        obs = np.concatenate([anchor, self.last_step, np.tanh(self.grad), self._claim_map(),
                              np.clip(stats, -1.0, 1.0)])
        return np.concatenate([obs.astype(np.float32), self._onehot])

    def get_state(self) -> dict[str, Any]:
        return {
            "anchor": self.anchor.copy(), "anchor_score": self.anchor_score, "last_step": self.last_step.copy(),
            "grad": self.grad.copy(), "last_score": self.last_score, "best_score": self.best_score,
            "fail_rate": self.fail_rate, "anchor_prox": self.anchor_prox, "t": self.t, "stall": self.stall,
            "last_gain": self.last_gain, "last_accepted": self.last_accepted, "joint_conc": self.joint_conc,
            "rng": self.np_random.bit_generator.state,
        }

    def set_state(self, s: dict[str, Any]) -> None:
        self.anchor, self.anchor_score = s["anchor"].copy(), s["anchor_score"]
        self.last_step, self.grad = s["last_step"].copy(), s["grad"].copy()
        self.last_score, self.best_score, self.fail_rate = s["last_score"], s["best_score"], s["fail_rate"]
        self.anchor_prox, self.t, self.stall = s["anchor_prox"], s["t"], s.get("stall", 0)
        self.last_gain, self.last_accepted = s.get("last_gain", 0.0), s.get("last_accepted", 0.0)
        self.joint_conc = s.get("joint_conc", 0.0)
        self.np_random.bit_generator.state = s["rng"]

    # ---- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "start" in options:
            start = np.clip(np.asarray(options["start"], dtype=np.float64).reshape(self.dim), -1.0, 1.0)
        else:
            start = self._start_point()
        self._clear(start)
        self._proposal = None
        return self._obs(), {"agent": self.agent_id}

    def _start_point(self) -> np.ndarray:
        """A uniform start; with claims in the shared archive, the farthest from them of
        `restart_candidates` uniform draws (claimed-region repulsion at restarts)."""
        return far_start(self.scorer.archive, self.np_random, self.cfg.env.restart_candidates, self.dim)

    def propose(self, action: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(self.dim), -1.0, 1.0)
        self._proposal = np.clip(self.anchor + self.cfg.env.max_step * a, -1.0, 1.0)
        return self._proposal

    def consume(self, s: Scored):
        if self._proposal is None:
            raise RuntimeError("consume() called without a proposal; call propose() first")
        p, self._proposal = self._proposal, None
        e = self.cfg.env
        step = p - self.anchor
        self.last_step = step / e.max_step
        if self.anchor_score is not None:
            norm2 = float(step @ step)
            if norm2 > 1e-12:
                # Directional finite difference projected on the step, averaged over steps.
                g = (s.score - self.anchor_score) * step / norm2
                self.grad = 0.7 * self.grad + 0.3 * g
        accept = self.anchor_score is None or s.score >= self.anchor_score - e.accept_slack
        self.last_gain = 0.0 if self.anchor_score is None else s.score - self.anchor_score
        self.last_accepted = 1.0 if accept else -1.0
        self.joint_conc = float(np.tanh(s.joint_concentration))
        if accept:
            self.anchor = p
            self.anchor_score = s.score
            self.anchor_prox = s.claim_proximity
        self.last_score = s.score
        if s.score > self.best_score + 0.02:
            self.stall = 0
        else:
            self.stall += 1
        self.best_score = max(self.best_score, s.score)
        self.fail_rate = 0.8 * self.fail_rate + 0.2 * float(s.failed)
        self.t += 1
        base = s.score if e.reward == "score" else self.last_gain
        reward = base + (e.fail_bonus if s.new_failure else 0.0)
        terminated = bool(s.new_failure)
        stalled = e.patience > 0 and self.stall >= e.patience
        truncated = (not terminated) and (self.t >= e.episode_length or stalled)
        info = {"agent": self.agent_id, "value": s.value, "failed": s.failed, "new_failure": s.new_failure,
                "accepted": accept}
        return self._obs(), float(reward), terminated, truncated, info

    def step(self, action: np.ndarray):
        if self.evaluator is None:
            raise RuntimeError("this env has no evaluator of its own; step it through AgentVecEnv")
        u = self.propose(action)
        outcome = self.evaluator.evaluate(u[None])[0]
        return self.consume(self.scorer.score(u[None], [outcome])[0])


# ---------------------------------------------------------------------------------------

from stable_baselines3.common.vec_env.base_vec_env import VecEnv  # noqa: E402


class AgentVecEnv(VecEnv):
    """The K agents as one SB3 VecEnv; `step_wait` makes one batched evaluation."""

    def __init__(self, envs: Sequence[FailureSearchEnv], session, strategy: str = "marl") -> None:
        self.envs = list(envs)
        self.session = session
        self.strategy = strategy
        super().__init__(len(self.envs), self.envs[0].observation_space, self.envs[0].action_space)
        self._actions: np.ndarray | None = None

    def reset(self):
        obs = []
        for i, env in enumerate(self.envs):
            o, _ = env.reset(seed=self._seeds[i], options=self._options[i] or None)
            obs.append(o)
        self._reset_seeds()
        self._reset_options()
        return np.stack(obs)

    def observations(self) -> np.ndarray:
        return np.stack([env._obs() for env in self.envs])

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        assert self._actions is not None
        P = np.stack([env.propose(a) for env, a in zip(self.envs, self._actions)])
        scored = self.session.evaluate_round(P, list(range(self.num_envs)), self.strategy)
        obs, rewards, dones, infos = [], [], [], []
        for env, s in zip(self.envs, scored):
            o, r, term, trunc, info = env.consume(s)
            done = term or trunc
            info["TimeLimit.truncated"] = trunc and not term
            if done:
                info["terminal_observation"] = o
                o, _ = env.reset()
            obs.append(o)
            rewards.append(r)
            dones.append(done)
            infos.append(info)
        self._actions = None
        return np.stack(obs), np.array(rewards, dtype=np.float32), np.array(dones, dtype=bool), infos

    def close(self) -> None:
        pass

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.envs[i], attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for i in self._indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return [getattr(self.envs[i], method_name)(*method_args, **method_kwargs) for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]
