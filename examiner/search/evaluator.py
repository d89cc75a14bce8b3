"""The `Evaluator` contract between the search and whatever scores a scene, analytic
(white-box) evaluators with planted failure regions for tests and benchmarks, and
`build_evaluator` / `EvaluatorFactory`, which turn a model spec into an evaluator.

The real evaluator (render -> target model -> metric) is
`examiner.search.sim_evaluator.SimulatorEvaluator`, behind the same protocol. It is
batched: the search hands it all agents' proposals of a round in one call.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from examiner.search.errors import EvaluatorError, SearchConfigError
from simulator.params import ParamSpace


@dataclass
class Outcome:
    """The result of evaluating one scene.

    error: the evaluator's primary failure metric (e.g. PA-MPJPE in mm); NaN when
        model_error or missed. `metrics` holds every metric by name (the search's `metric` option
        picks one of them).
    plausible: False for scenes that are not humanly plausible; they are penalised and
        never count as failures.
    timings: seconds per stage ("render", "model", ...).
    extra: JSON-able data for reports, not used by the search: the simulator evaluator
        stores "prediction" ({"convention": name, "<name>_xy": [[x, y] | None, ...]},
        pixels) and "joint_errors" ({"joints": [...], "mm": [...], "px": [...]}).
    missed: the model ran and reported no person in a scene that has one (e.g. MediaPipe's
        "no_detection"): a failure of the model whatever the threshold, not a model error.
    """

    error: float
    metrics: dict[str, float] = field(default_factory=dict)
    model_error: bool = False
    model_error_message: str | None = None
    plausible: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    missed: bool = False


@runtime_checkable
class Evaluator(Protocol):
    """Scores a batch of normalised parameter vectors.

    evaluate(U): U is (N, D) float64 in [-1, 1] (rows are `ParamSpace` vectors); returns
    N `Outcome`s in row order. Must be deterministic per row (the same vector gives the
    same outcome whatever the batch it is in) for runs to be reproducible.
    """

    def evaluate(self, U: np.ndarray) -> list[Outcome]: ...


def check_outcomes(outcomes: Sequence[Outcome], n: int) -> list[Outcome]:
    """Validate an evaluator's answer; raise EvaluatorError naming the problem."""
    if not isinstance(outcomes, Sequence) or len(outcomes) != n:
        got = len(outcomes) if isinstance(outcomes, Sequence) else type(outcomes).__name__
        raise EvaluatorError(f"evaluator returned {got} outcomes for a batch of {n}; it must return one per row")
    for o in outcomes:
        if not isinstance(o, Outcome):
            raise EvaluatorError(f"evaluator returned a {type(o).__name__}, expected examiner.search.Outcome")
    return list(outcomes)


# ---------------------------------------------------------------------------------------
# Analytic targets
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantedRegion:
    """A failure box on a few named dimensions (normalised units); free on all others.

    Inside the box the error rises by `peak`; outside it a smooth halo of width `halo`
    (L2 distance over the region's dimensions) raises the error towards, but never
    above, the failure threshold, the way real models degrade as a scene approaches a
    hard configuration.
    """

    name: str
    bounds: Mapping[str, tuple[float, float]]
    peak: float = 90.0
    halo: float = 0.5

    def volume_fraction(self) -> float:
        return float(np.prod([(hi - lo) / 2.0 for lo, hi in self.bounds.values()]))


# The default planted target: regions of very different sizes in several parameter groups.
# Volumes (fraction of the full space) range from 15% to ~5e-6.
PLANTED_REGIONS: tuple[PlantedRegion, ...] = (
    PlantedRegion("upside_down", {"pose.root_pitch": (0.7, 1.0)}),
    PlantedRegion("high_far_camera", {"camera.elevation": (0.5, 1.0), "camera.framing": (-1.0, -0.6)}),
    PlantedRegion("deep_squat", {"pose.l_knee_flexion": (0.5, 0.8), "pose.r_knee_flexion": (0.5, 0.8), "pose.l_hip_flexion": (0.3, 0.6)}),
    PlantedRegion("child_bent_over", {"shape.age": (-0.95, -0.7), "pose.spine_flexion": (0.55, 0.8)}),
    PlantedRegion("arm_behind_head", {"pose.r_shoulder_flexion": (0.55, 0.75), "pose.r_elbow_flexion": (0.6, 0.8), "pose.neck_rotation": (-0.7, -0.5)}),
    PlantedRegion("rolled_offset_camera", {"camera.roll": (0.6, 0.8), "camera.offset_x": (-0.9, -0.7), "camera.fov_y": (-0.2, 0.0)}),
    PlantedRegion("heavy_side_view", {"shape.weight": (0.6, 0.8), "pose.root_yaw": (0.35, 0.5), "camera.azimuth": (-0.5, -0.35), "pose.l_ankle_flexion": (-0.4, -0.2)}),
    PlantedRegion("crossed_arms_tall", {"pose.l_shoulder_abduction": (-0.9, -0.75), "pose.r_shoulder_abduction": (-0.9, -0.75), "shape.height": (0.3, 0.5), "pose.l_wrist_flexion": (0.2, 0.4)}),
)

# A harder target: only small regions (volumes 1e-3 .. 2e-5) that uniform sampling rarely
# hits; their halos (error rising towards the box) are what a guided search can follow.
HIDDEN_REGIONS: tuple[PlantedRegion, ...] = (
    PlantedRegion("tilted_low_camera", {"pose.root_roll": (0.6, 0.8), "camera.elevation": (-0.9, -0.7), "shape.weight": (0.0, 0.2)}, halo=0.8),
    PlantedRegion("raised_bent_arm", {"pose.l_elbow_flexion": (0.7, 0.9), "pose.l_shoulder_flexion": (0.5, 0.7), "shape.muscle": (-0.9, -0.7)}, halo=0.8),
    PlantedRegion("twisted_side_camera", {"pose.spine_rotation": (-0.8, -0.6), "camera.azimuth": (0.6, 0.8), "shape.gender": (0.7, 0.9)}, halo=0.8),
    PlantedRegion("straddle_close", {"pose.l_hip_abduction": (0.6, 0.8), "pose.r_hip_abduction": (0.6, 0.8), "camera.framing": (0.7, 0.9)}, halo=0.8),
    PlantedRegion("high_step_rolled", {"pose.r_hip_flexion": (0.5, 0.7), "pose.r_knee_flexion": (0.6, 0.8), "camera.roll": (-0.8, -0.6), "shape.age": (0.2, 0.4)}, halo=0.8),
    PlantedRegion("nodding_low_frame", {"pose.neck_flexion": (0.4, 0.6), "pose.head_flexion": (0.6, 0.8), "camera.offset_y": (0.6, 0.8), "shape.proportions": (-0.6, -0.4)}, halo=0.8),
    PlantedRegion("reaching_wide_lens", {"pose.r_wrist_deviation": (-0.5, -0.3), "pose.r_shoulder_abduction": (0.7, 0.9), "camera.fov_y": (0.3, 0.5), "pose.root_yaw": (-0.2, 0.0)}, halo=0.8),
    PlantedRegion("ankles_turned", {"pose.l_ankle_inversion": (0.3, 0.5), "pose.r_ankle_flexion": (-0.7, -0.5), "camera.offset_x": (0.1, 0.3)}, halo=0.8),
)

# Size classes of the `many` target: (regions, constrained dimensions, width per dimension).
# 4 large, 4 medium and 24 small regions (volume fraction = (width / 2) ** dims).
MANY_SIZE_CLASSES = ((4, 2, 0.3), (4, 3, 0.25), (8, 4, 0.2), (8, 4, 0.15), (8, 5, 0.2))
# The dimensions of the pose, shape and camera groups (the benchmark space) by group.
_GROUP_DIMS = {
    "pose": ("root_yaw", "root_pitch", "root_roll", "spine_flexion", "spine_lateral", "spine_rotation",
             "neck_flexion", "neck_lateral", "neck_rotation", "head_flexion", "l_shoulder_flexion",
             "l_shoulder_abduction", "l_shoulder_rotation", "l_elbow_flexion", "l_wrist_flexion",
             "l_wrist_deviation", "l_hip_flexion", "l_hip_abduction", "l_hip_rotation", "l_knee_flexion",
             "l_ankle_flexion", "l_ankle_inversion", "r_shoulder_flexion", "r_shoulder_abduction",
             "r_shoulder_rotation", "r_elbow_flexion", "r_wrist_flexion", "r_wrist_deviation", "r_hip_flexion",
             "r_hip_abduction", "r_hip_rotation", "r_knee_flexion", "r_ankle_flexion", "r_ankle_inversion"),
    "shape": ("gender", "age", "muscle", "weight", "height", "proportions", "belly", "head_size", "hip_width",
              "torso_width"),
    "camera": ("azimuth", "elevation", "framing", "fov_y", "roll", "offset_x", "offset_y"),
}


def many_regions(seed: int = 2026) -> tuple[PlantedRegion, ...]:
    """The `many` target: 32 regions (4 of ~2e-2 of the space, 4 of ~2e-3, 24 of 1e-4 to
    1e-5), drawn once from a fixed seed, each with the same halo as `hidden` (0.8).

    Each region's first dimension comes from the pose, shape and camera groups in turn,
    the others from all three groups, so regions mix groups; box edges are uniform in
    [-0.9, 0.9]. Not tuned to any strategy: the classes and the seed were fixed before
    any strategy ran on it (docs/search.md explains the design)."""
    rng = np.random.default_rng(seed)
    all_dims = [f"{g}.{d}" for g, ds in _GROUP_DIMS.items() for d in ds]
    groups = list(_GROUP_DIMS)
    out = []
    for count, n_dims, width in MANY_SIZE_CLASSES:
        for _ in range(count):
            g = groups[len(out) % 3]
            first = f"{g}.{_GROUP_DIMS[g][int(rng.integers(len(_GROUP_DIMS[g])))]}"
            rest = [d for d in all_dims if d != first]
            dims = [first] + [rest[int(i)] for i in rng.choice(len(rest), n_dims - 1, replace=False)]
            bounds = {}
            for d in dims:
                lo = round(float(rng.uniform(-0.9, 0.9 - width)), 3)
                bounds[d] = (lo, round(lo + width, 3))
            tag = "+".join(sorted({d.split(".")[0] for d in dims}))
            out.append(PlantedRegion(f"m{len(out):02d}_{tag}_{n_dims}d", bounds, halo=0.8))
    return tuple(out)


MANY_REGIONS = many_regions()

ANALYTIC_REGION_SETS = {"planted": PLANTED_REGIONS, "hidden": HIDDEN_REGIONS, "many": MANY_REGIONS}

# Implausible scenes (never failures) and model crashes (NaN error) for the planted target.
IMPLAUSIBLE_BOUNDS = {"shape.age": (-1.0, -0.9), "shape.height": (0.85, 1.0)}
MODEL_ERROR_BOUNDS = {"camera.framing": (-1.0, -0.95), "camera.fov_y": (0.9, 1.0)}


def _box_arrays(names: Sequence[str], bounds: Mapping[str, tuple[float, float]]):
    index = {n: i for i, n in enumerate(names)}
    dims = np.array([index[n] for n in bounds], dtype=np.int64)
    lo = np.array([b[0] for b in bounds.values()], dtype=np.float64)
    hi = np.array([b[1] for b in bounds.values()], dtype=np.float64)
    return dims, lo, hi


class AnalyticEvaluator:
    """A white-box target: error(u) = base(u) + planted boxes with halos + noise.

    base(u) in ~[25, 35] mm is a smooth function of all coordinates. Noise is Gaussian
    with `noise` mm, drawn from a generator seeded by (seed, hash of the row), so a row
    gets the same outcome in any batch and on any worker. `cpu_ms` burns CPU per row and
    `delay` sleeps per batch (to emulate a slow renderer in tests).

    Regions whose dimensions are not all in the space are left out (`regions` lists the
    active ones).
    """

    def __init__(
        self,
        space: ParamSpace,
        regions: Sequence[PlantedRegion] = PLANTED_REGIONS,
        noise: float = 1.0,
        seed: int = 0,
        threshold: float = 90.0,
        cpu_ms: float = 0.0,
        delay: float = 0.0,
        implausible: Mapping[str, tuple[float, float]] | None = IMPLAUSIBLE_BOUNDS,
        model_errors: Mapping[str, tuple[float, float]] | None = MODEL_ERROR_BOUNDS,
    ) -> None:
        self.names = list(space.names)
        self.dim = space.dim
        have = set(self.names)
        self.regions = [r for r in regions if set(r.bounds) <= have]
        self._boxes = [_box_arrays(self.names, r.bounds) for r in self.regions]
        self.noise = float(noise)
        self.seed = int(seed)
        self.threshold = float(threshold)
        self.cpu_ms = float(cpu_ms)
        self.delay = float(delay)
        self._implausible = _box_arrays(self.names, implausible) if implausible and set(implausible) <= have else None
        self._model_errors = _box_arrays(self.names, model_errors) if model_errors and set(model_errors) <= have else None
        gen = np.random.default_rng(np.random.SeedSequence([self.seed, 7]))
        self._w = gen.normal(size=(self.dim,)) / math.sqrt(self.dim)
        self._phase = gen.uniform(0, 2 * math.pi)

    def _noise(self, U: np.ndarray) -> np.ndarray:
        out = np.empty(len(U))
        for i, row in enumerate(U):
            key = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng([self.seed, key]).normal()
        return out * self.noise

    @staticmethod
    def _inside(U: np.ndarray, box) -> np.ndarray:
        dims, lo, hi = box
        sub = U[:, dims]
        return np.all((sub >= lo) & (sub <= hi), axis=1)

    def error_field(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,) noiseless error in mm and (N, R) membership of each planted region."""
        U = np.asarray(U, dtype=np.float64)
        # Row-wise sum, not U @ w: BLAS results depend on the batch shape, and a row must
        # score the same in any batch and on any worker.
        proj = np.sum(U * self._w[None, :], axis=1)
        base = 30.0 + 5.0 * np.sin(proj * 2.0 + self._phase)
        # Halos add at most `halo_cap` so that outside every box the error stays below
        # the threshold by a margin several noise-sigmas wide.
        halo_cap = max(self.threshold - 40.0 - 6.0 * self.noise, 0.0)
        halo = np.zeros(len(U))
        inside = np.zeros((len(U), len(self._boxes)), dtype=bool)
        peak = np.zeros(len(U))
        for j, (region, box) in enumerate(zip(self.regions, self._boxes)):
            dims, lo, hi = box
            sub = U[:, dims]
            gap = np.maximum(lo - sub, 0.0) + np.maximum(sub - hi, 0.0)
            dist = np.sqrt(np.sum(gap**2, axis=1))
            halo = np.maximum(halo, halo_cap * np.exp(-((dist / region.halo) ** 2)))
            inside[:, j] = dist == 0.0
            peak = np.maximum(peak, np.where(inside[:, j], region.peak, 0.0))
        return base + np.where(peak > 0, peak, halo), inside

    def evaluate(self, U: np.ndarray) -> list[Outcome]:
        t0 = time.perf_counter()
        U = np.asarray(U, dtype=np.float64)
        if U.ndim != 2 or U.shape[1] != self.dim:
            raise EvaluatorError(f"expected an (N, {self.dim}) batch, got shape {U.shape}")
        if self.delay > 0:
            time.sleep(self.delay)
        if self.cpu_ms > 0:
            # CPU-bound stand-in for rendering + inference (holds the GIL, like real work).
            deadline = time.perf_counter() + self.cpu_ms * 1e-3 * len(U)
            x = 0.0
            while time.perf_counter() < deadline:
                x += math.sin(x + 1.0)
        err, _ = self.error_field(U)
        err = err + self._noise(U)
        plausible = np.ones(len(U), dtype=bool) if self._implausible is None else ~self._inside(U, self._implausible)
        crashed = np.zeros(len(U), dtype=bool) if self._model_errors is None else self._inside(U, self._model_errors)
        dt = (time.perf_counter() - t0) / max(len(U), 1)
        out = []
        for e, ok, crash in zip(err, plausible, crashed):
            if crash:
                out.append(Outcome(float("nan"), {"pa_mpjpe": float("nan"), "mpjpe": float("nan")}, True,
                                   "analytic target: planted model crash", bool(ok), {"model": dt}))
            else:
                e = float(e)
                out.append(Outcome(e, {"pa_mpjpe": e, "mpjpe": 1.25 * e}, False, None, bool(ok), {"model": dt}))
        return out


class BoxEvaluator(AnalyticEvaluator):
    """One planted box given in normalised coordinates on dimension names (tests)."""

    def __init__(self, space: ParamSpace, bounds: Mapping[str, tuple[float, float]], **kw) -> None:
        kw.setdefault("implausible", None)
        kw.setdefault("model_errors", None)
        super().__init__(space, regions=(PlantedRegion("box", dict(bounds)),), **kw)


# ---------------------------------------------------------------------------------------
# Model specs -> evaluators
# ---------------------------------------------------------------------------------------

ANALYTIC_TARGETS = ("planted", "hidden", "many", "box", "drawn")


def _parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    kind, _, rest = spec.partition(":")
    name, _, query = rest.partition("?")
    opts: dict[str, str] = {}
    if query:
        for part in query.split("&"):
            k, sep, v = part.partition("=")
            if not sep or not k:
                raise SearchConfigError(f"model spec {spec!r}: option {part!r} must look like key=value")
            opts[k] = v
    return kind, name, opts


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


def build_evaluator(model_spec: str, space: ParamSpace, threshold: float = 90.0, seed: int = 0) -> Evaluator:
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
    """
    kind, name, opts = _parse_spec(model_spec)
    if kind != "analytic":
        return _build_simulator(model_spec, space, seed)
    if name not in ANALYTIC_TARGETS:
        raise SearchConfigError(f"unknown analytic target {name!r}; choose one of {', '.join(ANALYTIC_TARGETS)}")
    kw: dict = {"threshold": threshold, "seed": seed}
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


def _build_simulator(model_spec: str, space: ParamSpace, seed: int) -> Evaluator:
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

    return build_simulator_evaluator(model_spec, space, seed=seed)


@dataclass(frozen=True)
class EvaluatorFactory:
    """A picklable recipe that builds an evaluator in a worker process."""

    model_spec: str
    space: dict
    threshold: float = 90.0
    seed: int = 0

    def __call__(self) -> Evaluator:
        return build_evaluator(self.model_spec, ParamSpace.from_dict(self.space), self.threshold, self.seed)
