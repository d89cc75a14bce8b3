"""docs/ci.md: the workflow is valid YAML and its examiner commands use real options and
valid gating rules."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from reports.gating import COMPARE_QUANTITIES, parse_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def workflow() -> dict:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/ci.md has no yaml block"
    return yaml.safe_load(block.group(1))


def test_workflow_is_complete():
    wf = workflow()
    steps = wf["jobs"]["examine"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "report.html" in upload["with"]["path"] and upload["if"] == "always()"
    runs = "\n".join(s.get("run", "") for s in steps)
    for cmd in ("examiner run ", "examiner report ", "examiner recheck "):
        assert cmd in runs


def test_workflow_rules_parse():
    runs = "\n".join(s.get("run", "") for s in workflow()["jobs"]["examine"]["steps"])
    words = shlex.split(runs.replace("\\\n", " "))
    report_rules, compare_rules, target = [], [], None
    for i, w in enumerate(words):
        if w == "examiner" and i + 1 < len(words):
            target = words[i + 1]
        if w == "--fail-on":
            (compare_rules if target == "recheck" else report_rules).append(words[i + 1])
    assert report_rules and compare_rules
    parse_rules(report_rules)
    parse_rules(compare_rules, COMPARE_QUANTITIES)
