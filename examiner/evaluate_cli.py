"""`examiner evaluate`: the command line of `examiner.evaluate.evaluate` (mounted by
``examiner.app.cli``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from examiner.evaluate import MODEL_ERROR_KINDS, check_evaluate_options, evaluate, model_error_count
from examiner.targets.base import TargetError


def evaluate_command(
    model: str = typer.Option(..., "--model", "-m", envvar="POSEEXAMINER_MODEL",
                              help="model spec: mediapipe, baseline, python:pkg.mod:factory, onnx:m.onnx, worker:NAME, cmd:\"...\", whitebox:..."),
    n: int = typer.Option(200, "--n", help="number of scenes"),
    seed: int = typer.Option(0, "--seed", help="seed of the scene sampler"),
    space: str = typer.Option("pose,camera", "--space", help="parameter groups or dimension names, comma-separated; name=LOW:HIGH narrows one"),
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
    if "pa_mpjpe_scaled_mm" in m:
        console.print(f"  PA-MPJPE  {fmt(m['pa_mpjpe_scaled_mm'], ' mm')} at an adult's body size (pa_mpjpe_scaled)")
    console.print(f"  PCK@0.1   {fmt(m['pck@0.1'], '%', 100)}")
    console.print(f"  OKS       {fmt(m['oks'], '', 1)}")
    f = summary["failures"]
    console.print(f"  model failures: {f['total']} {f['by_kind'] if f['total'] else ''}")
    t = summary["timing_s"]
    console.print(f"  time: {t['wall']:.1f} s (model {t['model']:.1f} s, render {t['render']:.1f} s)")
    console.print(f"  wrote {out / 'evaluations.csv'} and {out / 'summary.json'}")
