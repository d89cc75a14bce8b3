"""`SearchConfig`: the one frozen, versioned description of a search run.

Loaded from CLI options or YAML, validated once (`validate()`), saved in the run store's
metadata and compared on `--resume`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from examiner.search.errors import SearchConfigError

CONFIG_VERSION = 1

# The largest budget a run accepts: ~10^7 evaluations already take days and write tens of
# GB of log; a larger number is almost always a typo (1e23).
MAX_BUDGET = 10_000_000


def _check_types(obj: Any, prefix: str = "") -> None:
    """SearchConfigError when a field's value does not have its declared type (YAML gives
    strings, lists and nulls where numbers belong)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        ann = str(f.type).replace(" ", "")
        name = prefix + f.name
        if dataclasses.is_dataclass(value):
            _check_types(value, name + ".")
            continue
        optional = ann.endswith("|None")
        base = ann[: -len("|None")] if optional else ann
        if value is None and optional:
            continue
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "tuple[int,...]": isinstance(value, tuple) and all(isinstance(x, int) and not isinstance(x, bool) for x in value),
        }.get(base, True)
        if not ok:
            raise SearchConfigError(f"{name} must be {base.replace('[int,...]', ' of integers')}, got {value!r}")
        if base == "float" and not math.isfinite(float(value)):
            raise SearchConfigError(f"{name} must be a finite number, got {value!r}")

# Failure thresholds that have an established default. Any other metric needs an explicit
# threshold: guessing one would silently define what "failure" means.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "pa_mpjpe": 90.0,  # mm; PoseExaminer's failure definition (MPJPE > 90 mm) after Procrustes
    "mpjpe": 90.0,  # mm
    "pa_mpjpe_scaled": 90.0,  # mm on a body of the default adult's size (examiner.scoring)
}

# The one list of strategies: name -> "module:class" (imported on use, so that importing
# the config does not import SB3/torch or cma). `examiner.search.strategies.get_strategy`
# loads them; the CLI's help and the config check read the names from here.
STRATEGY_CLASSES: dict[str, str] = {
    "marl": "examiner.search.strategies.marl:MARLStrategy",
    "random": "examiner.search.strategies.random_search:RandomStrategy",
    "cmaes": "examiner.search.strategies.cmaes:CMAESStrategy",
    "reinforce": "examiner.search.strategies.reinforce:ReinforceStrategy",
    "hillclimb": "examiner.search.strategies.hillclimb:HillclimbStrategy",
    "qd": "examiner.search.strategies.qd:QDStrategy",
}
STRATEGIES = tuple(STRATEGY_CLASSES)
BACKENDS = ("local", "ray")
GROWTH_MODES = ("probe", "log")  # RegionConfig.growth
SHRINK_MODES = ("peel", "band")  # RegionConfig.shrink


@dataclass(frozen=True)
class EnvConfig:
    """The per-agent environment (see docs/search.md, "Environment").

    max_step: largest move per step per coordinate, in normalised units.
    episode_length: steps before an episode is truncated and the agent restarts elsewhere.
    score_scale: error above threshold, in metric units, that maps to score +1
        (score = clip((error - threshold) / score_scale, -1, 1)); None = threshold.
    claim_penalty / claim_radius: the claim-distance penalty: a proposal inside a claimed
        region loses `claim_penalty`; the penalty falls linearly to 0 at `claim_radius`
        (L2 distance to the region's box, normalised units).
    implausible_penalty: subtracted for implausible scenes (they never count as failures).
    fail_bonus: reward for a new, unclaimed failure (which also ends the episode).
    accept_slack: the agent's anchor moves to a proposal whose score is at least the
        anchor's minus this slack: an accept-if-not-worse local search whose steps the
        policy proposes. Measured (docs/search.md, "What PPO adds"): with PPO's learning
        rate 0 MARL finds as many modes at 2000-5000 evaluations, so at these budgets the
        walk, far restarts and the shared archive do the work, not what the policy learns.
    restart_candidates: an episode starts at the uniform draw, of this many, farthest
        from the claimed regions (1 = a plain uniform start).
    patience: an episode is truncated after this many steps without a better score
        (by 0.02) than the episode's best (0 = only `episode_length` ends it).
    reward: what PPO maximises besides `fail_bonus`: "score" (the proposal's score) or
        "gain" (the proposal's score minus the anchor's, 0 on an episode's first step:
        an episode's rewards add up to how far the agent climbed, so lingering in a
        high-score area, e.g. the halo of a region already claimed, earns nothing).
        Measured (benchmarks/RESULTS-search-recall.md, "Pretrained policy"): pretraining
        on "score" taught the policy to linger and recall fell during training; the
        shipped pretrained policy was trained on "gain".
    observe_anchor: the observation's first D entries are the anchor's absolute position
        (True) or zeros (False: the policy sees only what carries across targets; a
        policy pretrained on many targets otherwise learns where errors were high on
        average over them and drifts there).
    """

    max_step: float = 0.2
    episode_length: int = 48
    score_scale: float | None = None
    claim_penalty: float = 1.0
    claim_radius: float = 0.3
    implausible_penalty: float = 1.0
    fail_bonus: float = 2.0
    accept_slack: float = 0.02
    restart_candidates: int = 4
    patience: int = 0
    reward: str = "score"
    observe_anchor: bool = True


@dataclass(frozen=True)
class PPOConfig:
    """stable-baselines3 PPO hyperparameters for the shared MARL policy.

    n_steps is per agent: one rollout = n_steps * agents transitions (and evaluations).
    torch_threads: intra-op threads while the policy runs (restored afterwards); 1 is
        fastest for these small networks and keeps runs bit-reproducible.
    pretrained: the policy's starting weights: "none" (PPO's random initialisation),
        "default" (the shipped assets/policy/marl-35d.npz, pretrained across drawn analytic
        targets by scripts/train_policy.py; 35 dimensions, 8 agents, net_arch 64,64) or
        the path of a .npz written by that script. Loaded without pickle
        (examiner/search/policy_weights.py); the run fine-tunes it online as usual. The
        run's env.reward and env.observe_anchor must be those it was trained with (the
        shipped one: "gain" and False). Measured: it needs 1.33x hillclimb's evaluations
        to 90% recall on held-out layouts (benchmarks/RESULTS-search-recall.md), so the
        default is "none".
    """

    n_steps: int = 24
    batch_size: int = 96
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.9
    gae_lambda: float = 0.9
    clip_range: float = 0.2
    ent_coef: float = 0.0
    log_std_init: float = -0.7
    net_arch: tuple[int, ...] = (64, 64)
    torch_threads: int = 1
    pretrained: str = "none"


@dataclass(frozen=True)
class RegionConfig:
    """Region growing and failure-mode merging (docs/search.md, "Regions").

    min_failure_rate: a box is accepted when at least this fraction of N fresh uniform
        samples in it fail (PoseExaminer: 0.8).
    verify_samples: N, the fresh samples per verification round.
    max_verify_rounds: verification rounds (each shrinks the box before the next).
    bisection_tol: boundary precision of the per-dimension search, normalised units.
        1/32 (was 1/16): with 1/16 the kept edges sit up to 1/16 inside the region on
        every bounding side and the median box IoU on drawn layouts is 0.57; with 1/32
        and `edge_fraction` 0.25 it is 0.81 (benchmarks/RESULTS-search-recall.md).
    confidence: level of the reported Wilson interval.
    merge_overlap: two boxes are one mode when vol(A & B) >= merge_overlap * min(vol A, vol B).
    claim_margin: a failing point inside a claimed box grown by this margin starts no new
        region.
    max_jobs: regions grown concurrently (the same for every strategy).
    probe_group: dimensions probed together (adaptive group testing); 1 = one probe per
        dimension and side. 8 (the default since log growth): the first groups of
        "log" growth, which searches a passing group with one probe per halving. On the
        "probe" path groups of 8 cost 15-30% less per job on the analytic targets but
        about the same through the renderer, where moving 8 joints to their limits at
        once is often implausible (docs/search.md); a group probe that lands in another
        failure region is caught by verification and its sides re-probed one at a time.
    grow_provisional: a running job's provisional claim is its confirmed box so far
        (probes and bisection steps that failed), not just its seed point.
    growth: how a job finds its box before verification. "log" (the default): see
        growth_log.py; "probe" (growth.py, the path before issue 20): a probe
        per dimension and side (or `probe_group` groups), every bounding side bisected
        from scratch. "log" (growth_log.py): group testing with inference, side -1
        mirroring side +1, brackets tightened by the points already in the log before
        any fresh bisection step. Verification (fresh samples) is the same for both.
    edge_fraction: where a finished bisection bracket puts the edge ("log" growth): 0 =
        its inside (last failing) end, the conservative choice; 0.5 = its midpoint (unbiased,
        but the box then reaches past the region about half the time, which costs
        verification rate).
    early_verify: ask a verification round's N samples in two halves and stop after the
        first when the outcome is clear: accept when the Wilson interval's lower end over
        the first half is already >= `min_failure_rate` (e.g. 20 of 20 failing: [0.84, 1]),
        reject when the full N could no longer reach it. Otherwise the second half is
        asked and the round decides on all N exactly as with False (the same samples).
    shrink: how a box that failed verification is pulled in before the next round.
        "peel" (the default): PRIM-style peeling of the job's verification samples so far
        that lie in the box (uniform there, so they pool across rounds): slabs of 10% of
        the samples are cut, each time the one whose removal raises the failure rate most,
        until the samples left fail at `min_failure_rate` + half the rest (0.9) or half of
        them are gone. Several sides can move in one round, which is what a failure
        probability that falls off smoothly (a real model) needs. "band" (before): the one
        side whose outer quarter holds the most passing samples moves in by 30% of its width.
    confirm_samples: after the search, every mode's box gets this many more fresh uniform
        samples, outside the budget, and their failure rate is reported beside the
        verified one (`confirmed` in modes.json; 0 = off). The verified rate is the round
        that passed the standard, so it leans high: a box whose true rate is 65% passes a
        round of 40 about one time in 30, and a search runs many rounds
        (docs/search.md, "Confirmation"). The confirmation is the unbiased estimate.
    factor_samples: after the search, up to `factors` single conditions (one dimension in
        one fifth of its range, or one choice) under which the search's proposals failed
        clearly more often than on average are tested on this many fresh samples each
        against twice as many uniform ones, outside the budget (examiner.search.factors;
        `factors` in summary.json; 0 = off). They are what a model that fails gradually,
        with no box at `min_failure_rate`, still teaches.
    factors: how many conditions to test (the best slice of each of the top dimensions).
    factor_slices: "any" (every slice of a dimension may be a candidate) or "ends" (a
        continuous dimension offers only its two end slices; a choice dimension every
        choice). `examiner peel` asks for "ends": it can cut only those, so an inner slice
        would take a candidate's place and a share of the Holm correction for nothing.
    factor_extend: how many more slices of the same width a confirmed factor at one end of
        a continuous dimension may grow by, inwards, each tested on `factor_samples` fresh
        samples against the reference scenes outside it (examiner.search.factors.extend;
        `extended` on the factor; 0 = off). A model that fails more often the more of the
        person is cut off has its confirmed slice at the end (truncation 0.28 to 0.35) and
        this says how far in it still fails more often (to 0.14, say), which is what
        `examiner peel` cuts.
    simplify: after the search, before the confirmation, up to this many tests per mode of
        its box with weak constraints (the box keeps 3/4 of a dimension's range or more) and
        slivers (no wider than 2 `bisection_tol`) released to the full range, each on
        `verify_samples` fresh samples outside the budget; a larger box that still fails
        at `min_failure_rate` becomes the mode (examiner/search/simplify.py; 0 = off).
    importance: after the confirmation, every constraint of every mode is tested alone on
        this many fresh samples with that dimension outside its interval and the rest in the
        box, against the mode's confirmation samples (one-sided Fisher exact, Holm): what
        the failure needs, ranked (examiner/search/importance.py; `importance` in
        modes.json; 0 = off).
    """

    min_failure_rate: float = 0.8
    verify_samples: int = 40
    max_verify_rounds: int = 3
    bisection_tol: float = 0.03125
    confidence: float = 0.95
    merge_overlap: float = 0.5
    claim_margin: float = 0.07
    max_jobs: int = 8
    grow_provisional: bool = True
    probe_group: int = 8
    growth: str = "log"
    edge_fraction: float = 0.25
    early_verify: bool = True
    shrink: str = "peel"
    confirm_samples: int = 40
    factor_samples: int = 80
    factors: int = 4
    factor_slices: str = "any"
    factor_extend: int = 3
    simplify: int = 2
    importance: int = 12


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search run besides the evaluator and the space.

    metric: key of `Outcome.metrics` that defines failure (value above threshold = failure).
    threshold: failure threshold in the metric's unit; None = the metric's default
        (`DEFAULT_THRESHOLDS`), an error for metrics without one.
    space: parameter groups for the CLI / YAML ("pose,shape,camera"); `run_search` records
        the space it is given.
    checkpoint_every: rounds between checkpoints for round-based strategies (MARL
        checkpoints after every PPO update).
    """

    strategy: str = "marl"
    budget: int = 2000
    agents: int = 8
    seed: int = 0
    metric: str = "pa_mpjpe"
    threshold: float | None = None
    space: str = "pose,shape,camera"
    backend: str = "local"
    workers: int = 1
    checkpoint_every: int = 16
    cmaes_sigma0: float = 0.4
    reinforce_lr: float = 0.1
    reinforce_init_std: float = 0.5
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    region: RegionConfig = field(default_factory=RegionConfig)
    version: int = CONFIG_VERSION

    # ---- validation -------------------------------------------------------------------
    @property
    def failure_threshold(self) -> float:
        if self.threshold is not None:
            return float(self.threshold)
        if self.metric in DEFAULT_THRESHOLDS:
            return DEFAULT_THRESHOLDS[self.metric]
        raise SearchConfigError(
            f"metric {self.metric!r} has no default failure threshold; pass --threshold "
            f"(or `threshold:` in the YAML config)"
        )

    def validate(self) -> "SearchConfig":
        """Raise SearchConfigError (one line) on the first bad value; return self."""
        _check_types(self)
        if self.strategy not in STRATEGIES:
            raise SearchConfigError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if not isinstance(self.budget, int) or self.budget <= 0:
            raise SearchConfigError(f"budget must be a positive number of evaluations, got {self.budget!r}")
        if self.budget > MAX_BUDGET:
            raise SearchConfigError(f"budget {self.budget} is above the cap of {MAX_BUDGET:,} evaluations; is it a typo?")
        if not isinstance(self.agents, int) or self.agents < 1:
            raise SearchConfigError(f"agents must be at least 1, got {self.agents!r}")
        if self.budget < self.agents:
            raise SearchConfigError(
                f"budget {self.budget} is smaller than one round of {self.agents} agents; "
                "raise --budget or lower --agents"
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise SearchConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        threshold = self.failure_threshold
        if not math.isfinite(threshold) or threshold <= 0:
            raise SearchConfigError(
                f"threshold must be a positive finite number (a failure is a value above it), got {threshold!r}"
            )
        if self.backend not in BACKENDS:
            raise SearchConfigError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise SearchConfigError(f"workers must be at least 1, got {self.workers!r}")
        if self.checkpoint_every < 1:
            raise SearchConfigError("checkpoint_every must be at least 1 round")
        r = self.region
        if not 0.0 < r.min_failure_rate <= 1.0:
            raise SearchConfigError(f"region.min_failure_rate must be in (0, 1], got {r.min_failure_rate}")
        if r.verify_samples < 5:
            raise SearchConfigError(f"region.verify_samples must be at least 5, got {r.verify_samples}")
        if not 0.0 < r.bisection_tol < 1.0:
            raise SearchConfigError(f"region.bisection_tol must be in (0, 1), got {r.bisection_tol}")
        if not 0.5 <= r.confidence < 1.0:
            raise SearchConfigError(f"region.confidence must be in [0.5, 1), got {r.confidence}")
        if r.probe_group < 1:
            raise SearchConfigError(f"region.probe_group must be at least 1, got {r.probe_group}")
        if not 0.0 <= r.edge_fraction < 1.0:
            raise SearchConfigError(f"region.edge_fraction must be in [0, 1), got {r.edge_fraction}")
        if r.shrink not in SHRINK_MODES:
            raise SearchConfigError(f"region.shrink must be one of {', '.join(SHRINK_MODES)}, got {r.shrink!r}")
        if r.growth not in GROWTH_MODES:
            raise SearchConfigError(f"region.growth must be one of {', '.join(GROWTH_MODES)}, got {r.growth!r}")
        if not isinstance(r.confirm_samples, int) or r.confirm_samples < 0:
            raise SearchConfigError(f"region.confirm_samples must be 0 (off) or a number of samples, got {r.confirm_samples!r}")
        if not isinstance(r.simplify, int) or isinstance(r.simplify, bool) or not 0 <= r.simplify <= 3:
            raise SearchConfigError(f"region.simplify must be 0 (off) to 3 release tests per mode, got {r.simplify!r}")
        if not isinstance(r.importance, int) or isinstance(r.importance, bool) or r.importance < 0:
            raise SearchConfigError(f"region.importance must be 0 (off) or a number of samples per constraint, got {r.importance!r}")
        if not isinstance(r.factor_samples, int) or r.factor_samples < 0:
            raise SearchConfigError(f"region.factor_samples must be 0 (off) or a number of samples, got {r.factor_samples!r}")
        if not isinstance(r.factor_extend, int) or isinstance(r.factor_extend, bool) or not 0 <= r.factor_extend <= 8:
            raise SearchConfigError(f"region.factor_extend must be 0 (off) to 8 slices, got {r.factor_extend!r}")
        if r.factor_slices not in ("any", "ends"):
            raise SearchConfigError(f"region.factor_slices must be 'any' or 'ends', got {r.factor_slices!r}")
        if not isinstance(r.factors, int) or r.factors < 1:
            raise SearchConfigError(f"region.factors must be at least 1, got {r.factors!r}")
        if r.max_jobs < 1 or r.max_verify_rounds < 1:
            raise SearchConfigError("region.max_jobs and region.max_verify_rounds must be at least 1")
        e = self.env
        if not 0.0 < e.max_step <= 2.0:
            raise SearchConfigError(f"env.max_step must be in (0, 2], got {e.max_step}")
        if e.episode_length < 1:
            raise SearchConfigError(f"env.episode_length must be at least 1, got {e.episode_length}")
        p = self.ppo
        if p.n_steps < 1 or p.batch_size < 2 or p.n_epochs < 1:
            raise SearchConfigError("ppo.n_steps, ppo.batch_size and ppo.n_epochs must be positive (batch_size >= 2)")
        if p.learning_rate <= 0 or not 0 < p.gamma <= 1 or not 0 <= p.gae_lambda <= 1 or p.clip_range <= 0:
            raise SearchConfigError(
                f"ppo.learning_rate and ppo.clip_range must be positive and ppo.gamma in (0, 1], ppo.gae_lambda in "
                f"[0, 1]; got learning_rate={p.learning_rate}, gamma={p.gamma}, gae_lambda={p.gae_lambda}, "
                f"clip_range={p.clip_range}"
            )
        if not p.pretrained.strip():
            raise SearchConfigError('ppo.pretrained must be "none", "default" or the path of a policy .npz')
        if p.ent_coef < 0 or p.torch_threads < 1 or not p.net_arch or min(p.net_arch) < 1:
            raise SearchConfigError("ppo.ent_coef must be >= 0, ppo.torch_threads >= 1 and ppo.net_arch positive layer sizes")
        if self.cmaes_sigma0 <= 0 or self.reinforce_lr <= 0 or self.reinforce_init_std <= 0:
            raise SearchConfigError("cmaes_sigma0, reinforce_lr and reinforce_init_std must be positive")
        if e.reward not in ("score", "gain"):
            raise SearchConfigError(f'env.reward must be "score" or "gain", got {e.reward!r}')
        if (e.score_scale is not None and e.score_scale <= 0) or e.claim_radius < 0 or e.restart_candidates < 1:
            raise SearchConfigError("env.score_scale must be positive, env.claim_radius >= 0, env.restart_candidates >= 1")
        return self

    # ---- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ppo"]["net_arch"] = list(self.ppo.net_arch)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "config") -> "SearchConfig":
        if not isinstance(d, Mapping):
            raise SearchConfigError(f"{source} must be a mapping of option names to values")
        version = d.get("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise SearchConfigError(f"{source}: search config version {version} is not supported (expected {CONFIG_VERSION})")
        nested = {"env": EnvConfig, "ppo": PPOConfig, "region": RegionConfig}
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in known:
                raise SearchConfigError(f"{source}: unknown option {key!r}; valid options: {', '.join(sorted(known))}")
            if key in nested:
                if not isinstance(value, Mapping):
                    raise SearchConfigError(f"{source}: {key!r} must be a mapping")
                sub_known = {f.name for f in fields(nested[key])}
                bad = set(value) - sub_known
                if bad:
                    raise SearchConfigError(
                        f"{source}: unknown {key} option(s) {sorted(bad)}; valid: {', '.join(sorted(sub_known))}"
                    )
                value = dict(value)
                if key == "ppo" and "net_arch" in value:
                    arch = value["net_arch"]
                    if not isinstance(arch, (list, tuple)) or not all(isinstance(x, int) and not isinstance(x, bool) for x in arch):
                        raise SearchConfigError(f"{source}: ppo.net_arch must be a list of integers, got {arch!r}")
                    value["net_arch"] = tuple(arch)
                for sub in fields(nested[key]):  # YAML floats like 1.0 for integer fields
                    v = value.get(sub.name)
                    if str(sub.type) == "int" and isinstance(v, float) and v.is_integer():
                        value[sub.name] = int(v)
                kwargs[key] = nested[key](**value)
            elif key != "version":
                kwargs[key] = value
        for key in ("budget", "agents", "seed", "workers", "checkpoint_every"):
            if key in kwargs and isinstance(kwargs[key], float) and kwargs[key].is_integer():
                kwargs[key] = int(kwargs[key])
        if kwargs.get("threshold") is not None:
            try:
                kwargs["threshold"] = float(kwargs["threshold"])
            except (TypeError, ValueError):
                raise SearchConfigError(f"{source}: threshold must be a number, got {kwargs['threshold']!r}") from None
        cfg = cls(**kwargs)
        try:
            _check_types(cfg)
        except SearchConfigError as e:
            raise SearchConfigError(f"{source}: {e}") from None
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SearchConfig":
        import yaml

        path = Path(path)
        if path.is_dir():
            raise SearchConfigError(f"config file {path} is a folder; give the YAML file with --config")
        if not path.is_file():
            raise SearchConfigError(f"config file {path} does not exist; check the --config path")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise SearchConfigError(f"config file {path} is not valid YAML{where}; fix the syntax") from None
        return cls.from_dict(data, source=str(path))

    def replace(self, **changes: Any) -> "SearchConfig":
        return dataclasses.replace(self, **changes)
