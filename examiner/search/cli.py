"""`examiner run`: the Typer command function over `run_search`.

Mount it with `app.command("run")(run_command)`; `python -m examiner.search.cli run ...`
runs it standalone (used by the kill -9 resume test).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from examiner.search.config import SearchConfig
from examiner.search.errors import ResumeError, SearchConfigError
from examiner.search.evaluator import EvaluatorFactory, build_evaluator  # noqa: F401  (re-exported)
from examiner.search.reference import most_space_fails_warning, resolve_threshold, uses_relative_threshold
from simulator.params import ParamSpace


def _load_config(config_path: Optional[Path], resume: Optional[Path]) -> tuple[SearchConfig, dict | None]:
    if resume is not None:
        from examiner.store import RunStore, StoreError

        try:
            store = RunStore.open(resume)
        except StoreError as e:
            raise ResumeError(str(e)) from None
        meta = store.metadata
        return SearchConfig.from_dict(meta["config"], source=f"{resume}/meta.json"), meta
    if config_path is not None:
        return SearchConfig.from_yaml(config_path), None
    return SearchConfig(), None


def run_command(
    model: Optional[str] = typer.Option(None, "--model", help="Target spec, e.g. analytic:planted."),
    space: Optional[str] = typer.Option(None, "--space", help="Parameter groups to search, e.g. pose,shape,camera."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Evaluations in total (region growing included)."),
    agents: Optional[int] = typer.Option(None, "--agents", help="Number of agents (default 8)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed; the same seed gives the same evaluation log."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="marl | random | cmaes | reinforce."),
    out: Optional[Path] = typer.Option(None, "--out", help="New run directory."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Resume the run in this directory."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with SearchConfig fields."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Evaluation workers: local | ray."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parallel evaluation workers."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Failure threshold in the metric's unit."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Failure metric (default pa_mpjpe)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html and results.json at the end."),
) -> None:
    """Search a parameter space for failure modes of a target model."""
    from examiner.search.backends import make_evaluator
    from examiner.search.progress import RichProgress
    from examiner.search.runner import run_search

    if resume is not None and config is not None:
        raise SearchConfigError("--resume uses the run's own config; drop --config")
    if resume is None and out is None:
        raise SearchConfigError("say where the run goes with --out RUN_DIR (or continue one with --resume RUN_DIR)")
    cfg, meta = _load_config(config, resume)
    overrides = {k: v for k, v in {
        "budget": budget, "agents": agents, "seed": seed, "strategy": strategy, "space": space,
        "backend": backend, "workers": workers, "threshold": threshold, "metric": metric,
    }.items() if v is not None}
    cfg = dataclasses.replace(cfg, **overrides).validate()
    if meta is not None:
        model = model or meta.get("model_spec")
        param_space = ParamSpace.from_dict(meta["space"])
        out_dir = resume
    else:
        param_space = ParamSpace.from_groups(cfg.space)
        out_dir = out
    if not model:
        raise SearchConfigError("name the target with --model (e.g. analytic:planted)")
    factory = EvaluatorFactory(model, param_space.to_dict(), cfg.failure_threshold, cfg.seed)
    probe = factory()  # fail fast, in this process, on a bad spec
    threshold_rule = None
    if meta is None and uses_relative_threshold(model, cfg.metric) and cfg.threshold is None:
        if not quiet and not json_out:
            typer.echo("calibrating the failure threshold on easy reference scenes ...", err=True)
        cfg, threshold_rule = resolve_threshold(cfg, model, param_space, probe)
        factory = EvaluatorFactory(model, param_space.to_dict(), cfg.failure_threshold, cfg.seed)
    close = getattr(probe, "close", None)
    if callable(close):
        close()
    evaluator = make_evaluator(factory, cfg.backend, cfg.workers)
    with RichProgress(cfg.budget, disable=quiet or json_out) as show:
        result = run_search(cfg, evaluator, param_space, out_dir, resume=resume is not None, progress=show,
                            model_spec=model, threshold_rule=threshold_rule)
    report_paths = None
    if report:
        from reports import write_report

        report_paths = write_report(result.out_dir)
    summary = {
        "out": str(result.out_dir), "evaluations": result.evaluations, "budget": result.budget,
        "report": str(report_paths.html) if report_paths else None,
        "failures": result.failures, "modes": len(result.modes), "resumed_from": result.resumed_from,
        "elapsed_s": round(result.elapsed_s, 3),
        "threshold": cfg.failure_threshold,
        "search_failure_rate": result.search_failure_rate,
        "failure_modes": [
            {"id": m["id"], "rate": m["verified"]["rate"], "interval": m["verified"]["interval"],
             "constrained": m["constrained"]} for m in result.modes
        ],
    }
    if json_out:
        sys.stdout.write(json.dumps(summary, indent=1) + "\n")
        return
    typer.echo(f"{result.evaluations} evaluations, {result.failures} failing, {len(result.modes)} failure modes -> {result.out_dir}", err=True)
    typer.echo(f"failure: {cfg.metric} > {cfg.failure_threshold:g}"
               + (f" ({threshold_rule['rule']}; reference median {threshold_rule['reference_median']})"
                  if threshold_rule else ""), err=True)
    warning = most_space_fails_warning(result.search_failure_rate)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    for m in summary["failure_modes"]:
        dims = ", ".join(f"{k} in [{lo:+.2f}, {hi:+.2f}]" for k, (lo, hi) in m["constrained"].items())
        lo, hi = m["interval"]
        typer.echo(f"  mode {m['id']}: {m['rate']:.0%} fail [{lo:.0%}, {hi:.0%}]  {dims}", err=True)
    if report_paths:
        typer.echo(f"report: {report_paths.html}", err=True)


app = typer.Typer(add_completion=False, no_args_is_help=True, help="PoseExaminer failure search.")
app.command("run")(run_command)


@app.callback()
def _root() -> None:
    """PoseExaminer failure search."""


def main(argv: list[str] | None = None) -> int:
    """Run this sub-app alone, with the main CLI's exit codes and one-line errors."""
    from examiner.console import run_app

    return run_app(app, argv)


if __name__ == "__main__":
    sys.exit(main())
