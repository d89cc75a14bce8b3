"""The one output layer of the CLI: rich console, progress bars, one-line errors."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True, highlight=False)
_state = {"verbose": 0, "quiet": False}


def set_verbosity(verbose: int, quiet: bool) -> None:
    _state["verbose"], _state["quiet"] = verbose, quiet


def verbose() -> int:
    return _state["verbose"]


def info(msg: str) -> None:
    if not _state["quiet"]:
        console.print(msg)


def error(msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}", soft_wrap=True)


def emit_json(obj: Any) -> None:
    """Machine-readable output goes to stdout alone."""
    sys.stdout.write(json.dumps(obj, indent=1, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress(description: str, total: int) -> Iterator[Any]:
    """A progress bar (disabled with -q); yields a callable advance(n=1, **fields)."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, disable=_state["quiet"], transient=False) as bar:
        task = bar.add_task(description, total=total, rate="")

        def advance(n: int = 1, **fields: Any) -> None:
            bar.update(task, advance=n, **fields)

        yield advance


def run_app(app: Any, argv: list[str] | None = None) -> int:
    """Run a Typer app with PoseExaminer's exit codes: 0 ok, 2 a user error (one line on
    stderr; the traceback with -v), 130 interrupted, click's own code for usage errors.
    Shared by `examiner` and the sub-apps that can also run alone."""
    import click

    from simulator.errors import PoseExaminerError

    # Typer >= 0.22 parses with its own copy of click, whose exceptions are not click's.
    usage_errors: tuple[type[BaseException], ...] = (click.exceptions.ClickException,)
    aborts: tuple[type[BaseException], ...] = (click.exceptions.Abort,)
    try:
        import typer

        usage_errors += (getattr(typer, "TyperException", click.exceptions.ClickException),)
        aborts += (getattr(typer, "Abort", click.exceptions.Abort),)
    except ImportError:  # pragma: no cover - typer is a dependency
        pass
    try:
        app(args=argv, standalone_mode=False)
    except PoseExaminerError as e:
        if verbose():
            raise
        error(str(e))
        return 2
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except SystemExit as e:
        return int(e.code or 0)
    except aborts:
        return 1
    except usage_errors as e:
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            error(str(e))
        return int(getattr(e, "exit_code", 2))
    return 0
