"""CI gating rules: `--fail-on "modes>0"`, `--fail-on "failure_rate>5%"`.

A rule is ``NAME OP NUMBER`` with OP one of > >= < <= == != and NUMBER a plain number or
a percentage (``5%`` = 0.05). A rule *trips* when the comparison holds; any tripped rule
makes the command exit with status 1 and a one-line reason. The names a command offers
are listed by ``REPORT_QUANTITIES`` / ``COMPARE_QUANTITIES``.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from reports.errors import GateRuleError

OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}
_RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(%?)\s*$")

REPORT_QUANTITIES: dict[str, str] = {
    "modes": "number of failure modes",
    "reliable_modes": "failure modes whose rate on the samples drawn after the search meets the acceptance standard",
    "failure_rate": "failing fraction of the strategy's proposals (0..1)",
    "space_failure_rate": "failing fraction of scenes drawn uniformly from the space after the search (0..1)",
    "failures": "failing evaluations",
    "evaluations": "evaluations in the run",
    "model_errors": "evaluations where the model crashed or timed out",
    "model_error_rate": "model errors as a fraction of evaluations (0..1)",
    "worst_mode_rate": "highest failure rate of any mode, confirmed after the search where the run has it (0..1)",
    "failure_volume": "fraction of the search space covered by failure modes (0..1)",
    "mean_error": "mean failure metric over usable evaluations",
    "p90_error": "90th percentile of the failure metric",
}

COMPARE_QUANTITIES: dict[str, str] = {
    "still_failing": "modes of run A that still fail",
    "improved": "modes of run A whose failure rate dropped but stayed above the fixed level",
    "fixed": "modes of run A that no longer fail",
    "new": "failure modes (or failing probes) outside run A's modes",
    "modes": "modes of run A that were compared",
}


@dataclass(frozen=True)
class Rule:
    text: str
    name: str
    op: str
    threshold: float

    def trips(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return bool(OPS[self.op](value, self.threshold))


@dataclass(frozen=True)
class GateResult:
    rule: Rule
    value: float | None
    tripped: bool

    def reason(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.4g}"
        return f"{self.rule.text.strip()} ({self.rule.name} = {shown})"


def parse_rule(text: str, quantities: Mapping[str, str] = REPORT_QUANTITIES) -> Rule:
    m = _RULE.match(text or "")
    if not m:
        raise GateRuleError(
            f"--fail-on rule {text!r} must look like NAME OP NUMBER, e.g. \"modes>0\" or \"failure_rate>5%\""
        )
    name, op, num, pct = m.groups()
    if name not in quantities:
        raise GateRuleError(f"--fail-on rule {text!r}: unknown quantity {name!r}; choose from {', '.join(quantities)}")
    value = float(num) / (100.0 if pct else 1.0)
    return Rule(text, name, op, value)


def parse_rules(texts: Sequence[str] | None, quantities: Mapping[str, str] = REPORT_QUANTITIES) -> list[Rule]:
    """Parse every rule first, so a typo fails before any work is done."""
    return [parse_rule(t, quantities) for t in (texts or [])]


def evaluate_rules(rules: Sequence[Rule], values: Mapping[str, float | None]) -> list[GateResult]:
    return [GateResult(r, values.get(r.name), r.trips(values.get(r.name))) for r in rules]


def failure_line(results: Sequence[GateResult]) -> str | None:
    """One line naming every tripped rule, or None when none tripped."""
    tripped = [g for g in results if g.tripped]
    if not tripped:
        return None
    return "gate failed: " + "; ".join(g.reason() for g in tripped)


def report_quantities(stats: Mapping) -> dict[str, float | None]:
    """The gating values of a run from `rundata.run_stats`."""
    return {
        "modes": float(stats["modes"]),
        "reliable_modes": float(stats["reliable_modes"]),
        "failure_rate": stats["failure_rate"]["rate"],
        "space_failure_rate": (stats.get("space_failure_rate") or {}).get("rate"),
        "failures": float(stats["failures"]),
        "evaluations": float(stats["evaluations"]),
        "model_errors": float(stats["model_errors"]),
        "model_error_rate": float(stats["model_error_rate"]),
        "worst_mode_rate": float(stats["worst_mode_rate"]),
        "failure_volume": float(stats["failure_volume"]),
        "mean_error": stats["error"]["mean"],
        "p90_error": stats["error"]["p90"],
    }
