"""The body-model protocol, its output and the registry of backends.

World frame of every body model: metres, +Z up, the subject faces -Y, the subject's
left is +X, the pelvis (root joint) at the origin. A backend maps anatomical pose
angles (``simulator.joints``) and shape values (``simulator.params.ALL_SHAPE_NAMES``)
to a posed mesh, anatomical joint centres and surface keypoints.

Built-in backends (``anny`` in ``simulator.body``; ``smpl``, ``smplh``, ``smplx`` in
``simulator.smpl_body``) are imported on first request and register themselves; both
import this module, never each other.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from simulator.errors import AssetError
from simulator.joints import H36M17, JOINT_NAMES


@dataclass
class BodyOutput:
    """vertices (B, V, 3) float32 metres, world frame; joints (B, len(JOINT_NAMES), 3);
    keypoints {"coco17": (B, 17, 3), "feet6": (B, 6, 3), "h36m17": (B, 17, 3)}.
    rig: the body model's own bone poses, rest bone poses and rest vertices (anny: torch
    tensors "bone_poses", "rest_bone_poses", "rest_vertices"), so the garment rig can
    reuse this evaluation (`BodyRig.from_body_output`); None for other models."""

    vertices: np.ndarray
    joints: np.ndarray
    keypoints: dict[str, np.ndarray]
    rig: dict[str, Any] | None = None


class BodyModel(Protocol):
    name: str
    faces: np.ndarray  # (F, 3) int32
    face_parts: np.ndarray  # (F,) uint8 DensePose 1..24
    vertex_region: np.ndarray  # (V,) int index into simulator.parts.REGION_NAMES
    texcoords: np.ndarray | None  # (V, 2) float32 or None

    def forward(self, pose: np.ndarray, shape: np.ndarray) -> BodyOutput:
        """pose (B, len(POSE_DOFS)) radians; shape (B, 6) phenotypes in [0, 1]
        (``simulator.params.SHAPE_NAMES``) or (B, 10) with the local changes
        (``ALL_SHAPE_NAMES``, what the renderer passes; backends without local changes
        ignore the last four). B may be 1 for either."""
        ...


def h36m_from_joints(joints: np.ndarray) -> np.ndarray:
    """(B, len(JOINT_NAMES), 3) -> (B, 17, 3) in H36M17 order."""
    idx = [JOINT_NAMES.index(n) for n in H36M17]
    return joints[:, idx]


BODY_MODELS: dict[str, Callable[..., BodyModel]] = {}
# Built-in backends: registry name -> module that registers it when imported.
_BUILTIN = {"anny": "simulator.body", "smpl": "simulator.smpl_body", "smplh": "simulator.smpl_body",
            "smplx": "simulator.smpl_body"}


def register_body_model(name: str, factory: Callable[..., BodyModel]) -> None:
    BODY_MODELS[name] = factory


def available_body_models() -> list[str]:
    """Registered and built-in backend names."""
    return sorted(set(BODY_MODELS) | set(_BUILTIN))


@functools.lru_cache(maxsize=4)
def get_body_model(name: str = "anny", **kwargs) -> BodyModel:
    """One instance per process and configuration (models hold large buffers)."""
    if name not in BODY_MODELS and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in BODY_MODELS:
        raise AssetError(f"unknown body model {name!r}; available: {', '.join(available_body_models())}")
    from simulator.threads import torch_threads

    with torch_threads(1):  # the buffers it builds must not depend on the caller's thread count
        return BODY_MODELS[name](**kwargs)
