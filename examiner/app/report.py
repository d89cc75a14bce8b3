"""`examiner report`, `examiner diff` and `examiner recheck`: Typer commands over `reports`,
and `recheck_run`, which composes the recheck (`examiner.recheck` runs the models,
`reports.compare` renders the comparison). Mounted by `examiner.app.cli`.

Exit status: 0 fine; 1 a --fail-on rule tripped (one line on stderr naming it); 2 a user
error such as a bad rule or run directory (raised as PoseExaminerError, printed as one
line by examiner.app.cli.main).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer

from reports.gating import COMPARE_QUANTITIES, REPORT_QUANTITIES, evaluate_rules, failure_line, parse_rules

FAIL_ON_HELP = "Exit with status 1 when this rule holds, e.g. 'modes>0', 'failure_rate>5%'. Repeatable. Quantities: "


def _console():
    from examiner import console

    return console


def recheck_run(
    run_a: str | Path,
    model_spec: str,
    samples: int = 40,
    probe: int = 200,
    seed: int = 0,
    fixed_below: float = 0.1,
    search_budget: int = 0,
    search_out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    model_a: str | None = None,
):
    """Re-evaluate run A's failure modes on `model_spec` and compare: fixed, still failing,
    new (`reports.compare.Comparison`).

    samples: fresh uniform samples per mode box; probe: uniform samples over the whole
    space looking for new failures (0 = none); search_budget > 0 runs a full search on
    the new model into `search_out` with run A's configuration and diffs it with A.
    model_a: run A's model for the probe (see `examiner.recheck.recheck_modes`)."""
    from examiner.recheck import check_recheck_options, recheck_modes, search_model
    from reports.compare import diff_runs, recheck_comparison
    from reports.rundata import load_run

    check_recheck_options(samples, probe, seed, search_budget, search_out)
    a = load_run(run_a)
    result = recheck_modes(a, model_spec, samples=samples, probe=probe, seed=seed, progress=progress, model_a=model_a)
    new: list[dict] = []
    notes: list[str] = []
    if search_budget > 0:
        out = search_model(a, model_spec, search_budget, search_out, progress)  # type: ignore[arg-type]
        new = diff_runs(a.root, out).new
        notes.append(f"new modes come from a {search_budget}-evaluation search of {model_spec} in {out}")
    return recheck_comparison(a, result, new, notes, fixed_below=fixed_below)


def _check_out_file(out: Optional[Path], what: str = "--out") -> None:
    """Fail before any work when an output file path is a folder."""
    from reports.errors import ReportError

    if out is not None and out.is_dir():
        name = "junit.xml" if what == "--junit" else "comparison.json"
        raise ReportError(f"{what} {out} is a folder; give a file path, e.g. {out / name}")


def _exit_on_gates(line: Optional[str]) -> None:
    if line:
        _console().error(line)
        raise SystemExit(1)


def report_command(
    run_dir: Path = typer.Argument(..., help="Run directory (from `examiner run --out`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.html and results.json (default: the run directory)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML here (one test case per failure mode and per rule)."),
    fail_on: Optional[List[str]] = typer.Option(None, "--fail-on", help=FAIL_ON_HELP + ", ".join(REPORT_QUANTITIES)),
    no_images: bool = typer.Option(False, "--no-images", help="Do not render example images (faster; no OpenGL needed)."),
    json_out: bool = typer.Option(False, "--json", help="Print the written paths and gate results as JSON on stdout."),
) -> None:
    """Write a self-contained HTML report, results.json and optionally JUnit for a run."""
    from reports.report import write_report

    parse_rules(fail_on)  # a typo fails before any work
    _check_out_file(junit, "--junit")
    if out is not None and out.exists() and not out.is_dir():
        from reports.errors import ReportError

        raise ReportError(f"--out {out} is a file; give a folder for report.html and results.json")
    console = _console()
    with console.console.status("writing report") if not json_out else _null():
        paths = write_report(run_dir, out_dir=out, junit=junit, fail_on=fail_on or (), images=not no_images)
    if json_out:
        console.emit_json(paths.as_dict())
    else:
        size = paths.html.stat().st_size / 1e6
        console.info(f"wrote {paths.html} ({size:.1f} MB) and {paths.results}" + (f"; JUnit {paths.junit}" if paths.junit else ""))
    _exit_on_gates(paths.gate_failure)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _print_comparison(cmp, json_out: bool) -> None:
    console = _console()
    if json_out:
        console.emit_json(cmp.to_dict())
        return
    from rich.table import Table

    colours = {"still_failing": "red", "improved": "yellow", "fixed": "green", "not_found": "cyan"}
    table = Table("mode", "region (run A)", "A fails", "B fails", "status", title=f"{cmp.kind}: {cmp.a} -> {cmp.b}")
    for m in cmp.modes:
        b = "n/a" if m.rate_b is None else f"{m.rate_b:.0%} ({m.k_b}/{m.n_b})"
        table.add_row(str(m.rank), m.region, f"{m.rate_a:.0%}", b,
                      f"[{colours.get(m.status, 'white')}]{m.status.replace('_', ' ')}[/]")
    console.console.print(table)
    for n in cmp.new:
        console.console.print(f"[red]new mode[/] {n['rank']}: fails {n['rate']:.0%}  {n['region']}")
    if cmp.probe:
        p = cmp.probe
        against = "that pass on run A's model" if p["compared_with_a"] else "outside run A's modes"
        console.console.print(f"probe: {p['new_failures']} of {p['n']} uniform samples fail on the new model {against}")
    for note in cmp.notes:
        console.console.print(f"[dim]note: {note}[/]")
    c = cmp.counts()
    console.info(f"{c['still_failing']} still failing, {c['improved']} improved, {c['fixed']} fixed"
                 + (f", {c['not_found']} not found" if c["not_found"] else "") + f", {c['new']} new")


def _finish_comparison(cmp, rules, json_out: bool, out: Optional[Path], junit: Optional[Path]) -> None:
    from examiner.store import dumps
    from reports.junit import junit_xml, write_junit

    gates = evaluate_rules(rules, {k: float(v) for k, v in cmp.counts().items()})
    data = cmp.to_dict()
    data["gates"] = [{"rule": g.rule.text, "value": g.value, "tripped": g.tripped} for g in gates]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(dumps(data, indent=1))
    if junit is not None:
        cases = []
        for m in cmp.modes:
            cases.append({
                "title": f"mode {m.rank}: {m.region}"[:200],
                "message": f"still fails on {cmp.b}: {m.rate_b:.0%} of {m.n_b} samples" if m.rate_b is not None else "",
                "details": m.evidence,
                "passed": m.status != "still_failing",
            })
        for n in cmp.new:
            cases.append({"title": f"new mode {n['rank']}: {n['region']}"[:200], "message": f"new failure mode, fails {n['rate']:.0%}",
                          "details": n["region"]})
        if cmp.probe and cmp.probe["new_failures"]:
            p = cmp.probe
            cases.append({"title": "probe for new failures", "message": f"{p['new_failures']} of {p['n']} uniform samples newly fail",
                          "details": json.dumps(p["examples"])})
        write_junit(junit, junit_xml(f"poseexaminer-{cmp.kind}", cases, gates))
    _print_comparison(cmp, json_out)
    _exit_on_gates(failure_line(gates))


def diff_command(
    run_a: Path = typer.Argument(..., help="The earlier run (e.g. the old checkpoint)."),
    run_b: Path = typer.Argument(..., help="The later run over the same space."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the comparison as JSON to this file."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML (a failing case per mode still failing or new)."),
    fail_on: Optional[List[str]] = typer.Option(None, "--fail-on", help=FAIL_ON_HELP + ", ".join(COMPARE_QUANTITIES)),
    overlap: float = typer.Option(0.25, "--overlap", help="Box overlap (of the smaller box) at which two modes are the same."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON on stdout."),
) -> None:
    """Compare two runs: which of A's failure modes are fixed, still failing, or new in B."""
    from reports.compare import diff_runs

    rules = parse_rules(fail_on, COMPARE_QUANTITIES)
    _check_out_file(out)
    _check_out_file(junit, "--junit")
    _finish_comparison(diff_runs(run_a, run_b, overlap=overlap), rules, json_out, out, junit)


def recheck_command(
    run_a: Path = typer.Argument(..., help="Run whose failure modes to re-test."),
    model: str = typer.Option(..., "--model", help="The model to test them on (a spec, as for `examiner run`)."),
    model_a: Optional[str] = typer.Option(
        None, "--model-a",
        help="Run A's model, to tell new failures from old ones in the probe. Built-in kinds named by run A "
             "(analytic, whitebox, baseline, mediapipe) are used without it; a cmd/worker/python/onnx model "
             "named inside a run is never started unless given here."),
    samples: int = typer.Option(40, "--samples", help="Fresh samples per failure mode."),
    probe: int = typer.Option(200, "--probe", help="Uniform samples over the whole space to look for new failures (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fresh samples."),
    search_budget: int = typer.Option(0, "--search-budget", help="Also run a full search of this many evaluations on the new model."),
    search_out: Optional[Path] = typer.Option(None, "--search-out", help="Run directory for --search-budget."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the comparison as JSON to this file."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML."),
    fail_on: Optional[List[str]] = typer.Option(None, "--fail-on", help=FAIL_ON_HELP + ", ".join(COMPARE_QUANTITIES)),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON on stdout."),
    renderer: str = typer.Option("pyrender", "--renderer", help="Renderer of the fresh scenes: pyrender or blender "
                                 "(Cycles; `examiner renderers install blender`); stored in the model spec as "
                                 "sim.renderer. The same --seed draws the same scenes under either renderer."),
) -> None:
    """Re-evaluate a run's failure modes on another model: fixed, still failing, new."""
    from examiner.search.sim_evaluator import with_renderer

    rules = parse_rules(fail_on, COMPARE_QUANTITIES)
    model = with_renderer(model, renderer)
    _check_out_file(out)
    _check_out_file(junit, "--junit")
    console = _console()
    if search_out is not None:
        console.check_out_dir(search_out, overwrite=None, what="--search-out")
    with console.console.status("rechecking") if not json_out else _null() as status:
        def say(msg: str) -> None:
            if status is not None and hasattr(status, "update"):
                status.update(f"rechecking: {msg}")

        cmp = recheck_run(run_a, model, samples=samples, probe=probe, seed=seed, search_budget=search_budget,
                          search_out=search_out, progress=say, model_a=model_a)
    _finish_comparison(cmp, rules, json_out, out, junit)


app = typer.Typer(add_completion=False, no_args_is_help=True, help="PoseExaminer reports.")
app.command("report")(report_command)
app.command("diff")(diff_command)
app.command("recheck")(recheck_command)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m examiner.app.report report RUN`), same exit codes as examiner."""
    from examiner.console import run_app

    return run_app(app, argv)


if __name__ == "__main__":
    sys.exit(main())
