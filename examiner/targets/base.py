"""The target-model contract: what a model is given, what it returns, how failures are kept.

A target sees a `TargetBatch` (images, intrinsics, the person's box, and for white-box
targets the ground truth) and returns a `Prediction` in one declared joint convention.
`checked_predict` wraps any target so that exceptions, NaN and wrong shapes become
per-sample `ModelFailure`s instead of ending the run.
"""

from __future__ import annotations

import abc
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from examiner.conventions import get_convention
from simulator.errors import PoseExaminerError

if TYPE_CHECKING:
    from simulator.sample import Sample

OUTPUT_KINDS = ("joints2d", "joints3d", "vertices", "confidence")
FRAMES = ("root_relative", "camera")

# Failure kinds recorded per sample. "no_detection" is the model saying it found no
# person (a real miss of the model); the others are the model or its process breaking.
FAILURE_KINDS = ("exception", "crash", "timeout", "protocol", "shape", "nan", "no_detection")


class TargetError(PoseExaminerError):
    """A model spec, adapter configuration or model environment is wrong or missing."""


@dataclass(frozen=True)
class ModelFailure:
    """Why one sample has no usable prediction."""

    kind: str
    message: str

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {self.kind!r}")

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class TargetBatch:
    """What a target model is given for B images of the same size.

    images (B, H, W, 3) uint8 RGB; K (B, 3, 3) float32 intrinsics (pixels);
    boxes (B, 4) float32 xyxy pixels, the person's ground-truth box (top-down models get
    it, as in COCO evaluation with given boxes); ground_truth: the B `Sample`s, only for
    targets that declare ``needs_ground_truth`` (white-box targets).
    """

    images: np.ndarray
    K: np.ndarray
    boxes: np.ndarray
    ground_truth: list["Sample"] | None = None

    def __post_init__(self) -> None:
        self.images = np.ascontiguousarray(self.images)
        self.K = np.asarray(self.K, dtype=np.float32)
        self.boxes = np.asarray(self.boxes, dtype=np.float32)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be (B, H, W, 3) uint8, got {self.images.shape} {self.images.dtype}")
        b = self.images.shape[0]
        if self.K.shape != (b, 3, 3):
            raise ValueError(f"K must be ({b}, 3, 3), got {self.K.shape}")
        if self.boxes.shape != (b, 4):
            raise ValueError(f"boxes must be ({b}, 4), got {self.boxes.shape}")
        if self.ground_truth is not None and len(self.ground_truth) != b:
            raise ValueError(f"ground_truth must hold {b} samples, got {len(self.ground_truth)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W)"""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, idx: Sequence[int]) -> "TargetBatch":
        idx = list(idx)
        return TargetBatch(
            images=self.images[idx],
            K=self.K[idx],
            boxes=self.boxes[idx],
            ground_truth=[self.ground_truth[i] for i in idx] if self.ground_truth is not None else None,
        )

    @classmethod
    def from_samples(cls, samples: Sequence["Sample"], with_ground_truth: bool = False) -> "TargetBatch":
        if not samples:
            raise ValueError("no samples")
        sizes = {s.rgb.shape for s in samples}
        if len(sizes) != 1:
            raise ValueError(f"samples in one batch must share an image size, got {sorted(sizes)}")
        return cls(
            images=np.stack([s.rgb for s in samples]),
            K=np.stack([np.asarray(s.K, dtype=np.float32) for s in samples]),
            boxes=np.stack([np.asarray(s.bbox, dtype=np.float32) for s in samples]),
            ground_truth=list(samples) if with_ground_truth else None,
        )


@dataclass
class Prediction:
    """What a target returns for a batch of B images.

    convention: joint convention name (see ``examiner.conventions``), J joints.
    joints3d (B, J, 3) float32 metres; ``frame`` says whether they are root-relative
    (any origin: metrics re-centre on the convention's root) or in the OpenCV camera frame.
    joints2d (B, J, 2) float32 pixels of the input image.
    vertices (B, V, 3) float32 metres, same frame as joints3d, when the model outputs a mesh.
    confidence (B, J) float32 in [0, 1].
    failures: per sample, None or the `ModelFailure` that makes its outputs unusable
    (their rows are NaN).
    seconds: wall time the model took for the batch (set by `checked_predict`).
    inference_seconds: the model's own compute time when the adapter can tell it apart
    from transfer (worker adapters report the time spent in the worker's predict); None
    for in-process models, where it equals ``seconds``.
    """

    convention: str
    joints3d: np.ndarray | None = None
    joints2d: np.ndarray | None = None
    frame: str = "root_relative"
    vertices: np.ndarray | None = None
    confidence: np.ndarray | None = None
    failures: list[ModelFailure | None] | None = None
    seconds: float = 0.0
    inference_seconds: float | None = None

    def __len__(self) -> int:
        for a in (self.joints3d, self.joints2d, self.vertices, self.confidence):
            if a is not None:
                return int(a.shape[0])
        return len(self.failures or [])

    @property
    def ok(self) -> np.ndarray:
        """(B,) bool: samples without a failure."""
        n = len(self)
        if self.failures is None:
            return np.ones(n, dtype=bool)
        return np.array([f is None for f in self.failures], dtype=bool)

    @classmethod
    def all_failed(cls, model: "TargetModel", n: int, failure: ModelFailure) -> "Prediction":
        return _empty_prediction(model, n, [failure] * n)


def _empty_prediction(model: "TargetModel", n: int, failures: list[ModelFailure | None]) -> Prediction:
    j = get_convention(model.convention).num_joints
    nan = np.float32(np.nan)
    return Prediction(
        convention=model.convention,
        joints3d=np.full((n, j, 3), nan, np.float32) if "joints3d" in model.outputs else None,
        joints2d=np.full((n, j, 2), nan, np.float32) if "joints2d" in model.outputs else None,
        frame=model.frame,
        confidence=np.full((n, j), nan, np.float32) if "confidence" in model.outputs else None,
        failures=failures,
    )


class TargetModel(abc.ABC):
    """A model under examination.

    Subclasses set ``convention`` (a name from ``examiner.conventions``), ``outputs`` (a
    subset of OUTPUT_KINDS), ``frame`` for joints3d, and implement ``predict``. ``max_batch``
    bounds how many images one ``predict`` call receives.
    """

    name: str = "model"
    convention: str = "coco17"
    outputs: frozenset[str] = frozenset({"joints2d", "joints3d"})
    frame: str = "root_relative"
    max_batch: int = 16
    needs_ground_truth: ClassVar[bool] = False

    @abc.abstractmethod
    def predict(self, batch: TargetBatch) -> Prediction:
        """Predictions for every image of the batch (B = len(batch))."""

    def close(self) -> None:
        """Release processes / sessions. Safe to call twice."""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "convention": self.convention,
            "outputs": sorted(self.outputs),
            "frame": self.frame,
            "max_batch": self.max_batch,
            "needs_ground_truth": self.needs_ground_truth,
        }

    def __enter__(self) -> "TargetModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate_declaration(model: TargetModel) -> None:
    """Raise TargetError when a model declares an unknown convention / output / frame."""
    get_convention(model.convention)  # raises on unknown names
    bad = set(model.outputs) - set(OUTPUT_KINDS)
    if bad:
        raise TargetError(f"model {model.name!r} declares unknown outputs {sorted(bad)}; valid: {OUTPUT_KINDS}")
    if not {"joints2d", "joints3d"} & set(model.outputs):
        raise TargetError(f"model {model.name!r} must output joints2d and/or joints3d")
    if model.frame not in FRAMES:
        raise TargetError(f"model {model.name!r} declares frame {model.frame!r}; valid: {FRAMES}")


def check_prediction(model: TargetModel, pred: Prediction, n: int) -> Prediction:
    """Per-sample validation of a raw prediction: wrong shapes fail the whole batch
    (kind "shape"), non-finite rows fail their sample (kind "nan"). Returns a new
    Prediction with float32 arrays, failures filled in and failed rows set to NaN."""
    j = get_convention(model.convention).num_joints
    failures: list[ModelFailure | None] = list(pred.failures) if pred.failures is not None else [None] * n
    if len(failures) != n:
        return Prediction.all_failed(model, n, ModelFailure("shape", f"{len(failures)} failure entries for {n} images"))
    if pred.convention != model.convention:
        return Prediction.all_failed(
            model, n, ModelFailure("shape", f"prediction convention {pred.convention!r} != declared {model.convention!r}")
        )
    expected = {"joints3d": (n, j, 3), "joints2d": (n, j, 2), "confidence": (n, j)}
    arrays: dict[str, np.ndarray | None] = {}
    for key in ("joints3d", "joints2d", "confidence", "vertices"):
        value = getattr(pred, key)
        if value is None:
            if key in model.outputs and key != "confidence" and key != "vertices":
                return Prediction.all_failed(model, n, ModelFailure("shape", f"declared output {key} is missing"))
            arrays[key] = None
            continue
        try:
            arr = np.array(value, dtype=np.float32)
        except (TypeError, ValueError) as e:
            return Prediction.all_failed(model, n, ModelFailure("shape", f"{key} is not numeric: {e}"))
        want = expected.get(key)
        if key == "vertices":
            ok_shape = arr.ndim == 3 and arr.shape[0] == n and arr.shape[2] == 3
            want_txt = f"({n}, V, 3)"
        else:
            ok_shape = arr.shape == want
            want_txt = str(want)
        if not ok_shape:
            return Prediction.all_failed(model, n, ModelFailure("shape", f"{key} has shape {arr.shape}, expected {want_txt}"))
        arrays[key] = arr
    for i in range(n):
        if failures[i] is not None:
            continue
        for key in ("joints3d", "joints2d", "vertices"):
            arr = arrays[key]
            if arr is not None and not np.all(np.isfinite(arr[i])):
                failures[i] = ModelFailure("nan", f"{key} contains NaN or infinity")
                break
    out = replace(pred, failures=failures, frame=pred.frame or model.frame, **arrays)
    bad = ~out.ok
    if bad.any():
        for key in ("joints3d", "joints2d", "vertices", "confidence"):
            arr = getattr(out, key)
            if arr is not None:
                arr[bad] = np.nan
    return out


def checked_predict(model: TargetModel, batch: TargetBatch) -> Prediction:
    """Run ``model.predict`` on the batch in chunks of ``model.max_batch`` and never raise
    for model misbehaviour: exceptions, wrong shapes and NaN become per-sample failures."""
    n = len(batch)
    if model.needs_ground_truth and batch.ground_truth is None:
        raise TargetError(f"target {model.name!r} is white-box and needs ground truth in the batch")
    parts: list[Prediction] = []
    t0 = time.perf_counter()
    step = max(1, int(model.max_batch))
    for start in range(0, n, step):
        idx = list(range(start, min(n, start + step)))
        sub = batch.subset(idx) if len(idx) != n else batch
        try:
            raw = model.predict(sub)
        except PoseExaminerError:
            raise  # configuration errors are the user's to fix, not per-sample failures
        except Exception as e:  # noqa: BLE001 - a model bug must not end the run
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            parts.append(Prediction.all_failed(model, len(idx), ModelFailure("exception", last)))
            continue
        if not isinstance(raw, Prediction):
            parts.append(
                Prediction.all_failed(
                    model, len(idx), ModelFailure("shape", f"predict returned {type(raw).__name__}, not Prediction")
                )
            )
            continue
        parts.append(check_prediction(model, raw, len(idx)))
    out = concat_predictions(parts)
    out.seconds = time.perf_counter() - t0
    return out


def concat_predictions(parts: Sequence[Prediction]) -> Prediction:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]

    def cat(key: str) -> np.ndarray | None:
        arrays = [getattr(p, key) for p in parts]
        if any(a is None for a in arrays):
            return None
        if key == "vertices" and len({a.shape[1:] for a in arrays}) != 1:
            return None
        return np.concatenate(arrays, axis=0)

    failures: list[ModelFailure | None] = []
    for p in parts:
        failures.extend(p.failures if p.failures is not None else [None] * len(p))
    return Prediction(
        convention=first.convention,
        joints3d=cat("joints3d"),
        joints2d=cat("joints2d"),
        frame=first.frame,
        vertices=cat("vertices"),
        confidence=cat("confidence"),
        failures=failures,
        seconds=sum(p.seconds for p in parts),
        inference_seconds=None if all(p.inference_seconds is None for p in parts)
        else sum(p.inference_seconds or 0.0 for p in parts),
    )
