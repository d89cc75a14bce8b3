"""`examiner demo` end to end on the shipped baseline weights (tiny budget)."""

import json

import pytest

from examiner.app.cli import main
from examiner.targets.baseline import baseline_available


@pytest.mark.skipif(not baseline_available(), reason="baseline weights not in assets/baseline/")
def test_demo_writes_a_report_and_refuses_foreign_folders(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()  # an existing empty folder is accepted like a missing one
    assert main(["-q", "demo", "--out", str(out), "--budget", "48", "--workers", "1"]) == 0
    assert (out / "report.html").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 48
    meta = json.loads((out / "meta.json").read_text())
    assert meta["model_spec"] == "baseline"
    # Re-running replaces its own output and says what it found; a folder it did not write is refused.
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--budget", "48", "--workers", "1"]) == 0
    said = capsys.readouterr()
    said = said.out + said.err
    assert "failure: pa_mpjpe > " in said and "scenes drawn uniformly from the space fail" in said and "the search's proposals" in said and "open " in said
    modes = json.loads((out / "modes.json").read_text())["modes"]
    assert ("no failure mode" in said) == (not modes) and said.count("  mode ") == len(modes)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["-q", "demo", "--out", str(other), "--budget", "48"]) == 2
