"""`examiner demo`: the main job on the embedded default.

A short failure search against the bundled baseline network over pose and camera, then
the HTML report. Equivalent to

    examiner run --model baseline --space pose,camera --strategy marl --agents 4 \
        --budget 400 --seed 0 --workers 2 --threshold T --out demo_out

where T is the demo's failure threshold (PA-MPJPE, mm): the baseline is a deliberately
small network, so the demo calls a scene a failure when its error is well above the
baseline's held-out error (`DEMO_THRESHOLD_MM`) rather than at PoseExaminer's 90 mm.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DEMO_MARKER = ".examiner-demo"
DEMO_THRESHOLD_MM = 150.0


def run_demo(out: str = "demo_out", seed: int = 0, budget: int = 400, workers: int = 2, quiet: bool = False) -> Path:
    from examiner.search.cli import run_command

    out_dir = Path(out)
    if out_dir.exists():
        if not (out_dir / DEMO_MARKER).exists():
            from simulator.errors import PoseExaminerError

            raise PoseExaminerError(f"{out_dir} exists and is not a demo output; pass another --out")
        shutil.rmtree(out_dir)  # the demo's own previous output
    out_dir.mkdir(parents=True)
    (out_dir / DEMO_MARKER).write_text("written by `examiner demo`; safe to delete\n")
    run_command(
        model="baseline", space="pose,camera", budget=budget, agents=4, seed=seed, strategy="marl",
        out=out_dir, resume=None, config=None, backend="local", workers=workers,
        threshold=DEMO_THRESHOLD_MM, metric="pa_mpjpe", json_out=False, quiet=quiet, report=True,
    )
    return out_dir / "report.html"
