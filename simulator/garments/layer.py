"""Garments in a pyrender scene, for `simulator.renderer.Renderer`.

Per garment type the layer keeps, created once:
* one colour node per fabric pattern (shared vertices, smooth normals, texture
  coordinates, double-sided textured material);
* one segmentation node per DensePose part the garment can cover, with unshared vertices
  (three per face); faces not in that part for the current style are collapsed to a
  point, so the SEG pass labels every garment pixel with the body part underneath while
  the vertex buffers are only overwritten in place (no GL objects per sample).
Segmentation colours: (part, 1, 0) for garment pixels; the body's nodes use (part, 0, 0),
so channel 0 is the part map of the clothed person and channel 1 the clothing mask.
"""

from __future__ import annotations

import numpy as np

from simulator.garments.fabric import PATTERNS, pattern_image
from simulator.garments.spec import GARMENTS, STYLE_NAMES

CLOTH_LABEL = 1


_INCIDENCE: dict[int, object] = {}


def _normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (N, 3) float32 (sparse incidence cached per face array)."""
    inc = _INCIDENCE.get(id(faces))
    if inc is None or inc[0] is not faces:
        from scipy.sparse import csr_matrix

        F = len(faces)
        m = csr_matrix((np.ones(3 * F), (faces.reshape(-1), np.repeat(np.arange(F), 3))), shape=(len(v), F))
        inc = _INCIDENCE[id(faces)] = (faces, m)
    tri = v[faces]
    vn = inc[1] @ np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return (vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _upload(node, data: np.ndarray) -> None:
    """Overwrite a primitive's interleaved vertex buffer in place (or stage it before the
    primitive reaches the GL context)."""
    from OpenGL.GL import GL_ARRAY_BUFFER, glBindBuffer, glBufferSubData

    prim = node.mesh.primitives[0]
    if prim._vaid is None:
        prim.positions = data[:, :3]
        if data.shape[1] >= 6:
            prim.normals = data[:, 3:6]
        return
    buf = np.ascontiguousarray(data, dtype=np.float32)
    glBindBuffer(GL_ARRAY_BUFFER, prim._buffers[0])
    glBufferSubData(GL_ARRAY_BUFFER, 0, buf.nbytes, buf)


def push_outside(inner: np.ndarray, inner_faces: np.ndarray, outer: np.ndarray, gap: float = 0.003) -> np.ndarray:
    """Move vertices of `outer` (N, 3) that lie behind the nearest vertex of the garment
    `inner` (M, 3) out along its normal, so an untucked top covers the waistband."""
    from simulator.garments.collision import nearest_vertex

    lo, hi = inner.min(0) - 0.06, inner.max(0) + 0.06
    cand = np.flatnonzero(np.all((outer > lo) & (outer < hi), axis=1))
    out = outer.copy()
    if not len(cand):
        return out
    n = _normals(inner, inner_faces)
    d, near = nearest_vertex(inner, outer[cand])
    off = np.einsum("nd,nd->n", outer[cand] - inner[near], n[near])
    fix = (off < gap) & (d < 0.06)
    out[cand[fix]] += (gap - off[fix])[:, None] * n[near[fix]]
    return out


class GarmentLayer:
    def __init__(self, scene, pyrender, wardrobe) -> None:
        self.scene, self.pyrender, self.wardrobe = scene, pyrender, wardrobe
        self._colour: dict[tuple[str, str], object] = {}
        self._materials: dict[tuple[str, str], object] = {}
        self._seg: dict[str, dict[int, object]] = {}
        self._active: list[tuple[str, str]] = []
        self._active_seg: list[object] = []

    def _ensure(self, name: str) -> None:
        if name in self._seg:
            return
        pr = self.pyrender
        geom = self.wardrobe.geometry(name)
        faces = geom.faces.astype(np.uint32)
        uv = self.wardrobe.uv(name)
        v0 = np.zeros((geom.n_vertices, 3), np.float32)
        for pattern in PATTERNS:
            tex = pr.Texture(source=pattern_image(pattern), source_channels="RGB")
            mat = pr.MetallicRoughnessMaterial(
                baseColorFactor=[1.0, 1.0, 1.0, 1.0], baseColorTexture=tex, metallicFactor=0.0,
                roughnessFactor=0.95, doubleSided=True,
            )
            prim = pr.Primitive(positions=v0, normals=v0 + [0, 0, 1], texcoord_0=uv, indices=faces, material=mat)
            node = self.scene.add(pr.Mesh([prim]))
            node.mesh.is_visible = False
            self._colour[(name, pattern)] = node
            self._materials[(name, pattern)] = mat
        # Every part this garment can cover, over the corners of the style box.
        parts: set[int] = set()
        for corner in np.ndindex(*(2,) * len(STYLE_NAMES)):
            parts |= set(np.unique(geom.style_parts(np.array(corner, dtype=float))).tolist())
        self._seg[name] = {}
        flat = np.arange(3 * len(faces), dtype=np.uint32).reshape(-1, 3)
        z = np.zeros((3 * len(faces), 3), np.float32)
        for p in sorted(parts):
            mat = pr.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], doubleSided=True)
            node = self.scene.add(pr.Mesh([pr.Primitive(positions=z, normals=z + [0, 0, 1], indices=flat, material=mat)]))
            node.mesh.is_visible = False
            self._seg[name][p] = node

    def update(self, items) -> None:
        """items: [(name, vertices (N, 3) world, face_parts (F,), rgb (3,), pattern)], inner
        garments first. Hides every garment not listed."""
        for node in self._all_nodes():
            node.mesh.is_visible = False
        self._active, self._active_seg = [], []
        for name, v, fparts, rgb, pattern in items:
            self._ensure(name)
            geom = self.wardrobe.geometry(name)
            faces = geom.faces
            n = _normals(v, faces)
            node = self._colour[(name, pattern)]
            self._materials[(name, pattern)].baseColorFactor = np.array([*rgb, 1.0])
            _upload(node, np.hstack([v, n, self.wardrobe.uv(name)]))
            self._active.append(node)
            tri = v[faces].reshape(-1, 3)
            ntri = n[faces].reshape(-1, 3)
            for p, seg in self._seg[name].items():
                keep = np.repeat(fparts == p, 3)
                pos = np.where(keep[:, None], tri, tri[0])  # other faces collapse to a point
                _upload(seg, np.hstack([pos, ntri]))
                self._active_seg.append((seg, p))

    def _all_nodes(self):
        yield from self._colour.values()
        for d in self._seg.values():
            yield from d.values()

    def show(self, colour_pass: bool) -> None:
        for node in self._active:
            node.mesh.is_visible = colour_pass
        for node, _ in self._active_seg:
            node.mesh.is_visible = not colour_pass

    def seg_map(self) -> dict:
        return {node: (p, CLOTH_LABEL, 0) for node, p in self._active_seg}


__all__ = ["GarmentLayer", "push_outside", "GARMENTS"]
