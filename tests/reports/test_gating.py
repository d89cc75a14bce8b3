"""Gating rules: parsing, evaluation, one-line errors."""

from __future__ import annotations

import pytest

from reports.errors import GateRuleError
from reports.gating import COMPARE_QUANTITIES, evaluate_rules, failure_line, parse_rule, parse_rules
from simulator.errors import PoseExaminerError


@pytest.mark.parametrize("text,name,op,threshold", [
    ("modes>0", "modes", ">", 0.0),
    (" failure_rate >= 5% ", "failure_rate", ">=", 0.05),
    ("failure_rate>0.05", "failure_rate", ">", 0.05),
    ("model_errors!=0", "model_errors", "!=", 0.0),
    ("p90_error<1e2", "p90_error", "<", 100.0),
])
def test_parse(text, name, op, threshold):
    r = parse_rule(text)
    assert (r.name, r.op) == (name, op)
    assert r.threshold == pytest.approx(threshold)


@pytest.mark.parametrize("text,needle", [
    ("modes", "must look like NAME OP NUMBER"),
    ("modes>>0", "must look like NAME OP NUMBER"),
    ("modes>abc", "must look like NAME OP NUMBER"),
    ("", "must look like NAME OP NUMBER"),
    ("modez>0", "unknown quantity 'modez'"),
])
def test_bad_rules_are_one_line_user_errors(text, needle):
    with pytest.raises(GateRuleError) as e:
        parse_rule(text)
    assert isinstance(e.value, PoseExaminerError)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_evaluate_and_reason():
    rules = parse_rules(["modes>0", "failure_rate>5%", "model_errors>=1"])
    res = evaluate_rules(rules, {"modes": 3.0, "failure_rate": 0.04, "model_errors": 0.0})
    assert [g.tripped for g in res] == [True, False, False]
    assert failure_line(res) == "gate failed: modes>0 (modes = 3)"
    res = evaluate_rules(rules, {"modes": 0.0, "failure_rate": 0.5, "model_errors": 2.0})
    assert failure_line(res) == "gate failed: failure_rate>5% (failure_rate = 0.5); model_errors>=1 (model_errors = 2)"
    assert failure_line(evaluate_rules(rules, {"modes": 0.0, "failure_rate": None, "model_errors": 0.0})) is None


def test_compare_quantities_are_separate():
    parse_rule("still_failing>0", COMPARE_QUANTITIES)
    with pytest.raises(GateRuleError):
        parse_rule("still_failing>0")
