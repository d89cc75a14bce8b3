"""`examiner generate ...`: thin commands over `generators.engine.run_dataset`.

Mounted by `examiner.app.cli` as a Typer sub-app (`app`). Every option also reads an
environment variable (EXAMINER_GENERATE_<COMMAND>_<OPTION> through the root's prefix).
"""

from __future__ import annotations

import time
from typing import Optional

import typer

from examiner import console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Generate training data: dense correspondence, anatomical anomalies, failure-region fine-tuning sets.",
)

_WORKERS = typer.Option(1, "--workers", "-w", help="Local worker processes (one renderer each).")
_BACKEND = typer.Option("local", "--backend", help="local (processes) or ray (Ray actors; pip install poseexaminer[ray]).")
_RESUME = typer.Option(False, "--resume", help="Finish an interrupted dataset: keep complete shards, redo the rest.")
_SHARD = typer.Option(64, "--shard-size", help="Samples per shard (the unit of resume and of parallel work).")
_SEED = typer.Option(0, "--seed", help="Root seed; sample i uses SeedSequence(seed, spawn_key=(i,)).")
_SIZE = typer.Option(256, "--size", help="Image width and height in pixels.")
_JSON = typer.Option(False, "--json", help="Print a summary as JSON on stdout.")
_IMAGE_FORMAT = typer.Option("jpg", "--image-format", help="jpg or png.")
_GL = typer.Option("auto", "--gl", help="OpenGL backend: auto, egl, osmesa.")
_RENDERER = typer.Option("pyrender", "--renderer", help="RGB renderer: pyrender or blender (Cycles; `examiner renderers "
                         "install blender`); the annotations always come from pyrender at the same camera.")


def _run(kind: str, config, out: str, workers: int, backend: str, resume: bool, json_out: bool) -> dict:
    from generators.engine import run_dataset

    first: list[float] = []  # time and count at the first completed image (after start-up)
    done = [0]
    with console.progress(f"generate {kind}", total=config.n) as advance:

        def on_progress(k: int) -> None:
            done[0] += k
            now = time.perf_counter()
            if not first:
                first.extend((now, done[0]))
            dt = now - first[0]
            rate = (done[0] - first[1]) / dt if dt > 0 else 0.0
            advance(k, rate=f"{rate:.1f} img/s" if rate else "")

        result = run_dataset(kind, config, out, workers=workers, backend=backend, resume=resume, on_progress=on_progress)
    steady = (done[0] - first[1]) / (time.perf_counter() - first[0]) if first and done[0] > first[1] else None
    result["steady_images_per_second"] = round(steady, 2) if steady else None
    if json_out:
        console.emit_json(result)
    else:
        rate = result["rendered"] / result["seconds"] if result["seconds"] > 0 and result["rendered"] else 0.0
        speed = f"{rate:.1f} img/s with start-up" + (f", {steady:.1f} img/s steady" if steady else "")
        skipped = f"; {result['skipped']} kept from before" if result["skipped"] else ""
        console.info(f"wrote {result['rendered']} samples to {result['out']} ({speed}{skipped}); "
                     f"outputs: {', '.join(str(v) for k, v in result['outputs'].items() if isinstance(v, str))}")
    return result


@app.command()
def dense(
    n: int = typer.Option(100, "--n", help="Number of images."),
    out: str = typer.Option(..., "--out", help="Dataset directory."),
    space: str = typer.Option("pose,shape,camera,light,background", "--space", help="Parameter groups to sample; name=LOW:HIGH narrows one."),
    from_run: Optional[str] = typer.Option(None, "--from-run", help="Sample a search run's failure modes instead."),
    mode_share: float = typer.Option(1.0, "--mode-share", help="With --from-run: share of samples inside the modes."),
    points: int = typer.Option(2600, "--points", help="DensePose points per person (0 = every body pixel)."),
    size: int = _SIZE,
    seed: int = _SEED,
    shard_size: int = _SHARD,
    image_format: str = _IMAGE_FORMAT,
    gl: str = _GL,
    workers: int = _WORKERS,
    backend: str = _BACKEND,
    resume: bool = _RESUME,
    json_out: bool = _JSON,
    renderer: str = _RENDERER,
) -> None:
    """UltraPose-style dense correspondence (DensePose-COCO, IUV and vertex-index maps)."""
    from generators.dense import DenseConfig

    config = DenseConfig(n=n, seed=seed, shard_size=shard_size, size=size, points=points, space=space,
                         from_run=from_run, mode_share=mode_share, image_format=image_format, gl=gl,
                         renderer=renderer)
    _run("dense", config, out, workers, backend, resume, json_out)


@app.command()
def anomaly(
    n: int = typer.Option(100, "--n", help="Number of images."),
    out: str = typer.Option(..., "--out", help="Dataset directory."),
    classes: str = typer.Option("all", "--classes", help="Scenario kinds to cycle through (comma list) or all."),
    size: int = _SIZE,
    seed: int = _SEED,
    shard_size: int = _SHARD,
    val_every: int = typer.Option(10, "--val-every", help="Every k-th image goes to the val split (0 = none)."),
    image_format: str = _IMAGE_FORMAT,
    gl: str = _GL,
    workers: int = _WORKERS,
    backend: str = _BACKEND,
    resume: bool = _RESUME,
    json_out: bool = _JSON,
    renderer: str = _RENDERER,
) -> None:
    """AbHuman-style anatomical anomalies (18 classes; Ultralytics YOLO layout + COCO JSON)."""
    from generators.anomaly import AnomalyConfig

    config = AnomalyConfig(n=n, seed=seed, shard_size=shard_size, size=size, scenarios=classes,
                           val_every=val_every, image_format=image_format, gl=gl, renderer=renderer)
    _run("anomaly", config, out, workers, backend, resume, json_out)


@app.command()
def finetune(
    from_run: str = typer.Option(..., "--from-run", help="Search run directory (its failure modes are sampled)."),
    n: int = typer.Option(1000, "--n", help="Number of images."),
    out: str = typer.Option(..., "--out", help="Dataset directory."),
    base_share: float = typer.Option(0.2, "--base-share", help="Share of samples from the run's whole space."),
    mode_scenes: int = typer.Option(None, "--mode-scenes", help="Samples per failure mode instead of a base share: "
                                    "each mode gets about this many, the rest of --n comes from the whole space."),
    mode_region: str = typer.Option("box", "--mode-region", help="Where a mode's samples are drawn: box, or need "
                                    "(the box with the constraints that do not matter alone released)."),
    size: int = _SIZE,
    seed: int = _SEED,
    shard_size: int = _SHARD,
    image_format: str = _IMAGE_FORMAT,
    gl: str = _GL,
    workers: int = _WORKERS,
    backend: str = _BACKEND,
    resume: bool = _RESUME,
    json_out: bool = _JSON,
    renderer: str = _RENDERER,
) -> None:
    """Fine-tuning set from a run's failure regions (COCO keypoints, 3D joints, body parameters)."""
    from generators.finetune import FinetuneConfig

    if mode_scenes is not None:
        from pathlib import Path

        from examiner.app.finetune import check_mode_scenes, mode_scenes_share

        check_mode_scenes(mode_scenes)
        if (Path(from_run) / "modes.json").is_file():  # otherwise FinetuneConfig names the problem
            base_share = mode_scenes_share(from_run, n, mode_scenes)
    config = FinetuneConfig(n=n, seed=seed, shard_size=shard_size, size=size, from_run=from_run,
                            base_share=base_share, image_format=image_format, gl=gl, renderer=renderer,
                            mode_region=mode_region)
    _run("finetune", config, out, workers, backend, resume, json_out)


def main(argv: list[str] | None = None) -> int:
    """Run this sub-app alone (`python -m examiner.app.generate dense ...`), with the main
    CLI's one-line errors."""
    return console.run_app(app, argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
