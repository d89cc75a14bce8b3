"""Garment-body interpenetration: measure it and push offending vertices out.

A garment vertex is *inside* the body when it lies behind the tangent plane of its
nearest body vertex (offset along that vertex's normal < 0), the test TailorNet's
`remove_interpenetration_fast` uses. The push-out moves such vertices along that normal
to `thickness` (5 mm: cloth faces span chords of the curved body) in front of the surface;
it is a post-process on the prediction, applied after the learned model and reported
separately in the model card.

The run-time path (`Wardrobe.dress`) poses only the collider's body vertices and the
faces around them, batched (`BodyCollider.pose_surface`), and computes vertex normals from
those faces only (`SurfacePatch`); `push_out` / `signed_offset` on a whole posed body are
the same test on full arrays (the benchmark's and the tests' judge).
"""

from __future__ import annotations

import numpy as np

from simulator.parts import REGION_NAMES


class SurfacePatch:
    """Area-weighted vertex normals of some body vertices (`rows`), computed from the faces
    touching them only, for a batch of bodies at once.

    verts: the body vertices those faces use (positions needed); rows index into the body
    mesh; `row_in_verts` maps rows to positions in `verts`."""

    def __init__(self, faces: np.ndarray, rows: np.ndarray, n_vertices: int) -> None:
        from scipy.sparse import csr_matrix

        self.rows = np.asarray(rows, dtype=np.int64)
        is_row = np.zeros(n_vertices, dtype=bool)
        is_row[self.rows] = True
        f = faces[is_row[faces].any(1)]
        self.verts = np.unique(f)
        vloc = -np.ones(n_vertices, dtype=np.int64)
        vloc[self.verts] = np.arange(len(self.verts))
        self.row_in_verts = vloc[self.rows]
        self.local_faces = vloc[f]
        self._corners = tuple(np.ascontiguousarray(self.local_faces[:, i]) for i in range(3))
        rloc = -np.ones(n_vertices, dtype=np.int64)
        rloc[self.rows] = np.arange(len(self.rows))
        self.row_index = rloc  # body vertex -> row (or -1)
        corner = f.reshape(-1)
        keep = is_row[corner]
        cols = np.repeat(np.arange(len(f)), 3)[keep]
        self.matrix = csr_matrix((np.ones(int(keep.sum())), (rloc[corner[keep]], cols)), shape=(len(self.rows), len(f)))

    def normals(self, p: np.ndarray) -> np.ndarray:
        """p (B, len(verts), 3) positions of `verts` -> (B, len(rows), 3) unit normals."""
        B = len(p)
        f0, f1, f2 = self._corners
        pt = np.ascontiguousarray(p.transpose(0, 2, 1))  # (B, 3, M): one coordinate per row
        fn = np.empty((len(f0), B, 3))
        # One coordinate at a time: 1-D gathers and products (about half the time of
        # gathering (B, 3, F) blocks; the same operations, so the same bits).
        for b in range(B):
            x, y, z = pt[b]
            ax, ay, az = x[f0], y[f0], z[f0]
            ux, uy, uz = x[f1] - ax, y[f1] - ay, z[f1] - az
            wx, wy, wz = x[f2] - ax, y[f2] - ay, z[f2] - az
            fn[:, b, 0] = uy * wz - uz * wy
            fn[:, b, 1] = uz * wx - ux * wz
            fn[:, b, 2] = ux * wy - uy * wx
        vn = self.matrix @ fn.reshape(len(f0), 3 * B)
        vn = vn.reshape(len(self.rows), B, 3).transpose(1, 0, 2)
        return vn / np.maximum(np.sqrt(np.einsum("bnd,bnd->bn", vn, vn)), 1e-12)[..., None]


class BodyCollider:
    """Nearest-vertex signed offsets against the posed body (head and hands excluded:
    no garment reaches them)."""

    def __init__(self, rig, regions: tuple[str, ...] | None = None, ids: np.ndarray | None = None) -> None:
        from scipy.sparse import csr_matrix

        if ids is not None:
            self.ids = np.asarray(ids)
        elif regions is None:
            skip = [REGION_NAMES.index(r) for r in ("head", "left_hand", "right_hand")]
            self.ids = np.flatnonzero(~np.isin(rig.vertex_region, skip))
        else:
            self.ids = rig.region_ids(regions)
        self.patch = SurfacePatch(rig.faces, self.ids, rig.n_vertices)
        self._near = self.patch.verts  # colliders and their one-ring (for normals)
        self._weights = csr_matrix(rig.weights[self._near])
        self._n_body = rig.n_vertices

    def skin(self, rig, rest_vertices: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        """Posed positions of this collider's body vertices only, (V, 3) with the other rows
        zero (cheaper than posing the whole body)."""
        out = np.zeros_like(rest_vertices)
        out[self._near] = self.pose_near(rest_vertices[None, self._near], transforms[None])[0]
        return out

    def pose_near(self, rest_near: np.ndarray, transforms: np.ndarray, return_transforms: bool = False):
        """rest_near (B, M, 3) rest positions of `patch.verts`, transforms (B, nb, 4, 4) ->
        posed (B, M, 3): linear blend skinning, one sparse product for the whole batch;
        return_transforms=True: also their blended transforms (B, M, 16)."""
        B, nb = transforms.shape[:2]
        flat = self._weights @ transforms.reshape(B, nb, 16).transpose(1, 0, 2).reshape(nb, 16 * B)  # (M, 16 B)
        T = flat.reshape(len(self._near), B, 4, 4).transpose(1, 0, 2, 3)  # views, no copy
        posed = np.einsum("bmij,bmj->bmi", T[..., :3, :3], rest_near) + T[..., :3, 3]
        if not return_transforms:
            return posed
        # (B, M, 16) contiguous per body (one copy; per-body products on a strided view copy
        # it body by body, page by page).
        return posed, np.ascontiguousarray(flat.reshape(len(self._near), B, 16).transpose(1, 0, 2))

    def pose_surface(self, rest_vertices: np.ndarray, transforms: np.ndarray, return_transforms: bool = False):
        """rest_vertices (B, V, 3), transforms (B, nb, 4, 4) -> posed positions and unit
        normals (B, len(ids), 3) of the collider vertices; return_transforms=True: also the
        blended transforms (B, len(patch.verts), 16) of `patch.verts` (see `near_index`)."""
        posed, T16 = self.pose_near(rest_vertices[:, self._near], transforms, return_transforms=True)
        out = (posed[:, self.patch.row_in_verts], self.patch.normals(posed))
        return out + (T16,) if return_transforms else out

    @property
    def near_index(self) -> np.ndarray:
        """Body vertex -> its index in `patch.verts` (-1 if not there)."""
        if not hasattr(self, "_near_index"):
            self._near_index = -np.ones(self._n_body, dtype=np.int64)
            self._near_index[self._near] = np.arange(len(self._near))
        return self._near_index

    def signed_offset(self, x: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (N, 3) garment, body (V, 3) posed body, same frame -> offset (N,) metres along
        the nearest body vertex normal (negative = inside) and that normal (N, 3)."""
        pts = body[self.ids]
        nrm = self.patch.normals(body[None, self._near])[0]
        return nearest_offsets(x, pts, nrm)

    def inside_fraction(self, x: np.ndarray, body: np.ndarray) -> float:
        off, _ = self.signed_offset(x, body)
        return float((off < 0).mean())

    def push_out(self, x: np.ndarray, body: np.ndarray, thickness: float = 0.005) -> tuple[np.ndarray, float]:
        """Returns the corrected garment (N, 3) and the fraction of vertices that were inside."""
        return push_from(x, *self.signed_offset(x, body), thickness)

    def push_out_posed(self, x: np.ndarray, pts: np.ndarray, nrm: np.ndarray,
                       thickness: float = 0.005) -> tuple[np.ndarray, float]:
        """Same as `push_out` with the collider surface from `pose_surface` (one body):
        x (N, 3), pts / nrm (len(ids), 3)."""
        return push_from(x, *nearest_offsets(x, pts, nrm), thickness)

    def inside_fraction_posed(self, x: np.ndarray, pts: np.ndarray, nrm: np.ndarray) -> float:
        return float((nearest_offsets(x, pts, nrm)[0] < 0).mean())


def nearest_offsets(x: np.ndarray, pts: np.ndarray, nrm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (N, 3) -> offset (N,) along the normal of the nearest of pts (M, 3) (normals nrm
    (M, 3)), and that normal (N, 3)."""
    _, near = nearest_vertex(pts, x)
    n = nrm[near]
    return np.einsum("nd,nd->n", x - pts[near], n), n


def nearest_vertex(pts: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (N,) and index (N,) of the nearest of pts (M, 3) for each of x (N, 3).

    pykdtree: building the tree and querying a garment's ~1-2k vertices against ~2.5k
    body vertices takes about half the time of scipy's cKDTree (same neighbours; the tree
    is rebuilt for every posed body, so build time counts)."""
    from pykdtree.kdtree import KDTree

    pts = np.ascontiguousarray(pts, dtype=np.float64)
    d, i = KDTree(pts, leafsize=16).query(np.ascontiguousarray(x, dtype=np.float64), k=1)
    return d, i.astype(np.int64)


def push_from(x: np.ndarray, off: np.ndarray, nrm: np.ndarray, thickness: float) -> tuple[np.ndarray, float]:
    fix = off < thickness
    out = x.copy()
    out[fix] += (thickness - off[fix])[:, None] * nrm[fix]
    return out, float((off < 0).mean())
