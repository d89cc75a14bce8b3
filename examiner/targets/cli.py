"""`examiner targets ...`: install, list, register and check target models.

A Typer sub-app (``app``) mounted by ``examiner/app/cli.py``; every command is a thin layer
over library functions in ``examiner.targets``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, List

import typer

from examiner.targets import envs
from examiner.targets.base import TargetError

app = typer.Typer(help="Target models: install built-ins, list what is usable, register your own workers.",
                  no_args_is_help=True)


def _builtins_loaded() -> None:
    # Recipes register on import; keep it explicit so `envs.BUILTIN_ENVS` is complete.
    import examiner.targets.mediapipe_target  # noqa: F401


def target_status() -> list[dict[str, Any]]:
    """One row per known target: name, kind, usable, detail."""
    from examiner.targets.baseline import baseline_available, baseline_dir
    from examiner.targets.registry import available_adapters

    _builtins_loaded()
    rows: list[dict[str, Any]] = []
    for name, recipe in sorted(envs.BUILTIN_ENVS.items()):
        rec = envs.install_record(name) if envs.is_installed(name) else None
        rows.append({
            "name": name,
            "kind": "built-in (own environment)",
            "usable": rec is not None,
            "detail": (f"{envs.env_path(name)} ({rec.get('size_mb', '?')} MB)" if rec
                       else f"not installed: examiner targets install {name}"),
        })
    ok = baseline_available()
    rows.append({
        "name": "baseline",
        "kind": "built-in",
        "usable": ok,
        "detail": str(baseline_dir()) if ok else "weights missing: examiner train-baseline",
    })
    for name, spec in envs.registered_workers().items():
        if name in envs.BUILTIN_ENVS:
            continue
        exe = Path(spec.command[0])
        usable = exe.exists() or not exe.is_absolute()
        rows.append({
            "name": f"worker:{name}",
            "kind": "registered worker",
            "usable": usable,
            "detail": " ".join(spec.command) if usable else f"interpreter {exe} is missing",
        })
    for a in available_adapters():
        if a.kind in ("mediapipe", "baseline", "worker"):
            continue
        rows.append({"name": a.usage, "kind": "adapter", "usable": True, "detail": a.description})
    return rows


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Show installed and usable targets and the adapter kinds a --model spec can use."""
    rows = target_status()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("target", "kind", "usable", "detail")
    for r in rows:
        table.add_row(r["name"], r["kind"], "yes" if r["usable"] else "[red]no[/red]", r["detail"])
    Console().print(table)


@app.command("install")
def install_cmd(
    name: str = typer.Argument(..., help="built-in target to install (mediapipe)"),
    force: bool = typer.Option(False, "--force", help="recreate the environment"),
) -> None:
    """Create a built-in target's own Python environment under $POSEEXAMINER_HOME/envs and register it."""
    from rich.console import Console

    _builtins_loaded()
    console = Console()
    t0 = time.monotonic()
    with console.status(f"installing {name} into {envs.env_path(name)} (a few minutes the first time)"):
        record = envs.install_env(name, force=force, log=lambda line: console.log(line))
    console.print(
        f"[green]{name} installed[/green]: {envs.env_path(name)} ({record.get('size_mb', '?')} MB, "
        f"{time.monotonic() - t0:.0f} s); use it with --model {name}"
    )


@app.command("register")
def register_cmd(
    name: str = typer.Argument(..., help="name for worker:NAME"),
    command: List[str] = typer.Argument(..., help="worker command, after --: /env/bin/python my_worker.py ..."),
    timeout: float = typer.Option(60.0, "--timeout", help="seconds a batch may take before the worker is restarted"),
    startup_timeout: float = typer.Option(180.0, "--startup-timeout", help="seconds to load the model"),
) -> None:
    """Register a worker command so that --model worker:NAME starts it."""
    import math

    envs.check_worker_name(name)
    for label, v in (("--timeout", timeout), ("--startup-timeout", startup_timeout)):
        if not math.isfinite(v) or v <= 0:
            raise TargetError(f"{label} must be a positive number of seconds, got {v}")
    exe = Path(command[0])
    if exe.is_absolute() and not exe.exists():
        raise TargetError(f"{exe} does not exist; give the full path of the environment's python")
    spec = envs.WorkerSpec(name=name, command=tuple(command), timeout_s=timeout, startup_timeout_s=startup_timeout)
    path = envs.register_worker(spec)
    typer.echo(f"registered worker:{name} -> {' '.join(command)} ({path})")


@app.command("check")
def check_cmd(
    model: str = typer.Argument(..., help="model spec to check"),
    n: int = typer.Option(3, "--n", help="scenes to render for the check"),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the conformance checks on a target, with a few rendered scenes (exit 1 on a FAIL)."""
    if n < 1 or seed < 0:
        raise TargetError(f"--n must be at least 1 and --seed non-negative, got --n {n} --seed {seed}")
    import simulator
    from examiner.scoring import reference_scenes
    from examiner.targets.base import TargetBatch
    from examiner.targets.conformance import check_target
    from examiner.targets.registry import load_target

    samples = simulator.render_batch(reference_scenes(max(2, n), seed))
    target = load_target(model)
    try:
        checks = check_target(target, TargetBatch.from_samples(samples, with_ground_truth=target.needs_ground_truth))
    finally:
        target.close()
    if as_json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            typer.echo(f"{'PASS' if c.passed else 'FAIL'}  {c.name}" + (f"  ({c.message})" if not c.passed and c.message else ""))
    if not all(c.passed for c in checks):
        raise typer.Exit(1)
