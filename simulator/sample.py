"""What the simulator returns: one rendered scene with its full ground truth.

Camera frame convention (keypoints 3D, extrinsics, intrinsics): OpenCV, +X right,
+Y down, +Z forward from the camera centre, metres. Pixel coordinates: (x, y), x to the right,
y down, the centre of the top-left pixel at (0.5, 0.5) (pyrender / OpenGL convention).
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.params import SceneParams

# Keypoint visibility codes (per joint).
OUT_OF_FRAME = 0
OCCLUDED = 1
VISIBLE = 2


@dataclass
class Keypoints:
    """Keypoints of one convention.

    names: (J,) joint names; xy: (J, 2) float32 pixels; xyz: (J, 3) float32 metres in the
    camera frame; visibility: (J,) int8, one of OUT_OF_FRAME / OCCLUDED / VISIBLE.
    """

    convention: str
    names: tuple[str, ...]
    xy: np.ndarray
    xyz: np.ndarray
    visibility: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "convention": self.convention,
            "names": list(self.names),
            "xy": self.xy.round(3).tolist(),
            "xyz": self.xyz.round(5).tolist(),
            "visibility": self.visibility.tolist(),
        }


@dataclass
class Sample:
    """One scene.

    rgb (H, W, 3) uint8; mask (H, W) bool person pixels (occluder excluded);
    depth (H, W) float32 metres along the optical axis, 0 where no surface;
    parts (H, W) uint8 DensePose part index 1..24 on the person, 0 elsewhere
    (see ``simulator.parts.DENSEPOSE_PARTS``); keypoints by convention name
    ("coco17", "feet6", "h36m17"); intrinsics K (3, 3); extrinsics (4, 4) world -> camera
    (OpenCV); bbox (4,) float32 xyxy pixels of the visible person; iuv (H, W, 3) float32
    (part, U, V) when requested; clothing_mask (H, W) bool pixels of garments (a subset of
    `mask`: the person mask includes clothing, and `parts` labels clothed pixels with the
    body part underneath, as DensePose annotates clothed people); mesh_detail: which level
    of detail of the body mesh was drawn ("full" or "low", see ``simulator.lod``);
    occlusion: for each body region an occluder can cover (``simulator.params.OCCLUDER_PARTS``),
    the fraction of its pixels the occluder hides, measured against the part map rendered
    without it (None for a region not in view; empty without an occluder); camera: the
    camera as rendered, with the distance, offsets and elevation that framing, truncation
    and the floor resolved; ground_height: world z (m) of the floor (the body's lowest point).
    renderer: which renderer drew `rgb` ("pyrender" or "blender"; the ground truth always
    comes from the pyrender pass at the same camera); renderer_mask: that renderer's own
    person mask (Blender's object-index pass), for checking pixel alignment.
    """

    rgb: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    parts: np.ndarray
    keypoints: dict[str, Keypoints]
    K: np.ndarray
    extrinsics: np.ndarray
    bbox: np.ndarray
    params: SceneParams
    plausible: bool = True
    plausibility: dict[str, Any] = field(default_factory=dict)
    iuv: np.ndarray | None = None
    vertex_ids: np.ndarray | None = None
    joints_world: np.ndarray | None = None
    clothing_mask: np.ndarray | None = None
    mesh_detail: str = "full"
    occlusion: dict[str, float | None] = field(default_factory=dict)
    camera: Any = None
    ground_height: float | None = None
    renderer: str = "pyrender"
    renderer_mask: np.ndarray | None = None

    def ground_truth(self) -> dict[str, Any]:
        """JSON-serialisable ground truth (everything but the images)."""
        return {
            "params": self.params.to_dict(),
            "keypoints": {k: v.to_dict() for k, v in self.keypoints.items()},
            "K": self.K.tolist(),
            "extrinsics": self.extrinsics.tolist(),
            "bbox": self.bbox.tolist(),
            "image_size": [int(self.rgb.shape[1]), int(self.rgb.shape[0])],
            "plausible": bool(self.plausible),
            "plausibility": self.plausibility,
            "mesh_detail": self.mesh_detail,
            "occlusion": dict(self.occlusion),
            "camera": dataclasses.asdict(self.camera) if self.camera is not None else None,
            "ground_height": self.ground_height,
            **({"renderer": self.renderer} if self.renderer != "pyrender" else {}),
        }
