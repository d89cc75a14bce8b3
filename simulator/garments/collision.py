"""Garment-body interpenetration: measure it and push offending vertices out.

A garment vertex is *inside* the body when it lies behind the tangent plane of its
nearest body vertex (offset along that vertex's normal < 0), the test TailorNet's
`remove_interpenetration_fast` uses. The push-out moves such vertices along that normal
to `thickness` (5 mm: cloth faces span chords of the curved body) in front of the surface; it is a post-process on the prediction, applied
after the learned model and reported separately in the model card.
"""

from __future__ import annotations

import numpy as np

from simulator.parts import REGION_NAMES


class BodyCollider:
    """Nearest-vertex signed offsets against the posed body (head and hands excluded:
    no garment reaches them)."""

    def __init__(self, rig, regions: tuple[str, ...] | None = None) -> None:
        from simulator.garments.rig import _Incidence

        if regions is None:
            skip = [REGION_NAMES.index(r) for r in ("head", "left_hand", "right_hand")]
            self.ids = np.flatnonzero(~np.isin(rig.vertex_region, skip))
        else:
            self.ids = rig.region_ids(regions)
        is_col = np.zeros(rig.n_vertices, dtype=bool)
        is_col[self.ids] = True
        faces = rig.faces[is_col[rig.faces].any(1)]
        self._inc = _Incidence(faces, rig.n_vertices)
        self._near = np.unique(faces)  # colliders and their one-ring (for normals)
        from scipy.sparse import csr_matrix

        self._weights = csr_matrix(rig.weights[self._near])


    def skin(self, rig, rest_vertices: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        """Posed positions of this collider's body vertices only, (V, 3) with the other rows
        zero (cheaper than posing the whole body)."""
        from simulator.garments.rig import skin

        out = np.zeros_like(rest_vertices)
        out[self._near] = skin(rest_vertices[self._near], self._weights, transforms[None])[0]
        return out

    def signed_offset(self, x: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (N, 3) garment, body (V, 3) posed body, same frame -> offset (N,) metres along
        the nearest body vertex normal (negative = inside) and that normal (N, 3)."""
        from scipy.spatial import cKDTree

        pts = body[self.ids]
        nrm = self._inc.normals(body)[self.ids]
        _, near = cKDTree(pts, balanced_tree=False, compact_nodes=False).query(x)
        return np.einsum("nd,nd->n", x - pts[near], nrm[near]), nrm[near]

    def inside_fraction(self, x: np.ndarray, body: np.ndarray) -> float:
        off, _ = self.signed_offset(x, body)
        return float((off < 0).mean())

    def push_out(self, x: np.ndarray, body: np.ndarray, thickness: float = 0.005) -> tuple[np.ndarray, float]:
        """Returns the corrected garment (N, 3) and the fraction of vertices that were inside."""
        off, nrm = self.signed_offset(x, body)
        inside = off < 0
        fix = off < thickness
        out = x.copy()
        out[fix] += (thickness - off[fix])[:, None] * nrm[fix]
        return out, float(inside.mean())
