"""`examiner demo`: the main job on the embedded default.

A short MARL failure search against the bundled baseline network, then the HTML report.
The search space (`DEMO_SPACE`) is the realistic world's pose, camera and occluder groups:
poses from the motion-capture prior out to its +-2.5 sigma tails (lying, inverted, deep
crouches), the camera all around, high and low, the person small or filling the frame
and cut off at any side, a box or a pole over any body part; body shape, light, background
and floor stay at the base scene. The baseline was trained on the everyday slice of this
world (`examiner.training.baseline.everyday_space`: upright poses within 1.5 sigma, near eye
level, little truncation, no occluders), so the question the demo answers is "which
departures from everyday photos break it?".

Failure threshold: relative to the baseline's own accuracy, like every run
(`examiner.search.reference`): max(90 mm, 2x its median PA-MPJPE on easy reference
scenes of the demo's space).
"""

from __future__ import annotations

import shutil
from pathlib import Path

DEMO_MARKER = ".examiner-demo"
DEMO_SPACE = "pose,camera,occluder"


def demo_space():
    from simulator.params import ParamSpace

    return ParamSpace.from_groups(DEMO_SPACE)


def run_demo(out: str = "demo_out", seed: int = 0, budget: int = 2000, workers: int = 2, quiet: bool = False) -> Path:
    from examiner.search import EvaluatorFactory, SearchConfig, run_search
    from examiner.search.backends import make_evaluator
    from examiner.search.progress import RichProgress
    from examiner.search.reference import resolve_threshold
    from reports import write_report
    from simulator.errors import PoseExaminerError

    out_dir = Path(out)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()  # an empty folder is as good as a missing one
    if out_dir.exists():
        if not (out_dir / DEMO_MARKER).exists():
            raise PoseExaminerError(f"{out_dir} exists and is not a demo output; pass another --out")
        shutil.rmtree(out_dir)  # the demo's own previous output
    out_dir.mkdir(parents=True)
    (out_dir / DEMO_MARKER).write_text("written by `examiner demo`; safe to delete\n")

    space = demo_space()
    config = SearchConfig(
        strategy="marl", budget=budget, agents=4, seed=seed, metric="pa_mpjpe",
        space=DEMO_SPACE, backend="local", workers=workers,
    ).validate()
    probe = EvaluatorFactory("baseline", space.to_dict(), config.failure_threshold, config.seed)()  # missing weights fail here
    config, rule = resolve_threshold(config, "baseline", space, probe)  # relative to the baseline's own accuracy
    probe.close()
    factory = EvaluatorFactory("baseline", space.to_dict(), config.failure_threshold, config.seed)
    evaluator = make_evaluator(factory, config.backend, config.workers)
    with RichProgress(config.budget, disable=quiet) as show:
        run_search(config, evaluator, space, out_dir, progress=show, model_spec="baseline", threshold_rule=rule)
    return Path(write_report(out_dir).html)
