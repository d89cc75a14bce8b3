"""Statistical guard (issue 20): MARL must keep beating uniform random search on
evaluations to recall, over drawn analytic layouts. Counts evaluations, never time.

Each seed s runs `marl` and `random` with seed s on `analytic:drawn?layout=s` and
records the evaluations each needed to recall 90% of the planted regions (a run that
never gets there counts as budget + 1: worse than any run that did). The test fails
unless MARL needed fewer evaluations than random on enough seeds for a one-sided sign
test at p < 0.05 (ties left out), and fewer evaluations on average.
"""

import numpy as np
import pytest
from scipy.stats import binomtest

from examiner.search import SearchConfig, build_evaluator, run_search
from examiner.search.drawn_targets import planted_boxes
from examiner.search.recall import recall_report
from simulator.params import ParamSpace

SEEDS = range(10)
BUDGET = 3000


def evals_to_90(tmp_path, strategy, seed, space):
    ev = build_evaluator(f"analytic:drawn?layout={seed}", space)
    out = tmp_path / f"{strategy}{seed}"
    run_search(SearchConfig(strategy=strategy, budget=BUDGET, agents=8, seed=seed), ev, space, out)
    n = recall_report(out, planted_boxes(ev)).evals_to_recall(0.9)
    return BUDGET + 1 if n is None else n


@pytest.mark.slow
def test_marl_beats_random_on_evaluations_to_recall(tmp_path):
    space = ParamSpace.from_groups("pose,shape,camera")
    marl = np.array([evals_to_90(tmp_path, "marl", s, space) for s in SEEDS])
    rand = np.array([evals_to_90(tmp_path, "random", s, space) for s in SEEDS])
    wins, losses = int(np.sum(marl < rand)), int(np.sum(marl > rand))
    p = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins + losses else 1.0
    detail = f"MARL {marl.tolist()} vs random {rand.tolist()}: {wins} wins, {losses} losses, sign test p={p:.3f}"
    assert p < 0.05, detail
    assert marl.mean() < rand.mean(), detail
