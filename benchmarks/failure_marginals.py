"""Where a model fails, from a run's own proposals: the failure rate per condition (issue 15).

A verified mode needs a box where the model fails at least `region.min_failure_rate`
(0.8) of fresh samples. This script answers the question behind "why so few modes": which
single conditions (one dimension in one fifth of its range, or one choice) and which pairs
of them come near that rate. Only the strategy's proposals count (phase "search",
plausible, no model error); run with `--strategy random` they are uniform samples of the
space and the rates are unbiased, otherwise they lean towards what the strategy sought.

    python benchmarks/failure_marginals.py RUN [--bins 5] [--top 15] [--min-count 20]

Prints the base rate, then the conditions and pairs with the highest rates (Wilson 95%
interval, count), and how many of them reach 0.8 at their interval's lower end.

With `--codes`, also the failure rate per posecode (reports/posecodes.py: "lying on the
back", "seen from above", "left arm above the head", ...; computed from each proposal's
posed skeleton on the average body): what a pose researcher asks ("does it fail on
people lying down?"), which the pose prior's latent dimensions cannot answer one by one."""
from __future__ import annotations

import argparse
import itertools

import numpy as np


def conditions(run, bins: int) -> list[tuple[str, np.ndarray]]:
    """(label, mask over the usable search rows) for every single condition."""
    from reports.views import display_unit, display_value, physical

    t = run.table
    use = (t.phase == "search") & t.plausible & ~t.model_error
    U = t.u[use]
    out = []
    edges = np.linspace(-1.0, 1.0, bins + 1)
    for d, dim in enumerate(run.space.dimensions):
        col = U[:, d]
        if dim.choices:
            idx = np.clip(((col + 1.0) / 2.0 * len(dim.choices)).astype(int), 0, len(dim.choices) - 1)
            for c, name in enumerate(dim.choices):
                out.append((f"{dim.name} = {name}", idx == c))
            continue
        unit = display_unit(dim)
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            lo, hi = (float(display_value(dim, physical(dim, np.array([x])))[0]) for x in (a, b))
            m = (col >= a) & ((col < b) if i < bins - 1 else (col <= b))
            out.append((f"{dim.name} in [{lo:.3g}, {hi:.3g}]{(' ' + unit) if unit else ''}", m))
    return out, t.failed[use]


def code_conditions(run) -> list[tuple[str, np.ndarray]]:
    """(posecode phrase, mask over the usable search rows) for every posecode that holds
    for at least one proposal (the same rows as `conditions`)."""
    from reports.posecodes import posecodes, skeletons

    t = run.table
    use = (t.phase == "search") & t.plausible & ~t.model_error
    U = t.u[use]
    params = run.space.to_params_batch(U)
    joints = skeletons(params, average_body=True)
    masks: dict[str, np.ndarray] = {}
    phrases: dict[str, str] = {}
    for i, (p, j) in enumerate(zip(params, joints)):
        for c in posecodes(p, j):
            masks.setdefault(c.key, np.zeros(len(U), bool))[i] = True
            phrases[c.key] = c.phrase
    return [(f"{phrases[k]} [{k}]", m) for k, m in sorted(masks.items())]


def main(argv: list[str] | None = None) -> int:
    from examiner.search.boxes import wilson_interval
    from reports.rundata import load_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--bins", type=int, default=5)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--min-count", type=int, default=20)
    ap.add_argument("--level", type=float, default=0.8, help="the verification standard to compare with")
    ap.add_argument("--codes", action="store_true", help="also the failure rate per posecode, alone and in pairs")
    a = ap.parse_args(argv)
    run = load_run(a.run)
    conds, failed = conditions(run, a.bins)
    n = len(failed)
    print(f"{a.run}: {n} usable search proposals ({run.meta.get('strategy')}), base failure rate "
          f"{failed.mean():.1%}, threshold {run.threshold:g}")

    def rows(items):
        out = []
        for label, m in items:
            c = int(m.sum())
            if c >= a.min_count:
                k = int(failed[m].sum())
                out.append((k / c, wilson_interval(k, c), c, label))
        return sorted(out, key=lambda r: -r[0])

    def show(title, rs):
        print(f"\n{title} (count >= {a.min_count}); {sum(r[1][0] >= a.level for r in rs)} of {len(rs)} have a Wilson "
              f"lower end >= {a.level:g}, {sum(r[0] >= a.level for r in rs)} a rate >= {a.level:g}")
        print("| rate | 95% interval | n | condition |\n|---|---|---|---|")
        for rate, (lo, hi), c, label in rs[: a.top]:
            print(f"| {rate:.0%} | {lo:.0%}-{hi:.0%} | {c} | {label} |")

    single = rows(conds)
    show("Single conditions", single)
    pairs = [(f"{la} & {lb}", ma & mb) for (la, ma), (lb, mb) in itertools.combinations(conds, 2)
             if la.split(" ")[0] != lb.split(" ")[0]]
    show("Pairs of conditions", rows(pairs))
    if a.codes:
        codes = code_conditions(run)
        show("Posecodes", rows(codes))
        show("Pairs of posecodes", rows([(f"{la} & {lb}", ma & mb) for (la, ma), (lb, mb)
                                         in itertools.combinations(codes, 2)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
