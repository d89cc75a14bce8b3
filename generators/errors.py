"""Errors a user of the generators can cause (one line each, naming the fix)."""

from simulator.errors import PoseExaminerError


class GeneratorError(PoseExaminerError):
    """Bad generator options, a damaged or mismatched dataset directory, a bad run store."""
