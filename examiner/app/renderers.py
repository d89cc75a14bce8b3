"""`examiner renderers ...`: install and list renderers.

pyrender ships with PoseExaminer; Blender (Cycles, `simulator.blender`) runs in its own
environment under $POSEEXAMINER_HOME/envs/blender (bpy needs numpy < 2), created by
`examiner renderers install blender` with the shared installer `simulator.envs`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from simulator.errors import PoseExaminerError

app = typer.Typer(help="Renderers: install Blender, list what is usable.", no_args_is_help=True)

INSTALLABLE = ("blender",)


def renderer_status() -> list[dict[str, Any]]:
    """One row per renderer: name, usable, detail."""
    from simulator import envs
    from simulator.blender import INSTALL_HINT, RECIPE

    rows = [{"name": "pyrender", "usable": True, "detail": "built in (OpenGL rasteriser, the default)"}]
    rec = envs.install_record(RECIPE.name) if envs.is_installed(RECIPE.name) else None
    rows.append({
        "name": "blender",
        "usable": rec is not None,
        "detail": (f"{envs.env_path(RECIPE.name)} ({rec.get('size_mb', '?')} MB, {', '.join(rec.get('packages', []))})"
                   if rec else f"not installed: {INSTALL_HINT}"),
    })
    return rows


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Show the renderers and whether each is usable (--renderer NAME)."""
    rows = renderer_status()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("renderer", "usable", "detail")
    for r in rows:
        table.add_row(r["name"], "yes" if r["usable"] else "[red]no[/red]", r["detail"])
    Console().print(table)


@app.command("install")
def install_cmd(
    name: str = typer.Argument(..., help="renderer to install (blender)"),
    force: bool = typer.Option(False, "--force", help="recreate the environment"),
) -> None:
    """Create a renderer's own Python environment under $POSEEXAMINER_HOME/envs."""
    from rich.console import Console

    from simulator import envs
    from simulator.blender import RECIPE

    if name not in INSTALLABLE:
        raise PoseExaminerError(f"no installable renderer named {name!r}; installable: {', '.join(INSTALLABLE)} "
                                "(pyrender is built in)")
    console = Console()
    t0 = time.monotonic()
    with console.status(f"installing {name} into {envs.env_path(name)} (about a minute and ~930 MB the first time)"):
        record = envs.install_env(RECIPE, force=force, log=lambda line: console.log(line))
    console.print(
        f"[green]{name} installed[/green]: {envs.env_path(name)} ({record.get('size_mb', '?')} MB, "
        f"{time.monotonic() - t0:.0f} s); use it with --renderer {name}"
    )
