"""Scoring predictions against simulator ground truth, and `examiner evaluate`.

`score_batch` maps a `Prediction` and the rendered `Sample`s onto one joint set (default:
the twelve limb joints of ``examiner.conventions.COMMON_JOINTS``) and computes per-sample
metrics. `evaluate` renders n random scenes of a parameter space, runs a model on them and
writes ``evaluations.csv`` (one row per sample) and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import typer

from examiner import metrics
from examiner.conventions import conversion_matrix, get_convention
from examiner.targets.base import Prediction, TargetBatch, TargetError, TargetModel, checked_predict
from examiner.targets.calibration import JointCalibration
from examiner.targets.registry import load_target
from simulator.params import ParamSpace, SceneParams

GT_SOURCES = ("coco17", "h36m17", "feet6")


@dataclass
class GroundTruth:
    """Ground truth of B samples on one joint set (J joints).

    xyz (B, J, 3) m camera frame; xy (B, J, 2) px; visibility (B, J) int; valid (B, J) bool
    (the simulator provides that joint); boxes (B, 4) xyxy px; area (B,) px^2 (person mask
    pixels, else box area), for OKS."""

    joint_set: str
    xyz: np.ndarray
    xy: np.ndarray
    visibility: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray
    area: np.ndarray


def ground_truth(samples: Sequence[Any], joint_set: str = "common12") -> GroundTruth:
    """Collect the samples' keypoints on ``joint_set``: taken from that convention when the
    sample has it, else converted exactly from coco17 / h36m17 / feet6."""
    js = get_convention(joint_set)
    b, j = len(samples), js.num_joints
    xyz = np.full((b, j, 3), np.nan)
    xy = np.full((b, j, 2), np.nan)
    vis = np.zeros((b, j), np.int64)
    valid = np.zeros((b, j), bool)
    for i, s in enumerate(samples):
        sources = ([joint_set] if joint_set in s.keypoints else []) + [c for c in GT_SOURCES if c in s.keypoints]
        for src in sources:
            kp = s.keypoints[src]
            W, ok = conversion_matrix(src, js)
            rows = ok & ~valid[i]
            if not rows.any():
                continue
            xyz[i, rows] = W[rows] @ np.asarray(kp.xyz, np.float64)
            xy[i, rows] = W[rows] @ np.asarray(kp.xy, np.float64)
            v = np.asarray(kp.visibility, np.int64)
            for r in np.flatnonzero(rows):
                vis[i, r] = v[W[r] != 0].min()
            valid[i, rows] = True
    boxes = np.stack([np.asarray(s.bbox, np.float64) for s in samples])
    area = np.array(
        [
            float(np.count_nonzero(s.mask)) if getattr(s, "mask", None) is not None and np.any(s.mask)
            else float(max(bx[2] - bx[0], 0) * max(bx[3] - bx[1], 0))
            for s, bx in zip(samples, boxes)
        ]
    )
    return GroundTruth(joint_set, xyz, xy, vis, valid, boxes, area)


@dataclass
class BatchScores:
    """Per-sample metrics (B,) and per-joint errors (B, J) on ``joints``; NaN where a sample
    failed or a metric does not apply. 3D in metres, 2D in pixels."""

    joints: tuple[str, ...]
    mpjpe: np.ndarray
    pa_mpjpe: np.ndarray
    mpjpe_abs: np.ndarray
    pve: np.ndarray
    pck: np.ndarray
    oks: np.ndarray
    joint_err3d: np.ndarray
    joint_err2d: np.ndarray
    failure_kind: list[str] = field(default_factory=list)
    failure_message: list[str] = field(default_factory=list)


def prediction_on(pred: Prediction, joint_set: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Convert the prediction to the joint set: (joints3d (B, J, 3) | None, joints2d | None,
    valid (J,)) using exact mappings only."""
    W, valid = conversion_matrix(pred.convention, joint_set)
    j3 = None if pred.joints3d is None else np.einsum("ds,bsc->bdc", W, pred.joints3d.astype(np.float64))
    j2 = None if pred.joints2d is None else np.einsum("ds,bsc->bdc", W, pred.joints2d.astype(np.float64))
    return j3, j2, valid


def score_batch(
    pred: Prediction,
    samples: Sequence[Any],
    joint_set: str = "common12",
    calibration: JointCalibration | None = None,
    pck_alpha: float = 0.1,
) -> BatchScores:
    js = get_convention(joint_set)
    gt = ground_truth(samples, joint_set)
    j3, j2, pvalid = prediction_on(pred, joint_set)
    if not pvalid.any():
        raise TargetError(f"prediction convention {pred.convention!r} has no joint of joint set {joint_set!r}")
    if calibration is not None and calibration.joint_set != joint_set:
        raise TargetError(f"calibration is for joint set {calibration.joint_set!r}, scoring uses {joint_set!r}")
    b, j = len(samples), js.num_joints
    mask = gt.valid & pvalid[None, :]
    ok = pred.ok
    nan = np.full(b, np.nan)
    out = BatchScores(js.joints, nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(),
                      np.full((b, j), np.nan), np.full((b, j), np.nan))
    root_w = js.root_weights()
    if j3 is not None:
        if calibration is not None and ok.any():
            j3 = j3.copy()
            j3[ok] = calibration.apply3d(j3[ok])
        p_rr = metrics.root_relative(j3, root_w)
        g_rr = metrics.root_relative(gt.xyz, root_w)
        err = metrics.per_joint_error(p_rr, g_rr, mask)
        out.joint_err3d = err
        out.mpjpe = metrics.mpjpe(p_rr, g_rr, mask)
        safe = np.where(np.isfinite(p_rr), p_rr, 0.0)
        out.pa_mpjpe = np.where(ok, metrics.pa_mpjpe(safe, np.where(np.isfinite(g_rr), g_rr, 0.0), mask), np.nan)
        if pred.frame == "camera":
            out.mpjpe_abs = metrics.mpjpe(j3, gt.xyz, mask)
        gt_verts = [getattr(s, "vertices", None) for s in samples]
        if pred.vertices is not None and all(v is not None for v in gt_verts):
            gv = np.stack(gt_verts).astype(np.float64)
            if gv.shape == pred.vertices.shape:
                p_root = np.einsum("j,bjc->bc", root_w, j3)[:, None]
                g_root = np.einsum("j,bjc->bc", root_w, gt.xyz)[:, None]
                out.pve = metrics.pve(pred.vertices - p_root, gv - g_root)
    if j2 is not None:
        if calibration is not None and ok.any():
            j2 = j2.copy()
            j2[ok] = calibration.apply2d(j2[ok])
        vis2 = np.where(mask, gt.visibility, 0)
        out.joint_err2d = metrics.per_joint_error(j2, gt.xy, vis2 > 0)
        out.pck = metrics.pck(j2, gt.xy, gt.boxes, vis2, alpha=pck_alpha)
        out.oks = metrics.oks(j2, gt.xy, vis2, gt.area, js.sigmas)
    for name in ("mpjpe", "pa_mpjpe", "mpjpe_abs", "pve", "pck", "oks"):
        arr = getattr(out, name)
        arr[~ok] = np.nan
    out.joint_err3d[~ok] = np.nan
    out.joint_err2d[~ok] = np.nan
    failures = pred.failures or [None] * b
    out.failure_kind = [f.kind if f else "" for f in failures]
    out.failure_message = [f.message if f else "" for f in failures]
    return out


# ---------------------------------------------------------------------------------------
# Reference scenes and calibration
# ---------------------------------------------------------------------------------------


def reference_scenes(n: int, seed: int, base: SceneParams | None = None) -> list[SceneParams]:
    """Easy scenes for offset calibration: the base scene (neutral standing pose, frontal
    camera, no occluder) with every pose angle jittered by N(0, 5°) and the camera azimuth
    uniform in ±25°."""
    from simulator.params import default_dimensions

    base = base or SceneParams()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA1B]))
    pose_dims = [d for d in default_dimensions() if d.group == "joints"]  # the raw angles
    flat = base.flat()
    scenes = []
    for _ in range(n):
        values: dict[str, Any] = {}
        for d in pose_dims:
            v = flat[d.name] + rng.normal(0.0, math.radians(5))
            values[d.name] = float(np.clip(v, d.low, d.high))
        values["camera.azimuth"] = float(rng.uniform(-math.radians(25), math.radians(25)))
        scenes.append(base.with_values(values))
    return scenes


def calibrate(
    model: TargetModel,
    samples: Sequence[Any],
    joint_set: str = "common12",
) -> JointCalibration:
    """Estimate the model's joint offsets on reference samples (see
    ``examiner.targets.calibration`` for the method)."""
    batch = TargetBatch.from_samples(samples, with_ground_truth=model.needs_ground_truth)
    pred = checked_predict(model, batch)
    ok = pred.ok
    if ok.sum() < max(3, len(samples) // 4):
        raise TargetError(
            f"calibration needs usable predictions: the model failed on {int((~ok).sum())} of {len(samples)} reference scenes"
        )
    gt = ground_truth(samples, joint_set)
    j3, j2, _ = prediction_on(pred, joint_set)
    return JointCalibration.estimate(
        joint_set,
        None if j3 is None else j3[ok],
        gt.xyz[ok] if j3 is not None else None,
        None if j2 is None else j2[ok],
        gt.xy[ok] if j2 is not None else None,
        model=model.name,
    )


# ---------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------

RenderFn = Callable[[list[SceneParams]], list[Any]]


def _default_render() -> RenderFn:
    import simulator

    fn = getattr(simulator, "render_batch", None)
    if fn is None:
        raise TargetError("simulator.render_batch is not available in this installation; update PoseExaminer")
    return fn


def _stat(values: np.ndarray) -> dict[str, float | None]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"mean": None, "median": None, "p90": None}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p90": float(np.percentile(v, 90))}


def check_evaluate_options(n: int, seed: int, batch_size: int, calibrate_n: int, render_workers: int) -> None:
    """TargetError (one line) on the first option out of range."""
    if n <= 0:
        raise TargetError(f"--n must be positive, got {n}")
    if seed < 0:
        raise TargetError(f"--seed must be a non-negative integer, got {seed}")
    if batch_size < 1:
        raise TargetError(f"--batch-size must be at least 1, got {batch_size}")
    if calibrate_n < 0:
        raise TargetError(f"--calibrate must be 0 (off) or a number of scenes, got {calibrate_n}")
    if render_workers < 0:
        raise TargetError(f"--render-workers must be 0 (render in this process) or more, got {render_workers}")


# Failure kinds that are the model or its process breaking (not a model's real miss).
MODEL_ERROR_KINDS = ("exception", "crash", "timeout", "protocol", "shape", "nan")


def model_error_count(summary: dict[str, Any]) -> int:
    by_kind = summary["failures"]["by_kind"]
    return sum(int(by_kind.get(k, 0)) for k in MODEL_ERROR_KINDS)


def evaluate(
    model_spec: str | TargetModel,
    n: int = 200,
    seed: int = 0,
    space: str | ParamSpace = "pose,camera",
    out: str | Path | None = None,
    batch_size: int = 16,
    joint_set: str = "common12",
    calibrate_n: int = 0,
    calibration: JointCalibration | str | Path | None = None,
    render_fn: RenderFn | None = None,
    render_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    render_config: Any = None,
) -> dict[str, Any]:
    """Render ``n`` scenes drawn uniformly from ``space`` (seeded), run the model, score.

    Writes ``out/evaluations.csv`` (per sample: normalised parameters, failure, metrics in
    mm / fractions, per-joint 3D errors in mm, timings in ms, scene JSON) and
    ``out/summary.json`` when ``out`` is given; returns the summary dict. With
    ``calibrate_n > 0`` per-joint offsets are first estimated on that many easy reference
    scenes (``reference_scenes``) and applied to every prediction (saved as
    ``calibration.json``).

    ``render_workers > 0`` renders in that many separate processes
    (``simulator.pool.RenderPool``) and prefetches: batch k+1 renders while the model
    runs on batch k, so render time hides behind inference (the render column then
    shows only the time spent waiting for a batch). A custom ``render_fn`` must then be
    callable from a background thread. ``render_config``: a
    ``simulator.renderer.RenderConfig`` (e.g. ``renderer="blender"``); None: the default."""
    check_evaluate_options(n, seed, batch_size, calibrate_n, render_workers)
    space = space if isinstance(space, ParamSpace) else ParamSpace.from_groups(space)
    pool = None
    if render_fn is None and render_workers > 0:
        from simulator.pool import RenderPool

        pool = RenderPool(workers=render_workers, config=render_config)
        render_fn = pool.render_batch
    if render_fn is None and render_config is not None:
        from simulator.renderer import render_batch as _render_batch

        render_fn = lambda ps: _render_batch(ps, render_config)  # noqa: E731
    render = render_fn or _default_render()
    prefetch = render_workers > 0
    rng = np.random.default_rng(seed)
    U = space.sample(rng, n)
    scenes = [space.to_params(u) for u in U]
    model = load_target(model_spec)
    outdir = Path(out) if out is not None else None
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    t_render = t_model = t_infer = t_metrics = 0.0
    t_start = time.perf_counter()
    executor: ThreadPoolExecutor | None = None
    try:
        if isinstance(calibration, (str, Path)):
            calibration = JointCalibration.load(calibration)
        if calibration is None and calibrate_n > 0:
            calibration = calibrate(model, render(reference_scenes(calibrate_n, seed)), joint_set)
        if calibration is not None and outdir is not None:
            calibration.save(outdir / "calibration.json")
        done = 0
        starts = list(range(0, n, batch_size))
        if prefetch:
            executor = ThreadPoolExecutor(max_workers=1)
        pending = executor.submit(render, scenes[0:batch_size]) if executor else None
        for start in starts:
            chunk = scenes[start : start + batch_size]
            t0 = time.perf_counter()
            if executor is not None:
                samples = pending.result()  # type: ignore[union-attr]
                nxt = start + batch_size
                if nxt < n:
                    pending = executor.submit(render, scenes[nxt : nxt + batch_size])
            else:
                samples = render(chunk)
            t1 = time.perf_counter()
            batch = TargetBatch.from_samples(samples, with_ground_truth=model.needs_ground_truth)
            pred = checked_predict(model, batch)
            t2 = time.perf_counter()
            scores = score_batch(pred, samples, joint_set, calibration)
            t3 = time.perf_counter()
            t_render += t1 - t0
            t_model += pred.seconds
            infer = pred.seconds if pred.inference_seconds is None else pred.inference_seconds
            t_infer += infer
            t_metrics += t3 - t2
            k = len(chunk)
            for i in range(k):
                row: dict[str, Any] = {"index": start + i, "seed": seed}
                row.update({f"u:{name}": round(float(U[start + i, d]), 6) for d, name in enumerate(space.names)})
                row["failure"] = scores.failure_kind[i]
                row["failure_message"] = scores.failure_message[i]
                for key in ("mpjpe", "pa_mpjpe", "mpjpe_abs", "pve"):
                    row[f"{key}_mm"] = _round(getattr(scores, key)[i] * 1000.0)
                row["pck"] = _round(scores.pck[i], 4)
                row["oks"] = _round(scores.oks[i], 4)
                for jn, e in zip(scores.joints, scores.joint_err3d[i]):
                    row[f"err3d_mm:{jn}"] = _round(e * 1000.0)
                row["render_ms"] = round((t1 - t0) / k * 1000.0, 2)
                row["model_ms"] = round(pred.seconds / k * 1000.0, 2)
                row["inference_ms"] = round(infer / k * 1000.0, 2)
                row["metrics_ms"] = round((t3 - t2) / k * 1000.0, 3)
                row["params"] = chunk[i].to_json(sort_keys=True)
                rows.append(row)
            done += k
            if progress is not None:
                progress(done, n)
        describe = model.describe()
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        model.close()
        if pool is not None:
            pool.close()
    wall = time.perf_counter() - t_start
    summary = _summarise(rows, describe, space, seed, joint_set, calibration, wall, t_render, t_model, t_infer, t_metrics)
    renderer = getattr(render_config, "renderer", "pyrender")
    if renderer != "pyrender":  # pyrender summaries stay as they were
        summary["renderer"] = {"name": renderer, "samples": render_config.blender_samples}
    if outdir is not None:
        _write_csv(outdir / "evaluations.csv", rows)
        (outdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _round(x: float, nd: int = 2) -> float | str:
    return "" if not np.isfinite(x) else round(float(x), nd)


def _num(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([r[key] if r[key] != "" else np.nan for r in rows], dtype=np.float64)


def _summarise(rows, describe, space, seed, joint_set, calibration, wall, t_render, t_model, t_infer, t_metrics) -> dict[str, Any]:
    n = len(rows)
    kinds: dict[str, int] = {}
    for r in rows:
        if r["failure"]:
            kinds[r["failure"]] = kinds.get(r["failure"], 0) + 1
    return {
        "schema_version": 1,
        "model": describe,
        "n": n,
        "seed": seed,
        "space": space.names,
        "joint_set": joint_set,
        "calibrated": calibration is not None,
        "failures": {"total": sum(kinds.values()), "by_kind": kinds},
        "metrics": {
            "mpjpe_mm": _stat(_num(rows, "mpjpe_mm")),
            "pa_mpjpe_mm": _stat(_num(rows, "pa_mpjpe_mm")),
            "mpjpe_abs_mm": _stat(_num(rows, "mpjpe_abs_mm")),
            "pck@0.1": _stat(_num(rows, "pck")),
            "oks": _stat(_num(rows, "oks")),
        },
        "timing_s": {
            "wall": round(wall, 3),
            "render": round(t_render, 3),
            "model": round(t_model, 3),
            "inference": round(t_infer, 3),
            "metrics": round(t_metrics, 3),
            # everything but the model's own inference (render, transfer, metrics, I/O)
            "overhead_share": round(1.0 - t_infer / wall, 4) if wall > 0 else None,
        },
    }


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def evaluate_command(
    model: str = typer.Option(..., "--model", "-m", envvar="POSEEXAMINER_MODEL",
                              help="model spec: mediapipe, baseline, python:pkg.mod:factory, onnx:m.onnx, worker:NAME, cmd:\"...\", whitebox:..."),
    n: int = typer.Option(200, "--n", help="number of scenes"),
    seed: int = typer.Option(0, "--seed", help="seed of the scene sampler"),
    space: str = typer.Option("pose,camera", "--space", help="parameter groups or dimension names, comma-separated"),
    out: Path = typer.Option(Path("out/evaluate"), "--out", "-o", help="folder for evaluations.csv and summary.json"),
    overwrite: bool = typer.Option(False, "--overwrite", help="write into a non-empty --out folder"),
    batch_size: int = typer.Option(16, "--batch-size"),
    joint_set: str = typer.Option("common12", "--joint-set", help="joint set the metrics use"),
    calibrate_n: int = typer.Option(0, "--calibrate", help="estimate joint offsets on N easy scenes first (0: off)"),
    render_workers: int = typer.Option(1, "--render-workers", help="render processes that prefetch scenes (0: render in this process)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    renderer: str = typer.Option("pyrender", "--renderer", help="renderer of the RGB: pyrender or blender "
                                 "(Cycles; `examiner renderers install blender`)"),
) -> None:
    """Render N scenes of a parameter space, run a model on them, and write a per-sample table."""
    from rich.console import Console
    from rich.progress import Progress

    from examiner import console as out_layer

    check_evaluate_options(n, seed, batch_size, calibrate_n, render_workers)
    from simulator.renderer import RenderConfig, check_renderer

    render_config = RenderConfig(renderer=check_renderer(renderer)) if renderer != "pyrender" else None
    out_layer.check_out_dir(out, overwrite)
    console = Console(stderr=as_json)
    done = [0]

    def on_progress(k: int, total: int) -> None:
        done[0] = k
        bar.update(task, completed=k)

    try:
        with out_layer.removed_if_failed(out), Progress(console=console, transient=True) as bar:
            task = bar.add_task("evaluating", total=n)
            summary = evaluate(
                model, n=n, seed=seed, space=space, out=out, batch_size=batch_size, joint_set=joint_set,
                calibrate_n=calibrate_n, render_workers=render_workers, progress=on_progress,
                render_config=render_config,
            )
    except KeyboardInterrupt:
        raise out_layer.Interrupted(
            f"interrupted after {done[0]} of {n} scenes; nothing was written to {out} (the table is written at "
            "the end): run the same command again"
        ) from None
    errors = model_error_count(summary)
    if as_json:
        print(json.dumps(summary, indent=2))
    if errors:
        kinds = ", ".join(f"{k} {v}" for k, v in summary["failures"]["by_kind"].items() if k in MODEL_ERROR_KINDS)
        if errors == summary["n"]:
            raise TargetError(
                f"every one of the {errors} samples was a model error ({kinds}); the model does not work as "
                f"configured: check it with `examiner targets check {model}` (table in {out})"
            )
        out_layer.console.print(f"[yellow]warning:[/] {errors} of {summary['n']} samples were model errors ({kinds}); "
                                f"see the failure column of {out / 'evaluations.csv'}")
    if as_json:
        return
    m = summary["metrics"]

    def fmt(stat: dict[str, Any], unit: str = "", scale: float = 1.0) -> str:
        return "-" if stat["mean"] is None else f"{stat['mean'] * scale:.1f}{unit} (median {stat['median'] * scale:.1f})"

    console.print(f"[bold]{summary['model']['name']}[/bold] on {summary['n']} scenes (seed {seed}, space {space})")
    console.print(f"  MPJPE     {fmt(m['mpjpe_mm'], ' mm')}")
    console.print(f"  PA-MPJPE  {fmt(m['pa_mpjpe_mm'], ' mm')}")
    console.print(f"  PCK@0.1   {fmt(m['pck@0.1'], '%', 100)}")
    console.print(f"  OKS       {fmt(m['oks'], '', 1)}")
    f = summary["failures"]
    console.print(f"  model failures: {f['total']} {f['by_kind'] if f['total'] else ''}")
    t = summary["timing_s"]
    console.print(f"  time: {t['wall']:.1f} s (model {t['model']:.1f} s, render {t['render']:.1f} s)")
    console.print(f"  wrote {out / 'evaluations.csv'} and {out / 'summary.json'}")
