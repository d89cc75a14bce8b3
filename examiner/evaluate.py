"""`evaluate`: render n random scenes of a parameter space, run a model on them and write
``evaluations.csv`` (one row per sample) and ``summary.json``. Scoring is
``examiner.scoring``; the command line is ``examiner.evaluate_cli``.
"""

from __future__ import annotations

import csv
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from examiner.scoring import calibrate, reference_scenes, score_batch
from examiner.targets.base import TargetBatch, TargetError, TargetModel, checked_predict
from examiner.targets.calibration import JointCalibration
from examiner.targets.registry import load_target
from simulator.params import ParamSpace, SceneParams

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
                for key in ("mpjpe", "pa_mpjpe", "pa_mpjpe_scaled", "mpjpe_abs", "pve"):
                    row[f"{key}_mm"] = _round(getattr(scores, key)[i] * 1000.0)
                row["body_size_m"] = _round(scores.size[i], 4)
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
            "pa_mpjpe_scaled_mm": _stat(_num(rows, "pa_mpjpe_scaled_mm")),
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
