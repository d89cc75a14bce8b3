"""The bundled baseline network (``baseline`` spec).

Looks for weights in ``assets/baseline/`` (or ``$POSEEXAMINER_BASELINE_DIR``):
- ``baseline.onnx`` with its sidecar ``baseline.yaml``: run through the ONNX adapter;
- otherwise a torch checkpoint loaded by ``examiner.training.baseline.load_target(path)`` (the
  training code provides it).
Without weights it raises a one-line error that says how to make them.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from examiner.targets.base import TargetError, TargetModel


def baseline_dir() -> Path:
    env = os.environ.get("POSEEXAMINER_BASELINE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "assets" / "baseline"


def baseline_available() -> bool:
    d = baseline_dir()
    return (d / "baseline.onnx").is_file() or (d.is_dir() and any(d.glob("*.pt")))


def make_baseline(options: dict[str, str]) -> TargetModel:
    d = baseline_dir()
    onnx = d / "baseline.onnx"
    if onnx.is_file():
        from examiner.targets.onnx_adapter import OnnxTarget

        threads = int(options.pop("threads", "0"))
        if options:
            raise TargetError(f"unknown baseline option(s) {sorted(options)}; valid: threads")
        target = OnnxTarget(onnx, threads=threads)
        target.name = "baseline"
        return target
    checkpoints = sorted(d.glob("*.pt")) if d.is_dir() else []
    if checkpoints:
        try:
            module = importlib.import_module("examiner.training.baseline")
        except ImportError:
            raise TargetError(
                f"baseline weights found in {d} but examiner.training.baseline (the network code) is missing; "
                "reinstall PoseExaminer"
            ) from None
        return module.load_target(checkpoints[0], **options)
    raise TargetError(
        f"baseline weights are missing from {d}; train them with `examiner train-baseline` "
        "(or set POSEEXAMINER_BASELINE_DIR to a folder holding baseline.onnx + baseline.yaml)"
    )
