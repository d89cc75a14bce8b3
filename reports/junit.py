"""JUnit XML: one test case per failure mode and one per gating rule, so CI systems that
read JUnit (GitHub, GitLab, Jenkins) list failure modes next to ordinary test failures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from reports.gating import GateResult


def _suite(parent: ET.Element, name: str, cases: list[tuple[str, str, str | None, str]]) -> ET.Element:
    """cases: (classname, name, failure message or None, details)."""
    failures = sum(1 for c in cases if c[2] is not None)
    suite = ET.SubElement(parent, "testsuite", name=name, tests=str(len(cases)), failures=str(failures), errors="0", skipped="0")
    for classname, case_name, message, details in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=case_name, time="0")
        if message is not None:
            f = ET.SubElement(case, "failure", message=message, type="FailureMode" if classname.endswith("modes") else "Gate")
            f.text = details
        elif details:
            ET.SubElement(case, "system-out").text = details
    return suite


def junit_xml(
    suite_name: str,
    modes: Sequence[dict],
    gates: Sequence[GateResult],
) -> bytes:
    """modes: dicts with "rank", "title", "message", "details" (a failing case each), or
    "passed": True for modes reported as passing (e.g. fixed in a recheck); gates: the
    evaluated rules. A run without modes gets one passing case saying so."""
    root = ET.Element("testsuites", name=suite_name)
    cases = []
    for m in modes:
        cases.append((f"{suite_name}.modes", m["title"], None if m.get("passed") else m["message"], m.get("details", "")))
    if not cases:
        cases.append((f"{suite_name}.modes", "no failure modes", None, "the search found no failure mode"))
    _suite(root, f"{suite_name}: failure modes", cases)
    gate_cases = [
        (f"{suite_name}.gates", f"fail-on {g.rule.text.strip()}", (f"gate tripped: {g.reason()}" if g.tripped else None), g.reason())
        for g in gates
    ]
    if gate_cases:
        _suite(root, f"{suite_name}: gates", gate_cases)
    root.set("tests", str(len(cases) + len(gate_cases)))
    root.set("failures", str(sum(1 for c in cases + gate_cases if c[2] is not None)))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_junit(path: str | Path, xml: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(xml)
    return path
