"""`examiner` command line: the root Typer app, a thin layer over library functions.

Commands are mounted here from their modules in `examiner.app` (run, report/diff/recheck,
generate, demo) and from `examiner.targets.cli`. Every option also reads an environment
variable (EXAMINER_<OPTION>). User errors print one line; `-v` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
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


RENDERER_HELP = "Renderer of the RGB: pyrender (default) or blender (Cycles; `examiner renderers install blender`)."


def _render_config(backend: str, backgrounds: Optional[str], body: str = "anny", renderer: str = "pyrender"):
    from pathlib import Path

    from simulator.renderer import RenderConfig, check_renderer

    check_renderer(renderer)

    if backgrounds is not None:
        folder = Path(backgrounds)
        if not folder.exists():
            raise PoseExaminerError(f"--backgrounds {folder} does not exist; give a folder of png/jpg images")
        if not folder.is_dir():
            raise PoseExaminerError(f"--backgrounds {folder} is a file; give the folder that holds the images")
        if not any(p.suffix.lower() in (".png", ".jpg", ".jpeg") for p in folder.iterdir()):
            raise PoseExaminerError(f"--backgrounds {folder} holds no png/jpg images; add some or drop the option")

    return RenderConfig(gl_backend=backend, background_dir=backgrounds, body_model=body, renderer=renderer)


@app.command()
def render(
    params: str = typer.Option(..., "--params", help="Scene JSON (SceneParams)."),
    out: str = typer.Option(..., "--out", help="Output folder."),
    clamp: bool = typer.Option(False, "--clamp", help="Clip out-of-range values instead of failing."),
    backend: str = typer.Option("auto", "--gl", help="OpenGL backend: auto, egl, osmesa."),
    backgrounds: Optional[str] = typer.Option(None, "--backgrounds", help="Folder of background images."),
    json_out: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out folder."),
    renderer: str = typer.Option("pyrender", "--renderer", help=RENDERER_HELP),
) -> None:
    """Render one scene from a JSON file, with ground truth."""
    from pathlib import Path

    from simulator.batch import render_scene_file

    from simulator.io import load_params
    from simulator.params import validate_params

    if Path(params).is_dir():
        raise PoseExaminerError(f"--params {params} is a folder; give the scene JSON file")
    validate_params(load_params(params), clamp=clamp)  # bad scenes fail before --out is touched
    config = _render_config(backend, backgrounds, renderer=renderer)
    console.check_out_dir(out, overwrite)
    with console.removed_if_failed(out):
        paths = render_scene_file(params, out, clamp=clamp, config=config)
    if json_out:
        console.emit_json(paths)
    else:
        console.info(f"wrote {paths['rgb']} and ground truth {paths['gt']}")


@app.command()
def sample(
    n: int = typer.Option(16, "--n", help="Number of scenes."),
    seed: int = typer.Option(0, "--seed"),
    space: str = typer.Option("pose,shape,camera", "--space", help="Parameter groups to sample; name=LOW:HIGH narrows one (see `examiner space`)."),
    out: str = typer.Option(..., "--out", help="Output folder."),
    size: int = typer.Option(256, "--size", help="Image width and height in pixels."),
    backend: str = typer.Option("auto", "--gl", help="OpenGL backend: auto, egl, osmesa."),
    backgrounds: Optional[str] = typer.Option(None, "--backgrounds", help="Folder of background images."),
    json_out: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out folder."),
    renderer: str = typer.Option("pyrender", "--renderer", help=RENDERER_HELP),
) -> None:
    """Render random scenes with ground truth and a contact sheet."""
    from simulator.batch import sample_scenes
    from simulator.params import ParamSpace, check_image_size

    if n <= 0:
        raise PoseExaminerError(f"--n must be positive, got {n}")
    if seed < 0:
        raise PoseExaminerError(f"--seed must be a non-negative integer, got {seed}")
    check_image_size(size)
    ParamSpace.from_groups(space)  # a bad --space fails before the folder exists
    config = _render_config(backend, backgrounds, renderer=renderer)
    console.check_out_dir(out, overwrite)
    done = [0]
    try:
        with console.removed_if_failed(out), console.progress("rendering", total=n) as advance:
            def on_progress(k: int) -> None:
                done[0] += k
                advance(k)

            result = sample_scenes(n, seed, space, out, config=config, image_size=size, on_progress=on_progress)
    except KeyboardInterrupt:
        raise console.Interrupted(
            f"interrupted after {done[0]} of {n} scenes (written to {out}); nothing to resume: run the same command "
            "again with --overwrite (the scenes are seeded, so the same ones come out)"
        ) from None
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
    budget: int = typer.Option(2000, "--budget", help="Evaluations."),
    workers: int = typer.Option(2, "--workers", help="Evaluation processes."),
) -> None:
    """The main job on the embedded default: examine the bundled baseline, write an HTML report."""
    from examiner.app.demo import run_demo

    report = run_demo(out, seed=seed, budget=budget, workers=workers, quiet=console._state["quiet"])
    _print_modes(report.parent)
    console.info(f"open {report}")


def _print_modes(run_dir: Path) -> None:
    """What the run found, in the terminal: the failure rule, the failing share of the
    proposals and each mode (`examiner run`'s lines)."""
    from examiner.app.run import print_factors, print_modes
    from examiner.search.reference import most_space_fails_warning
    from reports.rundata import load_run, run_stats

    run = load_run(run_dir)
    stats = run_stats(run)
    fr, space = stats["failure_rate"], stats.get("space_failure_rate")
    rule = (run.meta.get("threshold_rule") or {}).get("rule")
    console.info(f"failure: {run.metric} > {run.threshold:g}" + (f" ({rule})" if rule else ""), soft_wrap=True)
    rate = f"{fr['rate']:.1%} of {fr['n']} plausible search proposals fail; " if fr["rate"] is not None else ""
    if space:
        lo, hi = space["interval"]
        rate = (f"{space['rate']:.0%} [{lo:.0%}, {hi:.0%}] of {space['n']} scenes drawn uniformly from the space fail "
                f"(the search's proposals: {fr['rate']:.0%}); ")
    console.info(f"{rate}{len(run.modes)} failure mode{'s' if len(run.modes) != 1 else ''}, worst first:" if run.modes
                 else f"{rate}no failure mode", soft_wrap=True)
    warning = most_space_fails_warning(space["rate"], uniform=True) if space else None
    if warning:
        console.info(f"warning: {warning}", soft_wrap=True)
    print_modes(run_dir, lambda line: console.info(line, soft_wrap=True))
    print_factors(run_dir, lambda line: console.info(line, soft_wrap=True))


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
    from examiner.training.baseline import TrainConfig, train_baseline  # lazily: training is heavy

    if n <= 0 or val_n <= 0 or epochs <= 0:
        raise PoseExaminerError("--n, --val-n and --epochs must be positive")
    card = train_baseline(
        TrainConfig(n=n, val_n=val_n, epochs=epochs, seed=seed, workers=workers), out, log=console.info
    )
    m = card["val_metrics"]
    console.info(f"wrote {out}: held-out MPJPE {m['mpjpe_mm']:.1f} mm, PA-MPJPE {m['pa_mpjpe_mm']:.1f} mm")


runs_app = typer.Typer(no_args_is_help=True, help="Maintain run directories.")


@runs_app.command("repair")
def runs_repair(
    run_dir: str = typer.Argument(..., help="Run directory whose evaluations.jsonl has damaged lines."),
    json_out: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Drop the unparsable lines of a run's evaluation log (a backup is kept first)."""
    from examiner.store import repair_evaluations

    result = repair_evaluations(run_dir)
    if json_out:
        console.emit_json(result)
    elif not result["dropped"]:
        console.info(f"{run_dir}: all {result['kept']} records parse; nothing to repair")
    else:
        lines = ", ".join(map(str, result["dropped_lines"][:10])) + (" ..." if result["dropped"] > 10 else "")
        console.info(f"{run_dir}: dropped {result['dropped']} unparsable line(s) ({lines}), kept {result['kept']} "
                     f"records; the original is {result['backup']}")


def _mount_subcommands() -> None:
    """Commands defined in their own modules; plain imports, so readers and linters see them."""
    from examiner.app import finetune, generate, loop, peel, renderers, report, run
    from examiner.search.config import STRATEGIES
    from examiner.evaluate_cli import evaluate_command
    from examiner.targets import cli as targets_cli

    if getattr(app, "_mounted", False):
        return
    app._mounted = True
    app.add_typer(targets_cli.app, name="targets")
    app.add_typer(renderers.app, name="renderers")
    app.add_typer(runs_app, name="runs")
    app.add_typer(generate.app, name="generate")
    app.command("run", help=f"Search a model's failure regions (strategies: {', '.join(STRATEGIES)}).")(
        run.run_command
    )
    app.command("report", help="Write report.html + results.json for a run; --junit, --fail-on gates.")(
        report.report_command
    )
    app.command("diff", help="Compare two runs' failure modes: fixed, still failing, new.")(report.diff_command)
    app.command("recheck", help="Re-evaluate a run's failure modes on another model.")(report.recheck_command)
    app.command("finetune", help="Fine-tune a model on a run's failure modes, export it, recheck the modes.")(
        finetune.finetune_command
    )
    app.command("loop", help="Examine, fine-tune, re-examine for R rounds; one HTML page tells the story.")(
        loop.loop_command
    )
    app.command("peel", help="Examine, cut away what the failures need, examine the rest: a model's failures one "
                "after another; one HTML page lists them.")(peel.peel_command)
    app.command("evaluate", help="Evaluate a model on random scenes; per-sample table and summary.")(evaluate_command)


def main(argv: list[str] | None = None) -> int:
    _mount_subcommands()
    return console.run_app(app, argv)


if __name__ == "__main__":
    sys.exit(main())
