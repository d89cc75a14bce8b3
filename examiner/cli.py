"""`examiner` command line: a thin layer over library functions.

Every option also reads an environment variable (EXAMINER_<OPTION>). User errors print
one line; `-v` shows the traceback.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from examiner import console
from simulator.errors import PoseExaminerError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Find where human pose and shape estimators break, show it, and generate data to fix it.",
    context_settings={"auto_envvar_prefix": "EXAMINER"},
)


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="Show tracebacks and debug output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or info lines."),
) -> None:
    console.set_verbosity(verbose, quiet)


def _render_config(backend: str, backgrounds: Optional[str], body: str = "anny"):
    from simulator.render import RenderConfig

    return RenderConfig(gl_backend=backend, background_dir=backgrounds, body_model=body)


@app.command()
def render(
    params: str = typer.Option(..., "--params", help="Scene JSON (SceneParams)."),
    out: str = typer.Option(..., "--out", help="Output folder."),
    clamp: bool = typer.Option(False, "--clamp", help="Clip out-of-range values instead of failing."),
    backend: str = typer.Option("auto", "--gl", help="OpenGL backend: auto, egl, osmesa."),
    backgrounds: Optional[str] = typer.Option(None, "--backgrounds", help="Folder of background images."),
    json_out: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
) -> None:
    """Render one scene from a JSON file, with ground truth."""
    from simulator.batch import render_scene_file

    paths = render_scene_file(params, out, clamp=clamp, config=_render_config(backend, backgrounds))
    if json_out:
        console.emit_json(paths)
    else:
        console.info(f"wrote {paths['rgb']} and ground truth {paths['gt']}")


@app.command()
def sample(
    n: int = typer.Option(16, "--n", help="Number of scenes."),
    seed: int = typer.Option(0, "--seed"),
    space: str = typer.Option("pose,shape,camera", "--space", help="Parameter groups to sample."),
    out: str = typer.Option(..., "--out", help="Output folder."),
    size: int = typer.Option(256, "--size", help="Image width and height in pixels."),
    backend: str = typer.Option("auto", "--gl", help="OpenGL backend: auto, egl, osmesa."),
    backgrounds: Optional[str] = typer.Option(None, "--backgrounds", help="Folder of background images."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
) -> None:
    """Render random scenes with ground truth and a contact sheet."""
    from simulator.batch import sample_scenes

    with console.progress("rendering", total=n) as advance:
        result = sample_scenes(
            n, seed, space, out, config=_render_config(backend, backgrounds), image_size=size,
            on_progress=advance,
        )
    if json_out:
        console.emit_json(result)
    else:
        console.info(
            f"wrote {n} scenes to {result['out']} ({n / result['seconds']:.1f} scenes/s); "
            f"contact sheet {result['contact_sheet']}"
        )


@app.command("space")
def space_cmd(
    space: str = typer.Option("all", "--space", help="Groups or dimension names."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List the searchable dimensions with units and bounds."""
    from simulator.params import ParamSpace

    ps = ParamSpace.from_groups(space)
    if json_out:
        console.emit_json(ps.to_dict()["dimensions"])
        return
    from rich.table import Table

    table = Table("dimension", "low", "high", "unit", "description")
    for d in ps.dimensions:
        if d.choices:
            table.add_row(d.name, "", "", "choice", " | ".join(d.choices))
        else:
            table.add_row(d.name, d.format(d.low), d.format(d.high), d.unit, d.description)
    console.console.print(table)


@app.command()
def demo(
    out: str = typer.Option("demo_out", "--out", help="Output folder (replaced if it holds an earlier demo)."),
    seed: int = typer.Option(0, "--seed"),
    budget: int = typer.Option(600, "--budget", help="Evaluations."),
    workers: int = typer.Option(2, "--workers", help="Evaluation processes."),
) -> None:
    """The main job on the embedded default: examine the bundled baseline, write an HTML report."""
    from examiner.demo import run_demo

    report = run_demo(out, seed=seed, budget=budget, workers=workers, quiet=console._state["quiet"])
    console.info(f"open {report}")


@app.command("train-baseline")
def train_baseline_cmd(
    n: int = typer.Option(8000, "--n", help="Training scenes."),
    val_n: int = typer.Option(500, "--val-n", help="Held-out scenes."),
    epochs: int = typer.Option(30, "--epochs"),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers", help="Render processes."),
    out: str = typer.Option("assets/baseline", "--out", help="Folder for baseline.onnx, baseline.yaml, MODEL_CARD.md."),
) -> None:
    """Reproduce the bundled baseline network (render data, train, export, model card)."""
    from examiner.baseline import TrainConfig, train_baseline

    if n <= 0 or val_n <= 0 or epochs <= 0:
        raise PoseExaminerError("--n, --val-n and --epochs must be positive")
    card = train_baseline(
        TrainConfig(n=n, val_n=val_n, epochs=epochs, seed=seed, workers=workers), out, log=console.info
    )
    m = card["val_metrics"]
    console.info(f"wrote {out}: held-out MPJPE {m['mpjpe_mm']:.1f} mm, PA-MPJPE {m['pa_mpjpe_mm']:.1f} mm")


def _mount_subcommands() -> None:
    """Commands defined next to the library code they drive."""
    import importlib

    if getattr(app, "_mounted", False):
        return
    app._mounted = True
    targets = importlib.import_module("examiner.targets.cli")
    app.add_typer(targets.app, name="targets")
    app.add_typer(importlib.import_module("generators.cli").app, name="generate")
    search = importlib.import_module("examiner.search.cli")
    app.command("run", help="Search a model's failure regions (strategies: marl, random, cmaes, reinforce).")(
        search.run_command
    )
    rc = importlib.import_module("reports.cli")
    app.command("report", help="Write report.html + results.json for a run; --junit, --fail-on gates.")(rc.report_command)
    app.command("diff", help="Compare two runs' failure modes: fixed, still failing, new.")(rc.diff_command)
    app.command("recheck", help="Re-evaluate a run's failure modes on another model.")(rc.recheck_command)
    evaluate = importlib.import_module("examiner.evaluate")
    app.command("evaluate", help="Evaluate a model on random scenes; per-sample table and summary.")(
        evaluate.evaluate_command
    )


def main(argv: list[str] | None = None) -> int:
    _mount_subcommands()
    return console.run_app(app, argv)


if __name__ == "__main__":
    sys.exit(main())
