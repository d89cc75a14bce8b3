"""PoseExaminer reports: a self-contained HTML report, results.json, JUnit and CI gating
for a run directory, run comparisons (`diff`; the rendering of `recheck`, whose models run
in `examiner.recheck`) and scene descriptions in words (`reports.posecodes`). Reports
read run directories; they never run models.

    >>> from reports import write_report
    >>> paths = write_report("runs/r1")            # doctest: +SKIP
    >>> paths.html, paths.results, paths.gate_failure  # doctest: +SKIP

Heavy modules (the body model, the renderer) load only when a report needs them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_report", "ReportPaths", "diff_runs", "recheck_comparison", "ReportError", "GateRuleError"]


def __getattr__(name: str) -> Any:
    if name in ("write_report", "ReportPaths"):
        from reports import report

        return getattr(report, name)
    if name in ("diff_runs", "recheck_comparison"):
        from reports import compare

        return getattr(compare, name)
    if name in ("ReportError", "GateRuleError"):
        from reports import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
