"""Conditions one peel found, tested afresh in a stage of another (issue 15).

`benchmarks/peel_across_seeds.py` counts a failure as found by both seeds only when both
peels confirmed it. But a peel's later stages search different spaces (what its earlier
stages cut), and its candidates come from its own search's proposals, so a real condition
can go unconfirmed in one seed because that seed never tested it there. This script tests
named conditions directly: in the space of a given run (a peel stage), each condition on
--samples fresh scenes (everything else uniform) against 2 x --samples uniform scenes of
that space, one-sided Fisher exact, Holm (examiner.search.factors.confirm, with its own
seed tag so the samples differ from the run's). Conditions are written like a --space
limit, in physical units: 'camera.azimuth=-180:-108', 'pose.z09=0.83:2.5'.

    python benchmarks/cross_seed_factors.py RUN --condition 'camera.azimuth=-180:-108' [...] [--samples 200]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def test_conditions(run_dir: str, conditions: list[str], samples: int, seed_offset: int) -> dict:
    from examiner.search.factors import Condition, condition_label
    from failure_factors import confirm_on_run  # benchmarks/ (this script's folder)
    from reports.rundata import load_run
    from simulator.params import parse_limit

    run = load_run(run_dir)
    space = run.space
    dims = {d.name: d for d in space.dimensions}
    conds = []
    for entry in conditions:
        narrowed = parse_limit(entry, dims)
        name = entry.partition("=")[0].strip()
        d = space.names.index(name)
        dim = space.dimensions[d]
        lo = max(-1.0, min(1.0, float(dim.to_normalised(narrowed.low))))
        hi = max(-1.0, min(1.0, float(dim.to_normalised(narrowed.high))))
        conds.append(Condition(d, name, lo, hi, condition_label(space, d, lo, hi), 0, 1))
    return confirm_on_run(run, conds, samples, seed_offset, float("nan"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--condition", action="append", required=True, help="name=LOW:HIGH in physical units")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed-offset", type=int, default=2000, help="added to the run seed: samples differ from the run's")
    ap.add_argument("--out", default=None, help="write the record as JSON here")
    a = ap.parse_args(argv)
    from failure_factors import print_record  # benchmarks/ (this script's folder)

    f = test_conditions(a.run, a.condition, a.samples, a.seed_offset)
    print_record(a.run, f)
    if a.out:
        Path(a.out).write_text(json.dumps(f, indent=1, default=float))
    print(json.dumps({"samples": a.samples, "seed_offset": a.seed_offset, "conditions": a.condition}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
