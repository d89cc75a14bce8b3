"""Errors a user can cause in a search run. Each message is one line naming the problem
and the fix; the CLI prints them without a traceback."""

from __future__ import annotations

from simulator.errors import PoseExaminerError


class SearchConfigError(PoseExaminerError, ValueError):
    """A bad search configuration (CLI option, YAML file or `SearchConfig` field)."""


class ResumeError(PoseExaminerError):
    """A run directory cannot be created or resumed as asked."""


class BackendError(PoseExaminerError):
    """An evaluation backend is unavailable (e.g. `ray` not installed) or misconfigured."""


class EvaluatorError(PoseExaminerError):
    """An evaluator returned something that breaks the `Evaluator` contract."""
