"""`examiner run`: the Typer command over `run_search`, then the report ("run, then report").

Mounted by `examiner.app.cli`; `python -m examiner.app.run run ...` runs it standalone (used
by the kill -9 resume test).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import typer

from examiner.search.config import STRATEGIES, SearchConfig
from examiner.search.errors import ResumeError, SearchConfigError
from examiner.search.factory import EvaluatorFactory
from examiner.search.reference import (children_metric_note, most_space_fails_warning, resolve_threshold,
                                       uses_relative_threshold)
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
    space: Optional[str] = typer.Option(None, "--space", help="Parameter groups to search, e.g. pose,shape,camera; name=LOW:HIGH narrows a dimension (camera.truncation=0:0.19), name=VALUE fixes it, name=a|b keeps some choices."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Evaluations in total (region growing included)."),
    agents: Optional[int] = typer.Option(None, "--agents", help="Number of agents (default 8)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed; the same seed gives the same evaluation log."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help=" | ".join(STRATEGIES) + "."),
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
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty --out folder (a run already in it is replaced)."),
    renderer: str = typer.Option("pyrender", "--renderer", help="Renderer of the scenes: pyrender or blender (Cycles; "
                                 "`examiner renderers install blender`); stored in the model spec as sim.renderer."),
    joints: str = typer.Option("all", "--joints", help="Joints the metric counts: all, in_frame (inside the image) or "
                               "visible (inside it and not hidden): find where the model misplaces what it can see; "
                               "stored in the model spec as sim.joints."),
) -> None:
    """Search a parameter space for failure modes of a target model."""
    from examiner import console
    from examiner.console import Interrupted, check_out_dir, removed_if_failed
    from examiner.search.backends import make_evaluator
    from examiner.search.factory import safe_from_a_run
    from examiner.search.progress import RichProgress
    from examiner.search.runner import run_search
    from examiner.store import RunStore, StoreError

    if resume is not None and config is not None:
        raise SearchConfigError("--resume uses the run's own config; drop --config")
    if resume is None and out is None:
        raise SearchConfigError("say where the run goes with --out RUN_DIR (or continue one with --resume RUN_DIR)")
    if resume is not None and out is not None and out.resolve() != resume.resolve():
        raise SearchConfigError(f"a resumed run continues in its own folder {resume}; drop --out {out}")
    if resume is not None and overwrite:
        raise SearchConfigError("--overwrite starts over; it cannot be combined with --resume")
    if resume is None:
        check_out_dir(out, overwrite)  # type: ignore[arg-type]
    cfg, meta = _load_config(config, resume)
    overrides = {k: v for k, v in {
        "budget": budget, "agents": agents, "seed": seed, "strategy": strategy, "space": space,
        "backend": backend, "workers": workers, "threshold": threshold, "metric": metric,
    }.items() if v is not None}
    try:
        cfg = dataclasses.replace(cfg, **overrides).validate()
    except TypeError as e:
        raise SearchConfigError(f"bad option value ({e})") from None
    if meta is not None:
        stored = meta.get("model_spec")
        if model and stored and model != stored:
            raise SearchConfigError(
                f"run at {resume} examines {stored!r}, not {model!r}; a resume must use the run's own model "
                "(start a new run with --out for another model)"
            )
        if not model and stored and not safe_from_a_run(stored):
            raise SearchConfigError(
                f"run at {resume} names the model {stored!r} in meta.json; a command, worker, module or file "
                f"named by a run directory is never started on its own: repeat it with --model '{stored}' if you "
                "trust it"
            )
        model = model or stored
        try:
            param_space = ParamSpace.from_dict(meta["space"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SearchConfigError(f"{resume}/meta.json has no usable parameter space ({e}); the run is damaged") from None
        out_dir = resume
    else:
        param_space = ParamSpace.from_groups(cfg.space)
        out_dir = out
    if not model:
        raise SearchConfigError("name the target with --model (e.g. analytic:planted)")
    if renderer != "pyrender":
        from examiner.search.sim_evaluator import with_renderer

        model = with_renderer(model, renderer)
    if joints != "all":
        from examiner.search.sim_evaluator import with_sim_option

        model = with_sim_option(model, "joints", joints, "--joints")
    factory = EvaluatorFactory(model, param_space.to_dict(), cfg.failure_threshold, cfg.seed, cfg.metric)
    probe = factory()  # fail fast, in this process, on a bad spec
    threshold_rule = None
    if meta is None and uses_relative_threshold(model, cfg.metric) and cfg.threshold is None:
        if not quiet and not json_out and not console._state["quiet"]:
            typer.echo("calibrating the failure threshold on easy reference scenes ...", err=True)
        cfg, threshold_rule = resolve_threshold(cfg, model, param_space, probe)
        factory = EvaluatorFactory(model, param_space.to_dict(), cfg.failure_threshold, cfg.seed, cfg.metric)
    close = getattr(probe, "close", None)
    if callable(close):
        close()
    if resume is None and overwrite:
        _clear_previous_run(out_dir)
    evaluator = make_evaluator(factory, cfg.backend, cfg.workers)
    try:
        with removed_if_failed(out_dir):
            try:
                with RichProgress(cfg.budget, disable=quiet or json_out or console._state["quiet"]) as show:
                    result = run_search(cfg, evaluator, param_space, out_dir, resume=resume is not None,
                                        progress=show, model_spec=model, threshold_rule=threshold_rule)
            except Exception:
                if resume is None:
                    _discard_empty_run(out_dir)  # a run that failed before its first evaluation
                raise
    except KeyboardInterrupt:
        try:
            done = RunStore.open(out_dir).n_evaluations
        except (StoreError, OSError):
            done = None
        if done is None:
            raise Interrupted(f"interrupted before the run in {out_dir} started; run the command again") from None
        raise Interrupted(
            f"interrupted after {done} of {cfg.budget} evaluations (logged in {out_dir}); continue with "
            f"`examiner run --resume {out_dir}`" + (f" --model '{model}'" if not safe_from_a_run(model) else "")
        ) from None
    report_paths = None
    if report:
        from reports import write_report

        report_paths = write_report(result.out_dir)
    factors = _read_summary(result.out_dir).get("factors") or {}
    ref = factors.get("reference") or {}
    summary = {
        "out": str(result.out_dir), "evaluations": result.evaluations, "budget": result.budget,
        "report": str(report_paths.html) if report_paths else None,
        "failures": result.failures, "modes": len(result.modes), "resumed_from": result.resumed_from,
        "elapsed_s": round(result.elapsed_s, 3),
        "threshold": cfg.failure_threshold,
        "search_failure_rate": result.search_failure_rate,
        "space_failure_rate": ref.get("rate"),
        "failure_modes": [
            {"id": m["id"], "rate": m["verified"]["rate"], "interval": m["verified"]["interval"],
             "confirmed": m.get("confirmed"), "constrained": m["constrained"]} for m in result.modes
        ],
        "failure_factors": factors.get("factors"),
    }
    if json_out:
        sys.stdout.write(json.dumps(summary, indent=1) + "\n")
        return
    typer.echo(f"{result.evaluations} evaluations, {result.failures} failing, {len(result.modes)} failure modes -> {result.out_dir}", err=True)
    typer.echo(f"failure: {cfg.metric} > {cfg.failure_threshold:g}"
               + (f" ({threshold_rule['rule']}; reference median {threshold_rule['reference_median']})"
                  if threshold_rule else ""), err=True)
    warning = (most_space_fails_warning(ref["rate"], uniform=True) if ref.get("n")
               else most_space_fails_warning(result.search_failure_rate))
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    note = children_metric_note(cfg.metric, param_space.names)
    if note:
        typer.echo(f"note: {note}", err=True)
    print_modes(result.out_dir, lambda line: typer.echo(line, err=True))
    for line in factor_lines(factors):
        typer.echo(line, err=True)
    if report_paths:
        typer.echo(f"report: {report_paths.html}", err=True)


def mode_line(m: dict, space: ParamSpace, show: int = 5, standard: float = 0.8) -> str:
    """One mode (a `reports.rundata` mode: rank, verified, confirmed, constrained) for the
    terminal: its failure rate (confirmed after the search where there is one, then the
    verification round's) and its constrained dimensions in physical units, what the
    failure needs first where the run tested each alone, else the narrowest (the report
    has them all)."""
    from reports.views import box_text

    v, c = m["verified"], m.get("confirmed") or {}
    if c.get("rate") is not None:
        clo, chi = c["interval"]
        rate = (f"fails {c['rate']:.0%} [{clo:.0%}, {chi:.0%}] of {c['n']} fresh samples after the search "
                f"(verification {v['rate']:.0%})" + (f"; below the {standard:.0%} standard: often, not reliably"
                                                     if c["rate"] < standard else ""))
    else:
        lo, hi = v["interval"]
        rate = f"fails {v['rate']:.0%} [{lo:.0%}, {hi:.0%}]"
    from reports.report import simplified_text

    simplified = simplified_text(m)
    if simplified:
        rate += f"; {simplified}"
    from examiner.search.importance import importance_order

    dims = {d.name: d for d in space.dimensions}
    ranked = importance_order(m)
    order = sorted((m.get("constrained") or {}).items(),
                   key=lambda kv: (ranked[kv[0]], 0.0) if kv[0] in ranked else (len(ranked), kv[1][1] - kv[1][0]))
    parts = [f"{k} {box_text(dims[k], a, b)}" if k in dims else f"{k} in [{a:+.2f}, {b:+.2f}]" for k, (a, b) in order[:show]]
    more = f" (+{len(order) - show} more)" if len(order) > show else ""
    return f"  mode {m['rank']}: {rate}\n      " + ("; ".join(parts) + more if parts else "the whole space") + _matters_line(m, space)


def _pose_words(m: dict, row: dict, space: ParamSpace | None) -> str:
    """"; the box's poses against outside it: left hip flexion -23°, ..." for a pose dimension (the
    report's seed, 0), '' otherwise."""
    from examiner.search.importance import pose_change, pose_change_text

    if space is None or row["dimension"] not in space.names:
        return ""
    d = space.names.index(row["dimension"])
    text = pose_change_text(pose_change(space, np.asarray(m["lo"]), np.asarray(m["hi"]), d, 0, int(m["id"])))
    return f"; the box's poses against outside it: {text}" if text else ""


def _matters_line(m: dict, space: ParamSpace | None = None) -> str:
    """The constraints that matter alone (examiner/search/importance.py), "" without a test."""
    imp = m.get("importance")
    if not imp or not imp.get("constraints"):
        return ""
    rows = imp["constraints"]
    matters = [r for r in rows if r["matters"]]
    if not matters:
        return (f"\n      no single constraint matters alone ({len(rows)} tested on {imp['samples']} fresh samples "
                f"outside each)")
    said = ", ".join(f"{r['dimension']} ({r['k']} of {r['n']} fail outside it{_pose_words(m, r, space)})"
                     for r in matters)
    rest = len(rows) - len(matters)
    return f"\n      what matters alone: {said}" + (f"; the other {rest} each make no clear difference" if rest else "")


def print_modes(run_dir: Path, echo: Callable[[str], None]) -> None:
    """Each mode of a finished run, worst first and numbered by rank as in the report: its
    rate (`mode_line`), its words (from results.json, when the report was written) and its
    narrowest constrained dimensions."""
    from reports.rundata import load_run, min_failure_rate

    run = load_run(run_dir)
    results = Path(run_dir) / "results.json"
    described = json.loads(results.read_text())["modes"] if results.is_file() else []
    # Words only where posecodes stand out (otherwise the description is the dimensions again).
    words = {m["id"]: m.get("description") for m in described if m.get("posecodes")}
    # ... and the described properties the constraint test found the failure does without.
    unneeded = {m["id"]: ((m.get("importance") or {}).get("description_check") or []) for m in described}
    for m in run.modes:
        line = mode_line(m, run.space, standard=min_failure_rate(run))
        if words.get(m["id"]):
            said = words[m["id"]]
            if unneeded.get(m["id"]):
                said += " (not needed alone: " + "; ".join(
                    ("" if u["phrase"] == said else f"{u['phrase']}, ")
                    + f"{u['k']} of {u['n']} still fail without {u['dimension']}" for u in unneeded[m["id"]]) + ")"
            line = line.replace("\n", f"\n      {said}\n", 1)
        echo(line)
    from reports.report import needs_lines, needs_summary

    summary = needs_summary(run)
    lines = needs_lines(summary)
    if lines:
        echo("what the failures need (each constraint tested alone; modes needing the same are one failure):")
        for text in lines:
            echo(f"  {text}")
    rest = (summary or {}).get("rest")
    if rest:
        echo(f"what else fails: the space without what mode{'s' if len(rest['cut']) > 1 else ''} "
             f"{', '.join(map(str, rest['cut']))} need{'' if len(rest['cut']) > 1 else 's'} "
             f"({', '.join(rest['entries'])}):\n  {rest['command']}")


def _read_summary(run_dir: Path) -> dict:
    from examiner.store import SUMMARY_FILE

    p = Path(run_dir) / SUMMARY_FILE
    return json.loads(p.read_text()) if p.is_file() else {}


def factor_lines(factors: dict | None) -> list[str]:
    """The failure factors of a run's summary (examiner.search.factors) for the terminal."""
    if not factors or not factors.get("factors"):
        return []
    ref = factors["reference"]
    lo, hi = ref["interval"]
    out = [f"failure factors (each tested on {factors['samples']} fresh samples against {ref['n']} uniform ones, "
           f"which fail {ref['rate']:.0%} [{lo:.0%}, {hi:.0%}]; {factors['test']}):"]
    for f in factors["factors"]:
        t = f["fresh"]
        if t["rate"] is None:
            out.append(f"  {f['label']}: no usable fresh sample")
            continue
        a, b = t["interval"]
        ratio = f"{f['rate_ratio']:.1f}x, " if f.get("rate_ratio") else ""
        verdict = "confirmed" if f["confirmed"] else "not confirmed"
        out.append(f"  {f['label']}: fails {t['rate']:.0%} [{a:.0%}, {b:.0%}] of {t['n']} ({ratio}p = {f['p_adjusted']:.2g}, {verdict})")
        if (f.get("extended") or {}).get("steps"):
            out.append(f"    {reach_text(f['extended'])}")
    return out


def reach_text(ext: dict) -> str:
    """How far inwards a factor at an end of a dimension still fails more often
    (examiner.search.factors.extend), slice by slice."""
    steps = []
    for s in ext["steps"]:
        t, r = s["fresh"], s["rest"]
        rates = (f"{t['rate']:.0%} vs {r['rate']:.0%} of the scenes outside"
                 if t["rate"] is not None and r["rate"] is not None else "no usable sample")
        steps.append(f"{s['label']} {rates} (p = {s['p_value']:.2g}{'' if s['confirmed'] else ', stops'})")
    grew = any(s["confirmed"] for s in ext["steps"])
    return (f"fails more often as far as {ext['label']}: " if grew else "reaches no further in: ") + "; ".join(steps)


def print_factors(run_dir: Path, echo: Callable[[str], None]) -> None:
    for line in factor_lines(_read_summary(run_dir).get("factors")):
        echo(line)


def _clear_previous_run(out: Path) -> None:
    """--overwrite: remove the run files a previous run left in `out` (other files stay,
    report.html / results.json are rewritten at the end)."""
    from examiner.store import CHECKPOINT_FILE, EVAL_FILE, META_FILE, MODES_FILE, SUMMARY_FILE

    for name in (META_FILE, EVAL_FILE, MODES_FILE, CHECKPOINT_FILE, SUMMARY_FILE):
        p = Path(out) / name
        if p.is_file():
            p.unlink()


def _discard_empty_run(out: Path) -> None:
    from examiner.store import EVAL_FILE

    log = Path(out) / EVAL_FILE
    if log.is_file() and log.stat().st_size == 0:
        _clear_previous_run(out)


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
