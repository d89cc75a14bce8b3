"""A rich progress display for `run_search`, passed as its `progress` callback.

    with RichProgress(budget) as show:
        run_search(config, evaluator, space, out, progress=show)
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from examiner.search.events import ProgressEvent


class RichProgress:
    """Evaluations (bar), evaluations/s, failures, modes found, budget left."""

    def __init__(self, budget: int, console: Console | None = None, disable: bool = False) -> None:
        self.budget = budget
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8} eval/s"),
            TextColumn("failures {task.fields[failures]}"),
            TextColumn("modes [bold]{task.fields[modes]}"),
            TextColumn("left {task.fields[left]}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=disable,
        )
        self._task = None
        self.last: ProgressEvent | None = None

    def __enter__(self) -> "RichProgress":
        return self  # the display starts with the first event, so early errors print alone

    def __exit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._progress.__exit__(*exc)

    def __call__(self, ev: ProgressEvent) -> None:
        self.last = ev
        if self._task is None:
            self._progress.__enter__()
            self._task = self._progress.add_task("search", total=ev.budget, rate="-", failures=0, modes=0, left=ev.budget)
        desc = f"{ev.strategy} (replaying)" if ev.replaying else ev.strategy
        self._progress.update(
            self._task, completed=ev.evaluations, total=ev.budget, description=desc,
            rate=f"{ev.evals_per_s:.0f}", failures=ev.failures, modes=ev.modes, left=ev.budget - ev.evaluations,
        )
