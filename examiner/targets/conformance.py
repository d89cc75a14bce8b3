"""Conformance checks any target can run (``examiner targets check SPEC``).

They check the contract, not accuracy: a declared convention and outputs, the right
shapes, no infrastructure failures on ordinary input, same answer twice, same answer
batched and one by one, metres (not millimetres) for 3D, confidences in [0, 1], and a
clean close. "no_detection" is allowed: a model may miss a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from examiner.targets.base import (
    Prediction,
    TargetBatch,
    TargetModel,
    checked_predict,
    validate_declaration,
)

INFRA_FAILURES = ("exception", "crash", "timeout", "protocol", "shape", "nan")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str = ""


def _infra(pred: Prediction) -> list[str]:
    return [f"{i}: {f}" for i, f in enumerate(pred.failures or []) if f is not None and f.kind in INFRA_FAILURES]


def _close(a: np.ndarray | None, b: np.ndarray | None, ok: np.ndarray, atol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.allclose(a[ok], b[ok], atol=atol, equal_nan=True))


def check_target(model: TargetModel, batch: TargetBatch, atol_m: float = 1e-3, atol_px: float = 0.5) -> list[Check]:
    """Run the checks on one batch (>= 2 images of people). Returns every check's result."""
    checks: list[Check] = []

    def add(name: str, passed: bool, message: str = "") -> None:
        checks.append(Check(name, bool(passed), message))

    try:
        validate_declaration(model)
        add("declaration", True)
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        add("declaration", False, str(e))
        return checks
    first = checked_predict(model, batch)
    infra = _infra(first)
    add("no infrastructure failures", not infra, "; ".join(infra[:3]))
    add("one result per image", len(first) == len(batch), f"{len(first)} results for {len(batch)} images")
    for key in ("joints2d", "joints3d"):
        if key in model.outputs:
            add(f"declared {key} present", getattr(first, key) is not None)
    ok = first.ok
    add("at least one usable prediction", bool(ok.any()), f"failures: {[str(f) for f in first.failures or []][:3]}")
    if not ok.any():
        return checks
    second = checked_predict(model, batch)
    same = _close(first.joints3d, second.joints3d, ok & second.ok, atol_m) and _close(
        first.joints2d, second.joints2d, ok & second.ok, atol_px
    )
    add("deterministic", same, "two runs on the same batch differ")
    singles = [checked_predict(model, batch.subset([i])) for i in range(len(batch))]
    both = ok & np.array([s.ok[0] for s in singles])
    if first.joints3d is not None:
        one = np.concatenate([s.joints3d for s in singles])  # type: ignore[misc]
        add("batched == one by one (3D)", _close(first.joints3d, one, both, atol_m))
    if first.joints2d is not None:
        one2 = np.concatenate([s.joints2d for s in singles])  # type: ignore[misc]
        add("batched == one by one (2D)", _close(first.joints2d, one2, both, atol_px))
    if first.joints3d is not None:
        j = first.joints3d[ok].astype(np.float64)
        spread = np.linalg.norm(j - j.mean(axis=1, keepdims=True), axis=-1).max()
        add("3D in metres", 0.05 < spread < 3.0, f"joints spread {spread:.3g} from their centroid (expected 0.05-3 m)")
        if first.frame == "camera":
            add("camera frame in front of camera", bool(np.all(j[..., 2].mean(axis=1) > 0)), "mean depth <= 0")
    if first.joints2d is not None:
        h, w = batch.image_size
        p = first.joints2d[ok].astype(np.float64)
        # Joints of body parts outside the frame may lie outside the image (a portrait has
        # no legs), but not most of them; normalised [0, 1] coordinates have no spread.
        inside = np.mean((p[..., 0] >= 0) & (p[..., 0] <= w) & (p[..., 1] >= 0) & (p[..., 1] <= h), axis=1)
        spread = float(np.min(np.ptp(p, axis=1).max(axis=-1)))
        add("2D in image pixels", bool(inside.min() >= 0.25) and spread > 4.0,
            f"as few as {inside.min():.0%} of a sample's joints inside the image, smallest spread {spread:.3g} px")
    if first.confidence is not None:
        c = first.confidence[ok]
        add("confidence in [0, 1]", bool(np.all((c >= -1e-6) & (c <= 1 + 1e-6))), f"range {c.min():.3g}..{c.max():.3g}")
    try:
        model.close()
        model.close()
        add("close twice", True)
    except Exception as e:  # noqa: BLE001
        add("close twice", False, str(e))
    return checks
