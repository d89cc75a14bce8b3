"""`examiner demo`: the main job on the embedded default.

A short MARL failure search against the bundled baseline network, then the HTML report.
The search space (`DEMO_SPACE`, 12 dimensions) is the whole camera group plus five joints
over their full anatomical range (trunk flexion, both shoulders' abduction, both hips'
flexion), everything else at the relaxed standing base pose: the question the demo
answers is "which viewpoints, framings and large movements break the baseline?", small
enough for a 600-evaluation run to find and verify failure boxes. (Over all 34 pose
angles at once this small network fails almost everywhere, diffusely.)

Failure threshold: the baseline is deliberately small (held-out PA-MPJPE ~126 mm on its training distribution, a median of ~180 mm once the camera moves over its whole range; see
`assets/baseline/MODEL_CARD.md`), so the demo calls a scene a failure above
`DEMO_THRESHOLD_MM` of PA-MPJPE rather than at PoseExaminer's 90 mm.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DEMO_MARKER = ".examiner-demo"
DEMO_THRESHOLD_MM = 200.0


DEMO_SPACE = (
    "camera,pose.spine_flexion,pose.l_shoulder_abduction,pose.r_shoulder_abduction,"
    "pose.l_hip_flexion,pose.r_hip_flexion"
)


def demo_space():
    from simulator.params import ParamSpace

    return ParamSpace.from_groups(DEMO_SPACE)


def run_demo(out: str = "demo_out", seed: int = 0, budget: int = 600, workers: int = 2, quiet: bool = False) -> Path:
    from examiner.search import EvaluatorFactory, SearchConfig, run_search
    from examiner.search.backends import make_evaluator
    from examiner.search.progress import RichProgress
    from reports import write_report
    from simulator.errors import PoseExaminerError

    out_dir = Path(out)
    if out_dir.exists():
        if not (out_dir / DEMO_MARKER).exists():
            raise PoseExaminerError(f"{out_dir} exists and is not a demo output; pass another --out")
        shutil.rmtree(out_dir)  # the demo's own previous output
    out_dir.mkdir(parents=True)
    (out_dir / DEMO_MARKER).write_text("written by `examiner demo`; safe to delete\n")

    space = demo_space()
    config = SearchConfig(
        strategy="marl", budget=budget, agents=4, seed=seed, metric="pa_mpjpe",
        threshold=DEMO_THRESHOLD_MM, space=DEMO_SPACE, backend="local", workers=workers,
    ).validate()
    factory = EvaluatorFactory("baseline", space.to_dict(), config.failure_threshold, config.seed)
    factory()  # fail fast here on missing weights
    evaluator = make_evaluator(factory, config.backend, config.workers)
    with RichProgress(config.budget, disable=quiet) as show:
        run_search(config, evaluator, space, out_dir, progress=show, model_spec="baseline")
    return Path(write_report(out_dir).html)
