"""A finished run's failure factors tested again with more fresh samples (issue 15).

`examiner run` tests up to `region.factors` conditions on `region.factor_samples` (80)
fresh scenes each against twice as many uniform ones (examiner.search.factors). With a
base rate near 50% that had little power at the old default of 40: 67% against 46% is not significant at n = 40.
This script takes the run's own candidates (the same rule, more of them with --top) and
tests them on --samples fresh scenes each, with its own seed tag so the samples differ
from the run's, and compares runs by their confirmed factors.

    python benchmarks/failure_factors.py RUN [RUN ...] [--samples 100] [--top 8]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def confirm_on_run(run, conds, samples: int, seed_offset: int, base: float) -> dict:
    """`examiner.search.factors.confirm` of `conds` on fresh samples of `run`'s space, judged
    like the run's own evaluations (its model, metric and threshold), seeded by the run
    seed + seed_offset."""
    from examiner.search import build_evaluator
    from examiner.search.archive import FailureArchive
    from examiner.search.config import SearchConfig
    from examiner.search.factors import confirm
    from examiner.search.outcome import check_outcomes
    from examiner.search.records import normalise
    from examiner.search.scorer import Scorer

    cfg = SearchConfig.from_dict(run.meta["config"]).validate()
    ev = build_evaluator(run.model_spec, run.space, threshold=run.threshold, seed=cfg.seed, metric=cfg.metric)
    scorer = Scorer(cfg, FailureArchive(run.space.dim, cfg.env.claim_radius, cfg.region.claim_margin))

    def evaluate_scored(U):
        return scorer.score(U, [normalise(o) for o in check_outcomes(ev.evaluate(U), len(U))])

    try:
        return confirm(conds, evaluate_scored, run.space, cfg.seed + seed_offset, samples, base)
    finally:
        close = getattr(ev, "close", None)
        if callable(close):
            close()


def run_factors(run_dir: str, samples: int, top: int, seed_offset: int) -> dict:
    from examiner.search.factors import candidates
    from reports.rundata import load_run

    run = load_run(run_dir)
    t = run.table
    use = (t.phase == "search") & t.plausible & ~t.model_error
    conds, base = candidates(run.space, t.u[use], t.failed[use], top=top)
    return confirm_on_run(run, conds, samples, seed_offset, base)


def print_record(name: str, record: dict, proposals: bool = False) -> None:
    """A confirmation record: the uniform scenes' failure rate, then the tested conditions
    as a markdown table (with the search's proposals there)."""
    ref = record["reference"]
    print(f"{name}: uniform scenes fail {ref['k']}/{ref['n']} = {ref['rate']:.0%} "
          f"[{ref['interval'][0]:.0%}, {ref['interval'][1]:.0%}]"
          + (f"; proposals {record['base_rate_proposals']:.0%}" if proposals else ""))
    factors = record["factors"]
    print("| condition | fresh failing | 95% CI | ratio | p (Holm) | confirmed |" + (" proposals |" if proposals else "")
          + "\n|---|---|---|---|---|---|" + ("---|" if proposals else ""))
    for x in factors:
        t = x["fresh"]
        print(f"| {x['label']} | {t['k']}/{t['n']} ({t['rate']:.0%}) | {t['interval'][0]:.0%}-{t['interval'][1]:.0%} "
              f"| {x['rate_ratio']:.2f}x | {x['p_adjusted']:.2g} | {'yes' if x['confirmed'] else 'no'} |"
              + (f" {x['proposals']['k']}/{x['proposals']['n']} |" if proposals else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--seed-offset", type=int, default=1000, help="added to the run seed: samples differ from the run's")
    ap.add_argument("--out", default=None, help="write the records as JSON here")
    a = ap.parse_args(argv)
    records = {}
    for r in a.runs:
        f = run_factors(r, a.samples, a.top, a.seed_offset)
        records[r] = f
        print()
        print_record(r, f, proposals=True)
    if len(records) > 1:
        sets = {r: {x["label"] for x in f["factors"] if x["confirmed"]} for r, f in records.items()}
        common = set.intersection(*sets.values())
        print("\nconfirmed per run: " + "; ".join(f"{Path(r).name}: {len(s)}" for r, s in sets.items()))
        print(f"confirmed in every run: {sorted(common) or 'none'}")
        dims = [{x["dimension"] for x in f["factors"] if x["confirmed"]} for f in records.values()]
        print(f"dimensions confirmed in every run: {sorted(set.intersection(*dims)) or 'none'}")
    if a.out:
        Path(a.out).write_text(json.dumps(records, indent=1, default=float))
    print(json.dumps({"samples": a.samples, "top": a.top, "seed_offset": a.seed_offset}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
