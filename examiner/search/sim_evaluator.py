"""`SimulatorEvaluator`: the real evaluator behind the search.

    U (N, D) -> ParamSpace.to_params -> simulator.render_batch -> Sample
             -> TargetBatch -> checked_predict(target) -> score_batch -> Outcome

Any target spec of ``examiner.targets`` works (python:, onnx:, worker:, cmd:, whitebox:,
mediapipe, baseline). Scoring is ``examiner.scoring.score_batch`` (the same code as
``examiner evaluate``); calibration is ``examiner.scoring.calibrate`` on
``examiner.scoring.reference_scenes``.

Evaluator options ride in the model spec as ``sim.*`` query keys, so they are recorded
with the run (meta.json's ``model_spec``) and a resume rebuilds the same evaluator; every
other query key goes to the target::

    baseline?sim.calibrate=32&sim.render_workers=2
    whitebox:camera.roll=0.5:1?error=0.3&sim.metric=mpjpe
    mediapipe?sim.renderer=blender&sim.background=hdri   (background.kind fixed in the base scene)

Determinism. A row must score the same in any batch (1 vs W workers, resume). Rendering
is deterministic, but the body model's batched forward pass rounds rows of an incomplete
group of 4 differently (float32 SIMD tail, ~1e-5 m on keypoints); every render call is
therefore padded to a multiple of ``RENDER_GROUP`` scenes (copies of the last scene,
rendered and dropped), which makes each row's result independent of its batch.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

from examiner.search.errors import EvaluatorError, SearchConfigError
from simulator.params import ParamSpace, SceneParams

# Metrics every outcome can carry. 3D ones in millimetres, 2D ones fractions.
METRICS_3D = ("pa_mpjpe", "pa_mpjpe_scaled", "mpjpe", "mpjpe_abs", "pve")
# pa_mpjpe_scaled: PA-MPJPE rescaled to the default adult's body size
# (`examiner.scoring.REFERENCE_SIZE`): a child's error counts as much as an adult's.
METRICS_2D = ("pck", "oks", "pck_miss", "oks_miss")
METRICS = METRICS_3D + METRICS_2D
# pck_miss = 1 - PCK, oks_miss = 1 - OKS: 2D metrics oriented like errors (larger = worse),
# so that `--metric pck_miss --threshold 0.5` defines a failure the search can maximise.

RENDER_GROUP = 4  # see "Determinism" above
OPTION_PREFIX = "sim."

RenderFn = Callable[[list[SceneParams]], list[Any]]


def split_evaluator_options(model_spec: str) -> tuple[str, dict[str, str]]:
    """'target?k=v&sim.opt=x' -> ('target?k=v', {'opt': 'x'}): separate the evaluator's
    ``sim.*`` options from the target spec (a quoted cmd:"..." body may hold any text).
    Parsing is ``examiner.targets.registry``'s (split_spec / parse_query / format_query)."""
    from examiner.targets.base import TargetError
    from examiner.targets.registry import format_query, parse_query, split_spec

    try:
        parts = split_spec(model_spec)
        options = parse_query(parts.query, model_spec.strip())
    except TargetError as e:
        raise SearchConfigError(str(e)) from None
    keep = {k: v for k, v in options.items() if not k.startswith(OPTION_PREFIX)}
    opts = {k[len(OPTION_PREFIX):]: v for k, v in options.items() if k.startswith(OPTION_PREFIX)}
    return (parts.head + "?" + format_query(keep)) if keep else parts.head, opts


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


def _pad(scenes: list[SceneParams]) -> list[SceneParams]:
    extra = _round_up(len(scenes), RENDER_GROUP) - len(scenes)
    return scenes + [scenes[-1]] * extra


def _xy_list(xy: np.ndarray) -> list[list[float] | None]:
    return [[round(float(x), 2), round(float(y), 2)] if np.isfinite(x) and np.isfinite(y) else None for x, y in xy]


def _num_list(v: np.ndarray, scale: float = 1.0, nd: int = 2) -> list[float | None]:
    return [round(float(x) * scale, nd) if np.isfinite(x) else None for x in v]


class SimulatorEvaluator:
    """Render the scenes of a batch of normalised vectors, run a target model, score.

    target: a model spec string (see ``examiner.targets``) or a ``TargetModel``.
    space: the search's ``ParamSpace``; its base scene fixes everything not searched,
        the image size included (``camera.width`` / ``camera.height``).
    metric: which metric becomes ``Outcome.error`` (default pa_mpjpe; pck_miss for a
        2D-only model). All of METRICS the model can produce are in ``Outcome.metrics``.
        A search builds it with the run's ``--metric`` (``build_evaluator(metric=)``), so
        that ``Outcome.error`` is the metric that defines failure.
    joint_set: joint set the metrics use (default: the 12 limb joints, ``common12``).
    calibrate: estimate per-joint offsets on this many easy reference scenes before the
        first batch (0: off); or pass a ready ``calibration``.
    seed: seeds the reference scenes.
    render_workers: 0 renders in this process; W > 0 renders in W processes
        (``simulator.pool.RenderPool``) and prefetches: chunk k+1 renders while the model
        runs on chunk k.
    batch_size: scenes per render/model chunk (rounded up to a multiple of 4).
    render_fn: custom renderer (tests); must be deterministic per scene.
    joints: which joints the metrics count: "all" (default), "in_frame" (inside the image)
        or "visible" (inside it and not hidden by an occluder or the body;
        ``examiner.scoring.joints_seen``). With "in_frame" / "visible" a search finds
        where the model misplaces what it can see, not where it must guess cut-off or
        hidden joints. A scene with fewer than ``MIN_SCORED_JOINTS`` such joints is no fair
        test: it is marked not plausible (``extra["unscored"]`` says why), so it is
        penalised and never counts, like an implausible body.

    Outcome per row: ``error`` (metric in its unit, NaN on a model error), ``metrics``,
    ``model_error`` + ``model_error_message`` ("kind: message" of the target's
    per-sample failure, e.g. a crashed worker; a "no_detection" sets ``missed`` instead of
    ``model_error`` and keeps its message), ``plausible`` (the sample's
    self-penetration check), ``timings`` (seconds per row: render, model, inference,
    metrics) and ``extra``: ``prediction`` ({"convention": name, "<name>_xy": [[x, y] |
    None, ...]} in pixels of the rendered image, the model's own output before
    calibration; plus "coco17_xy" when the model's convention is neither coco17 nor
    h36m17 and maps onto it) and ``joint_errors`` ({"joints": [...], "mm": [...],
    "px": [...]} on the joint set, after calibration).
    """

    def __init__(
        self,
        target: Any,
        space: ParamSpace,
        metric: str | None = None,
        joint_set: str = "common12",
        calibrate: int = 0,
        calibration: Any = None,
        seed: int = 0,
        render_workers: int = 0,
        batch_size: int = 32,
        render_config: Any = None,
        render_fn: RenderFn | None = None,
        joints: str = "all",
    ) -> None:
        from examiner.conventions import conversion_matrix, get_convention
        from examiner.targets.registry import load_target

        if metric is not None and metric not in METRICS:
            raise SearchConfigError(f"unknown evaluator metric {metric!r}; choose one of {', '.join(METRICS)}")
        if calibrate < 0 or render_workers < 0 or batch_size < 1:
            raise SearchConfigError("sim.calibrate and sim.render_workers must be >= 0 and sim.batch >= 1")
        get_convention(joint_set)
        from examiner.scoring import SEEN_JOINTS

        if joints not in ("all", *SEEN_JOINTS):
            raise SearchConfigError(f"sim.joints must be one of all, {', '.join(SEEN_JOINTS)}; got {joints!r}")
        self.joints = joints
        self.space = space
        self.joint_set = joint_set
        self.calibrate_n = int(calibrate)
        self.calibration = calibration
        self.seed = int(seed)
        self.render_workers = int(render_workers)
        self.batch_size = _round_up(int(batch_size), RENDER_GROUP)
        self.render_config = render_config
        self._render_fn = render_fn
        self._pool = None
        self._ready = False
        # A target built here from a spec is ours to close (and to reload if the evaluator
        # is used again after close()); a TargetModel passed in stays the caller's.
        self._spec = target if isinstance(target, str) else None
        self.model = load_target(target)
        outputs = set(self.model.outputs)
        self.metric_names = [m for m in METRICS_3D if "joints3d" in outputs and (m != "mpjpe_abs" or self.model.frame == "camera")
                             and (m != "pve" or "vertices" in outputs)]
        self.metric_names += [m for m in METRICS_2D if "joints2d" in outputs]
        if metric is None:  # default: PA-MPJPE, or the first metric a 2D-only model has
            metric = "pa_mpjpe" if "pa_mpjpe" in self.metric_names else "pck_miss"
        self.metric = metric
        if metric not in self.metric_names:
            msg = (f"target {self.model.name!r} cannot produce metric {metric!r} (it outputs "
                   f"{', '.join(sorted(outputs))}); choose one of {', '.join(self.metric_names)} with --metric")
            self.close()
            raise SearchConfigError(msg)
        _, valid = conversion_matrix(self.model.convention, joint_set)
        if not valid.any():
            msg = f"target convention {self.model.convention!r} has no joint of joint set {joint_set!r}"
            self.close()
            raise SearchConfigError(msg)
        conv = self.model.convention
        self._draw = {}  # convention -> conversion matrix for the stored 2D prediction
        if "joints2d" in outputs:
            self._draw[conv] = None
            if conv not in ("coco17", "h36m17"):
                W, ok = conversion_matrix(conv, "coco17")
                if ok.any():
                    self._draw["coco17"] = (W, ok)

    # ---- lifecycle ------------------------------------------------------------------------
    def _render(self, scenes: list[SceneParams]) -> list[Any]:
        if not scenes:
            return []
        padded = _pad(scenes)
        if self._render_fn is not None:
            fn = self._render_fn
        elif self._pool is not None:
            # Spread one call over all workers, in chunks that stay multiples of the group.
            self._pool.chunk = max(RENDER_GROUP, _round_up(-(-len(padded) // self.render_workers), RENDER_GROUP))
            fn = self._pool.render_batch
        else:
            import simulator

            cfg = self.render_config
            fn = lambda ps: simulator.render_batch(ps, cfg)  # noqa: E731
        samples = fn(padded)
        if len(samples) != len(padded):
            raise EvaluatorError(f"renderer returned {len(samples)} samples for {len(padded)} scenes")
        return list(samples[: len(scenes)])

    def _setup(self) -> None:
        if self._ready:
            return
        if self.model is None:
            from examiner.targets.registry import load_target

            self.model = load_target(self._spec)
        if self.render_workers > 0 and self._render_fn is None:
            from simulator.pool import RenderPool

            self._pool = RenderPool(workers=self.render_workers, config=self.render_config)
        if self.calibration is None and self.calibrate_n > 0:
            from examiner.scoring import calibrate, reference_scenes

            refs = self._render(reference_scenes(self.calibrate_n, self.seed, base=self.space.base))
            self.calibration = calibrate(self.model, refs, self.joint_set)
        self._ready = True

    def close(self) -> None:
        """Stop render workers and close a target this evaluator loaded. Safe to call
        twice; a later evaluate() starts them again (calibration is kept)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        if getattr(self, "_spec", None) is not None and getattr(self, "model", None) is not None:
            self.model.close()
            self.model = None
        self._ready = False

    def __del__(self) -> None:  # an evaluator built only to validate a spec must not leak a worker
        try:
            self.close()
        except Exception:  # noqa: BLE001 - best effort at garbage collection
            pass

    def __enter__(self) -> "SimulatorEvaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {
            "target": self.model.describe() if self.model is not None else self._spec, "metric": self.metric, "metrics": list(self.metric_names),
            "joint_set": self.joint_set, "calibrate": self.calibrate_n, "render_workers": self.render_workers,
            "batch_size": self.batch_size, "joints": self.joints,
        }

    # ---- evaluation -----------------------------------------------------------------------
    def evaluate(self, U: np.ndarray) -> list:
        U = np.asarray(U, dtype=np.float64)
        if U.ndim != 2 or U.shape[1] != self.space.dim:
            raise EvaluatorError(f"expected an (N, {self.space.dim}) batch, got shape {U.shape}")
        if len(U) == 0:
            return []
        self._setup()
        scenes = [self.space.to_params(u) for u in U]
        bounds = [(a, min(a + self.batch_size, len(scenes))) for a in range(0, len(scenes), self.batch_size)]
        outcomes: list = []
        executor = ThreadPoolExecutor(max_workers=1) if self._pool is not None and self._render_fn is None else None
        try:
            pending: Future | None = executor.submit(self._render, scenes[bounds[0][0]:bounds[0][1]]) if executor else None
            for k, (a, b) in enumerate(bounds):
                t0 = time.perf_counter()
                if executor is not None:
                    samples = pending.result()  # type: ignore[union-attr]
                    if k + 1 < len(bounds):
                        na, nb = bounds[k + 1]
                        pending = executor.submit(self._render, scenes[na:nb])
                else:
                    samples = self._render(scenes[a:b])
                t_render = time.perf_counter() - t0
                outcomes += self._score(samples, t_render)
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        return outcomes

    def _score(self, samples: list[Any], t_render: float) -> list:
        from examiner.scoring import MIN_SCORED_JOINTS, joints_seen, score_batch
        from examiner.search.outcome import Outcome
        from examiner.targets.base import TargetBatch, checked_predict

        n = len(samples)
        batch = TargetBatch.from_samples(samples, with_ground_truth=self.model.needs_ground_truth)
        pred = checked_predict(self.model, batch)
        t1 = time.perf_counter()
        seen = None if self.joints == "all" else joints_seen(samples, self.joint_set, self.joints)
        s = score_batch(pred, samples, self.joint_set, self.calibration, joint_mask=seen)
        values = {
            "pa_mpjpe": s.pa_mpjpe * 1000.0, "pa_mpjpe_scaled": s.pa_mpjpe_scaled * 1000.0, "mpjpe": s.mpjpe * 1000.0, "mpjpe_abs": s.mpjpe_abs * 1000.0,
            "pve": s.pve * 1000.0, "pck": s.pck, "oks": s.oks, "pck_miss": 1.0 - s.pck, "oks_miss": 1.0 - s.oks,
        }
        draw = {}
        if pred.joints2d is not None:
            for conv, m in self._draw.items():
                if m is None:
                    draw[conv] = np.asarray(pred.joints2d, np.float64)
                else:
                    W, ok = m
                    xy = np.einsum("ds,bsc->bdc", W, np.asarray(pred.joints2d, np.float64))
                    xy[:, ~ok] = np.nan
                    draw[conv] = xy
        t_metrics = time.perf_counter() - t1
        infer = pred.seconds if pred.inference_seconds is None else pred.inference_seconds
        timings = {"render": t_render / n, "model": pred.seconds / n, "inference": infer / n, "metrics": t_metrics / n}
        ok = pred.ok
        out = []
        for i, sample in enumerate(samples):
            plausible = bool(getattr(sample, "plausible", True))
            if not ok[i]:
                f = (pred.failures or [None] * n)[i]
                msg = str(f) if f is not None else "model failure"
                nan = float("nan")
                # "no_detection" is the model missing the person: a failure, not a breakage.
                missed = getattr(f, "kind", None) == "no_detection"
                out.append(Outcome(nan, {m: nan for m in self.metric_names}, not missed, msg, plausible,
                                   dict(timings), {"prediction": None, "joint_errors": None}, missed=missed))
                continue
            metrics = {m: float(values[m][i]) for m in self.metric_names}
            prediction: dict[str, Any] | None = None
            if draw:
                prediction = {"convention": self.model.convention}
                prediction.update({f"{c}_xy": _xy_list(xy[i]) for c, xy in draw.items()})
            extra = {
                "prediction": prediction,
                "joint_errors": {"joints": list(s.joints), "mm": _num_list(s.joint_err3d[i], 1000.0, 1),
                                 "px": _num_list(s.joint_err2d[i], 1.0, 2)},
            }
            err = metrics[self.metric]
            if seen is not None and not math.isfinite(err):
                plausible = False  # too few joints in view to judge: no fair test
                extra["unscored"] = (f"{int(seen[i].sum())} joints {self.joints.replace('_', ' ')}, "
                                     f"sim.joints={self.joints} needs {MIN_SCORED_JOINTS}")
            out.append(Outcome(err if math.isfinite(err) else float("nan"), metrics, False, None, plausible,
                               dict(timings), extra))
        return out


def _render_config_for(renderer: str) -> Any:
    """sim.renderer=pyrender|blender: the RenderConfig of the scenes (simulator.blender)."""
    from simulator.renderer import RenderConfig, check_renderer

    return RenderConfig(renderer=check_renderer(renderer))


def with_renderer(model_spec: str, renderer: str) -> str:
    """The model spec with ``sim.renderer=RENDERER`` added (pyrender: unchanged), so that
    the renderer is stored with the run's model spec and a resume keeps it."""
    if renderer == "pyrender":
        return model_spec
    _render_config_for(renderer)  # one-line error now for an unknown or uninstalled renderer
    return with_sim_option(model_spec, "renderer", renderer, "--renderer")


def with_sim_option(model_spec: str, key: str, value: str, flag: str) -> str:
    """The model spec with ``sim.KEY=VALUE`` added (unchanged when it already says so), for
    a CLI flag that is stored with the run's model spec so that a resume keeps it."""
    head, opts = split_evaluator_options(model_spec)
    if opts.get(key, value) != value:
        raise SearchConfigError(f"{flag} {value} contradicts {OPTION_PREFIX}{key}={opts[key]} in {model_spec!r}")
    sep = "&" if "?" in model_spec else "?"
    return model_spec if key in opts else f"{model_spec}{sep}{OPTION_PREFIX}{key}={value}"


def with_sim_options(model_spec: str, options: dict[str, str]) -> str:
    """The model spec with every ``sim.KEY=VALUE`` of `options` added (see with_sim_option):
    how a new model (a fine-tune's export, a hook's return) keeps the evaluator options
    its predecessor was examined with."""
    for key, value in options.items():
        model_spec = with_sim_option(model_spec, key, value, f"{OPTION_PREFIX}{key}")
    return model_spec


def _with_background(space: ParamSpace, kind: str, renderer: str, model_spec: str) -> ParamSpace:
    """sim.background=KIND: the space with background.kind fixed to KIND in its base scene,
    e.g. ``mediapipe?sim.renderer=blender&sim.background=hdri`` (the environment map as
    the backdrop of every scene; docs/blender.md)."""
    from simulator.params import HDRI_BACKGROUND

    if any(d.name == "background.kind" for d in space.dimensions):
        raise SearchConfigError(f"sim.background={kind} in {model_spec!r} fixes background.kind, which the space "
                                "searches; drop sim.background or the background group")
    if kind == HDRI_BACKGROUND and renderer != "blender":
        raise SearchConfigError(f"sim.background={kind} in {model_spec!r} is drawn by Blender only; "
                                "add --renderer blender (sim.renderer=blender)")
    try:
        base = space.base.with_values({"background.kind": kind})
    except Exception as e:  # noqa: BLE001 - a bad kind: the parameter's own one-line message
        raise SearchConfigError(f"sim.background={kind!r} in {model_spec!r}: {e}") from None
    return ParamSpace(space.dimensions, base=base, clamp=space.clamp)


def build_simulator_evaluator(model_spec: str, space: ParamSpace, seed: int = 0, **overrides: Any) -> SimulatorEvaluator:
    """A `SimulatorEvaluator` from a search model spec (target spec + ``sim.*`` options)."""
    target_spec, opts = split_evaluator_options(model_spec)
    if "background" in opts:
        space = _with_background(space, opts.pop("background"), opts.get("renderer", "pyrender"), model_spec)
    kw: dict[str, Any] = {}
    casts: dict[str, tuple[str, Callable[[str], Any]]] = {
        "metric": ("metric", str), "joint_set": ("joint_set", str), "calibrate": ("calibrate", int),
        "render_workers": ("render_workers", int), "batch": ("batch_size", int),
        "renderer": ("render_config", _render_config_for), "joints": ("joints", str),
    }
    for key, value in opts.items():
        if key not in casts:
            raise SearchConfigError(
                f"unknown evaluator option sim.{key} in {model_spec!r}; valid: "
                + ", ".join(OPTION_PREFIX + k for k in (*casts, "background"))
            )
        name, cast = casts[key]
        try:
            kw[name] = cast(value)
        except ValueError:
            raise SearchConfigError(f"sim.{key}={value!r} in {model_spec!r} must be {cast.__name__}") from None
    if "metric" in kw and "metric" in overrides and kw["metric"] != overrides["metric"]:
        raise SearchConfigError(
            f"model spec {model_spec!r} sets sim.metric={kw['metric']} but the run's metric is {overrides['metric']}: "
            f"drop sim.metric or pass --metric {kw['metric']}"
        )
    kw.update(overrides)
    return SimulatorEvaluator(target_spec, space, seed=seed, **kw)


def whitebox_regions_spec(regions: Sequence[Any]) -> str:
    """The ``whitebox:`` spec body for regions given as objects with ``bounds``
    ({dimension: (lo, hi)} in normalised units), e.g. the analytic PlantedRegion sets."""
    return ";".join(",".join(f"{d}={lo:g}:{hi:g}" for d, (lo, hi) in r.bounds.items()) for r in regions)
