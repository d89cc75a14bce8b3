"""MediaPipe BlazePose full (model_complexity=1) through a worker in its own environment.

``mediapipe==0.10.21`` needs numpy<2, so it cannot share the examiner's environment. The
recipe below is the lean install (``--no-deps`` plus only what the pose solution imports
at run time); its weights ship in the wheel, so nothing downloads at run time.
Complexity 0 (lite) and 2 (heavy) fetch their weights on first use and are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examiner.targets.base import TargetError
from examiner.targets.envs import BUILTIN_ENVS, EnvRecipe, WorkerSpec, env_path, env_python, is_installed

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
WORKER_SCRIPT = RUNTIME_DIR / "mediapipe_worker.py"

MEDIAPIPE_VERSION = "0.10.21"


def _worker_spec(env: Path, crop: str = "box", box_scale: float = 1.25) -> WorkerSpec:
    return WorkerSpec(
        name="mediapipe",
        command=(str(env_python(env)), str(WORKER_SCRIPT), "--crop", crop, "--box-scale", str(box_scale)),
        timeout_s=30.0,
        startup_timeout_s=120.0,
        env={"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"},
        description=f"MediaPipe BlazePose full {MEDIAPIPE_VERSION} (model_complexity=1)",
    )


BUILTIN_ENVS["mediapipe"] = EnvRecipe(
    name="mediapipe",
    python="3.11",
    first=(f"mediapipe=={MEDIAPIPE_VERSION}",),
    then=(
        "numpy<2",
        "protobuf<5",
        "absl-py",
        "attrs",
        "flatbuffers",
        "opencv-python-headless<4.12",
        "matplotlib",
    ),
    check=(
        "import numpy, mediapipe as mp; "
        "p = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1); "
        "p.process(numpy.zeros((64, 64, 3), numpy.uint8)); p.close()"
    ),
    description=f"MediaPipe BlazePose full {MEDIAPIPE_VERSION} (numpy<2 environment)",
    make_worker=_worker_spec,
)


def make_mediapipe(options: dict[str, str]) -> Any:
    """Factory for the ``mediapipe`` spec. Options: model_complexity (only 1),
    crop=box|full, box_scale, timeout (s)."""
    from examiner.targets.worker import WorkerTarget

    complexity = options.pop("model_complexity", "1")
    if complexity != "1":
        raise TargetError(
            f"mediapipe model_complexity={complexity} downloads its weights at run time, which PoseExaminer "
            "does not do; use model_complexity=1 (the full model, shipped in the wheel)"
        )
    crop = options.pop("crop", "box")
    if crop not in ("box", "full"):
        raise TargetError(f"mediapipe crop must be 'box' or 'full', got {crop!r}")
    box_scale = float(options.pop("box_scale", "1.25"))
    timeout = float(options.pop("timeout", "30"))
    if options:
        raise TargetError(
            f"unknown mediapipe option(s) {sorted(options)}; valid: model_complexity, crop, box_scale, timeout"
        )
    if not is_installed("mediapipe"):
        raise TargetError("the MediaPipe environment is not installed; run `examiner targets install mediapipe`")
    spec = _worker_spec(env_path("mediapipe"), crop=crop, box_scale=box_scale)
    spec = WorkerSpec(**{**spec.to_dict(), "command": spec.command, "timeout_s": timeout})
    return WorkerTarget(spec, runtime_dir=RUNTIME_DIR)
