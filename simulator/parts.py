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


def face_parts(
    region_of_vertex: np.ndarray,
    faces: np.ndarray,
    rest_vertices: np.ndarray,
    forward: np.ndarray = np.array([0.0, -1.0, 0.0]),
    left: np.ndarray = np.array([1.0, 0.0, 0.0]),
) -> np.ndarray:
    """Per-face DensePose index.

    region_of_vertex: (V,) int index into REGION_NAMES; faces (F, 3) int;
    rest_vertices (V, 3) metres in the body frame. Returns (F,) uint8 in 1..24.
    """
    fr = region_of_vertex[faces]  # (F, 3)
    # Majority region of the three vertices (ties: the first vertex's region).
    same01 = fr[:, 0] == fr[:, 1]
    same12 = fr[:, 1] == fr[:, 2]
    region = np.where(same01 | (fr[:, 0] == fr[:, 2]), fr[:, 0], np.where(same12, fr[:, 1], fr[:, 0]))
    tri = rest_vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centroid = tri.mean(axis=1)
    is_front = normals @ forward > 0
    is_left = centroid @ left > 0
    out = np.zeros(len(faces), dtype=np.uint8)
    for r, name in enumerate(REGION_NAMES):
        a, b = COARSE_REGIONS[name]
        sel = region == r
        if name == "head":
            out[sel] = np.where(is_left[sel], b, a)
        else:
            out[sel] = np.where(is_front[sel], b, a)
    return out
