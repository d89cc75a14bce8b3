"""Model specs -> evaluators: `build_evaluator` and the picklable `EvaluatorFactory`, plus
the rules on which spec kinds a run directory may start (`safe_from_a_run`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from examiner.search.analytic import ANALYTIC_REGION_SETS, AnalyticEvaluator, BoxEvaluator, PlantedRegion
from examiner.search.errors import SearchConfigError
from examiner.search.outcome import Evaluator
from simulator.params import ParamSpace

ANALYTIC_TARGETS = ("planted", "hidden", "many", "box", "drawn")


def _parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """(kind, name, options) of a model spec, with the one spec parser of
    ``examiner.targets.registry``; a malformed spec raises SearchConfigError (one line)."""
    from examiner.targets.base import TargetError
    from examiner.targets.registry import parse_query, split_spec

    try:
        parts = split_spec(spec)
        return parts.kind, parts.body, parse_query(parts.query, spec.strip())
    except TargetError as e:
        raise SearchConfigError(str(e)) from None


# Model kinds a command may start from a run directory's meta.json without the user naming
# them: built-ins that run no code or files named by the spec. Every other kind (cmd:,
# worker:, python:, onnx:, anything unknown) runs a command, module or file the spec names,
# so a run directory someone sent must not be able to start it.
KINDS_SAFE_FROM_A_RUN = ("analytic", "whitebox", "baseline", "mediapipe")


def spec_kind(model_spec: str) -> str:
    """The kind of a model spec: the text before the first ':' or '?'."""
    return re.split(r"[:?]", str(model_spec).strip(), maxsplit=1)[0]


def safe_from_a_run(model_spec: str) -> bool:
    """Whether a spec read from a run directory may be started without the user repeating
    it on the command line (see KINDS_SAFE_FROM_A_RUN)."""
    return spec_kind(model_spec) in KINDS_SAFE_FROM_A_RUN


def build_evaluator(model_spec: str, space: ParamSpace, threshold: float = 90.0, seed: int = 0,
                    metric: str | None = None) -> Evaluator:
    """Build the evaluator a model spec names.

    - Analytic targets (no rendering): `analytic:planted[?noise=1&cpu_ms=0&delay=0&seed=0]`
      (the planted white-box target), `analytic:hidden[?...]` (small planted regions only)
      `analytic:box?dims=NAME:LO:HI,NAME:LO:HI` (one box) and `analytic:drawn?layout=N`
      (regions drawn anew from the layout seed; examiner.search.drawn_targets).
    - Every target spec of `examiner.targets` (baseline, mediapipe, whitebox:..., onnx:...,
      python:..., worker:..., cmd:"..."): a `SimulatorEvaluator` that renders each scene
      and scores the target on it. Evaluator options ride along as `sim.*` query keys
      (`baseline?sim.calibrate=32&sim.render_workers=2`; see
      `examiner.search.sim_evaluator`).

    metric: the run's failure metric (`SearchConfig.metric`). The evaluator's
    `Outcome.error` is then that metric, the same number as `Outcome.metrics[metric]`
    and the search's `Scored.value` (one quantity, one source); a spec whose
    `sim.metric` names another metric is refused. None: the evaluator's default
    (pa_mpjpe; pck_miss for a 2D-only model).
    """
    kind, name, opts = _parse_spec(model_spec)
    if kind != "analytic":
        return _build_simulator(model_spec, space, seed, metric)
    if name not in ANALYTIC_TARGETS:
        raise SearchConfigError(f"unknown analytic target {name!r}; choose one of {', '.join(ANALYTIC_TARGETS)}")
    kw: dict = {"threshold": threshold, "seed": seed, "metric": metric or "pa_mpjpe"}
    try:
        for key in ("noise", "cpu_ms", "delay"):
            if key in opts:
                kw[key] = float(opts.pop(key))
        if "seed" in opts:
            kw["seed"] = int(opts.pop("seed"))
    except ValueError:
        raise SearchConfigError(f"model spec {model_spec!r}: option values must be numbers") from None
    if name == "box":
        if "dims" not in opts:
            raise SearchConfigError("analytic:box needs ?dims=NAME:LO:HI[,NAME:LO:HI...]")
        bounds = {}
        for item in opts.pop("dims").split(","):
            try:
                dim, lo, hi = item.rsplit(":", 2)
                bounds[dim] = (float(lo), float(hi))
            except ValueError:
                raise SearchConfigError(f"analytic:box dims item {item!r} must be NAME:LO:HI") from None
            if dim not in space.names:
                raise SearchConfigError(f"analytic:box dimension {dim!r} is not in the search space")
        ev: Evaluator = BoxEvaluator(space, bounds, **kw)
    elif name == "drawn":  # regions drawn anew per layout seed (drawn_targets.py)
        from examiner.search.drawn_targets import drawn_regions, parse_layout

        drawn = drawn_regions(parse_layout(opts, model_spec), space)
        ev = AnalyticEvaluator(space, regions=tuple(PlantedRegion(n, b, halo=h) for n, b, h in drawn),
                               implausible=None, model_errors=None, **kw)
    else:
        ev = AnalyticEvaluator(space, regions=ANALYTIC_REGION_SETS[name], **kw)
    if opts:
        raise SearchConfigError(f"model spec {model_spec!r}: unknown option(s) {sorted(opts)}")
    return ev


def _build_simulator(model_spec: str, space: ParamSpace, seed: int, metric: str | None) -> Evaluator:
    from examiner.targets.registry import available_adapters, parse_spec
    from examiner.targets.base import TargetError

    valid = ", ".join([f"analytic:{t}" for t in ANALYTIC_TARGETS]
                      + [f"{a.kind}:" if a.takes_body else a.kind for a in available_adapters()])
    try:
        kind = parse_spec(model_spec)[0]
    except TargetError as e:
        if "unknown model kind" in str(e):
            raise SearchConfigError(f"unknown model spec {model_spec!r}; valid kinds: {valid}") from None
        raise
    if kind not in {a.kind for a in available_adapters()}:
        raise SearchConfigError(f"unknown model spec {model_spec!r}; valid kinds: {valid}")
    from examiner.search.sim_evaluator import build_simulator_evaluator

    return build_simulator_evaluator(model_spec, space, seed=seed, **({"metric": metric} if metric else {}))


@dataclass(frozen=True)
class EvaluatorFactory:
    """A picklable recipe that builds an evaluator in a worker process."""

    model_spec: str
    space: dict
    threshold: float = 90.0
    seed: int = 0
    metric: str | None = None  # the run's metric (see build_evaluator)

    def __call__(self) -> Evaluator:
        return build_evaluator(self.model_spec, ParamSpace.from_dict(self.space), self.threshold, self.seed, self.metric)
