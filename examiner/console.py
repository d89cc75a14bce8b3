"""The one output layer of the CLI: rich console, progress bars, one-line errors."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True, highlight=False)
_state = {"verbose": 0, "quiet": False}


def set_verbosity(verbose: int, quiet: bool) -> None:
    _state["verbose"], _state["quiet"] = verbose, quiet


def verbose() -> int:
    return _state["verbose"]


def info(msg: str, soft_wrap: bool = False) -> None:
    """A progress or result line on stderr (nothing with -q); soft_wrap leaves long lines
    to the terminal instead of breaking them at its width."""
    if not _state["quiet"]:
        console.print(msg, soft_wrap=soft_wrap)


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


class Interrupted(Exception):
    """Raised by a command that caught Ctrl-C, with one line saying where it stopped and
    how to continue; `run_app` prints it and exits 130."""


def check_out_dir(path: str | Path, overwrite: bool | None, what: str = "--out") -> Path:
    """Refuse (PoseExaminerError, one line) an output folder that is a file or a folder
    that already holds something, unless `overwrite` (None: the command has no
    --overwrite); an existing empty folder is fine.
    Creates nothing: a command creates its folder once its inputs are validated."""
    from simulator.errors import PoseExaminerError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PoseExaminerError(f"{what} {path} is a file, not a folder; choose a folder")
    if path.is_dir() and not overwrite and any(path.iterdir()):
        hint = "" if overwrite is None else ", or pass --overwrite to write into it"
        raise PoseExaminerError(f"{what} {path} is not empty; choose a new or empty folder{hint}")
    return path


@contextmanager
def removed_if_failed(path: str | Path) -> Iterator[Path]:
    """Remove `path` again if it did not exist before and the body fails with it still
    empty, so that a failed validation leaves no folder that blocks the corrected retry."""
    path = Path(path)
    existed = path.exists()
    try:
        yield path
    except BaseException:
        if not existed and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        raise


def _os_error_line(e: OSError) -> str:
    import errno

    name = e.filename if e.filename is not None else ""
    hint = {
        errno.EACCES: "check the permissions or choose another path",
        errno.EROFS: "the file system is read-only; choose another path",
        errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "it is a folder; give a file",
        errno.ENOSPC: "the disk is full; free space or choose another path",
        errno.ENOENT: "check the path",
        errno.EEXIST: "it already exists; choose another path",
    }.get(e.errno or 0, "check the path")
    text = f"{name}: {e.strerror or e}" if name else str(e.strerror or e)
    return f"{text}; {hint}"


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
        rv = app(args=argv, standalone_mode=False)
    except PoseExaminerError as e:
        if verbose():
            raise
        error(_one_line(str(e)))
        return 2
    except Interrupted as e:
        error(_one_line(str(e)))
        return 130
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except aborts as e:
        # click turns Ctrl-C into Abort; a command's own Interrupted line is its cause
        cause = e.__cause__ or e.__context__
        if isinstance(cause, Interrupted):
            error(_one_line(str(cause)))
            return 130
        if isinstance(cause, KeyboardInterrupt):
            error("interrupted")
            return 130
        return 1
    except usage_errors as e:
        show = getattr(e, "show", None)
        if type(e).__name__ == "NoArgsIsHelpError" and callable(show):
            show()  # a bare command: its help is the answer
        else:
            fmt = getattr(e, "format_message", None)
            msg = fmt() if callable(fmt) else str(e)
            ctx = getattr(e, "ctx", None)
            where = getattr(ctx, "command_path", None) if ctx is not None else None
            error(_one_line(msg) + (f" (see `{where} --help`)" if where else ""))
        return int(getattr(e, "exit_code", 2))
    except OSError as e:
        if verbose():
            raise
        error(_one_line(_os_error_line(e)))
        return 2
    # In standalone_mode=False click returns a command's typer.Exit code instead of exiting.
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).strip()
