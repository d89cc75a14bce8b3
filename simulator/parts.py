"""DensePose body parts.

DensePose labels 24 surface parts (index 0 = background). DensePose publishes the
pairing (which indices belong to which limb) but not which index of a pair is the front
and which the back; our convention, used everywhere in PoseExaminer, is: the first index
of a pair is the back (posterior) surface, the second the front (anterior) surface;
for the head, 23 is the subject's right half and 24 the left half.

Parts are assigned per triangle from the body model's skinning weights (each vertex
goes to the coarse region whose bones carry most of its weight; a triangle takes the
region most of its vertices have), then split front/back by the sign of the rest-pose
face normal along the body's forward axis (-Y), and the head left/right by the sign of X.
"""

from __future__ import annotations

import numpy as np

DENSEPOSE_PARTS: tuple[str, ...] = (
    "background",
    "torso_back", "torso_front",
    "right_hand", "left_hand", "left_foot", "right_foot",
    "upper_leg_right_back", "upper_leg_left_back",
    "upper_leg_right_front", "upper_leg_left_front",
    "lower_leg_right_back", "lower_leg_left_back",
    "lower_leg_right_front", "lower_leg_left_front",
    "upper_arm_left_back", "upper_arm_right_back",
    "upper_arm_left_front", "upper_arm_right_front",
    "lower_arm_left_back", "lower_arm_right_back",
    "lower_arm_left_front", "lower_arm_right_front",
    "head_right", "head_left",
)

# Coarse regions -> (back index, front index); hands / feet are not split.
COARSE_REGIONS: dict[str, tuple[int, int]] = {
    "torso": (1, 2),
    "right_hand": (3, 3),
    "left_hand": (4, 4),
    "left_foot": (5, 5),
    "right_foot": (6, 6),
    "upper_leg_right": (7, 9),
    "upper_leg_left": (8, 10),
    "lower_leg_right": (11, 13),
    "lower_leg_left": (12, 14),
    "upper_arm_left": (15, 17),
    "upper_arm_right": (16, 18),
    "lower_arm_left": (19, 21),
    "lower_arm_right": (20, 22),
    "head": (23, 24),  # (right, left)
}
REGION_NAMES = tuple(COARSE_REGIONS)
_PART_TABLE = np.array([COARSE_REGIONS[n] for n in REGION_NAMES], dtype=np.uint8)  # (R, 2)


def face_parts(
    region_of_vertex: np.ndarray,
    faces: np.ndarray,
    rest_vertices: np.ndarray,
    forward: np.ndarray = np.array([0.0, -1.0, 0.0]),
    left: np.ndarray = np.array([1.0, 0.0, 0.0]),
    corners: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-face DensePose index.

    region_of_vertex: (V,) int index into REGION_NAMES; faces (F, 3) int;
    rest_vertices (V, 3) metres in the body frame; corners: faces' three columns as
    contiguous arrays when the caller keeps them (garments label a template's faces once
    per style). Returns (F,) uint8 in 1..24.
    """
    f0, f1, f2 = corners if corners is not None else (faces[:, 0], faces[:, 1], faces[:, 2])
    r0, r1, r2 = region_of_vertex[f0], region_of_vertex[f1], region_of_vertex[f2]
    # Majority region of the three vertices (ties: the first vertex's region).
    region = np.where((r0 == r1) | (r0 == r2), r0, np.where(r1 == r2, r1, r0))
    head = region == REGION_NAMES.index("head")
    if np.array_equal(forward, (0.0, -1.0, 0.0)) and np.array_equal(left, (1.0, 0.0, 0.0)):
        # The default axes: only the normal's y and the centroid's x are needed (the same
        # products and signs as the general case below).
        x, z = np.ascontiguousarray(rest_vertices[:, 0]), np.ascontiguousarray(rest_vertices[:, 2])
        x0, z0 = x[f0], z[f0]
        ux, uz, wx, wz = x[f1] - x0, z[f1] - z0, x[f2] - x0, z[f2] - z0
        is_front = -(uz * wx - ux * wz) > 0
        is_left = (x0 + x[f1] + x[f2]) / 3.0 > 0 if head.any() else None
    else:
        tri = rest_vertices[faces]
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        centroid = tri.mean(axis=1)
        is_front = normals @ forward > 0
        is_left = centroid @ left > 0
    # (region, side) -> part; side is left for the head, front for the rest; 0 for regions
    # outside REGION_NAMES.
    known = (region >= 0) & (region < len(REGION_NAMES))
    side = np.where(head, is_left, is_front) if is_left is not None else is_front
    return np.where(known, _PART_TABLE[np.where(known, region, 0), side.astype(np.intp)], 0).astype(np.uint8)
