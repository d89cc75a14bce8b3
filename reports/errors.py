"""Errors a user can cause in reports, diffs and gating (one-line messages)."""

from simulator.errors import PoseExaminerError


class ReportError(PoseExaminerError):
    """A run cannot be reported on or compared (missing, empty, incompatible runs)."""


class GateRuleError(PoseExaminerError):
    """A --fail-on rule does not parse or names an unknown quantity."""
