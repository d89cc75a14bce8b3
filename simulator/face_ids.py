"""Exact per-pixel correspondence (no blending): a flat pass rasterises an unwelded copy of
the mesh whose three corners of face f all carry the colour encoding f + 1 (24 bits), with a
`flat` shader varying and without MSAA, so each pixel holds the id of the one triangle that
covers its centre (the occluder and background encode 0). Barycentric coordinates of the
pixel centre are then computed in float64 from the projected triangle with perspective
correction; U/V are the barycentric interpolation of the face's corner UVs, the vertex id
is the face corner with the largest barycentric weight. docs/generators.md reports the
measured exactness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import RenderError



def install_face_id_shader(offscreen_renderer) -> None:
    """Make pyrender's SEG pass (no lighting, no MSAA) draw primitives that carry vertex
    colours with the face-id shader; primitives without vertex colours keep pyrender's
    per-node segmentation colour (the occluder). Wraps the renderer's own shader cache
    (whatever class it is) instead of replacing it."""
    cache = offscreen_renderer._renderer._program_cache
    if getattr(cache, "_face_id_installed", False):
        return
    inner_get = cache.get_program
    from simulator.pyrender_patches import VERTEX_COLOUR_SHADERS

    def get_program(vertex_shader, fragment_shader, geometry_shader=None, defines=None):
        if vertex_shader == "segmentation.vert" and defines and "COLOR_0_LOC" in defines:
            vertex_shader, fragment_shader = VERTEX_COLOUR_SHADERS
        return inner_get(vertex_shader, fragment_shader, geometry_shader, defines)

    cache.get_program = get_program
    cache._face_id_installed = True


def encode_face_colors(n_faces: int) -> np.ndarray:
    """(3 * n_faces, 4) float32 vertex colours of an unwelded mesh: the corners of face f
    encode f + 1 in 24 bits (R low byte), alpha 1."""
    ids = np.repeat(np.arange(1, n_faces + 1, dtype=np.int64), 3)
    rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], 1).astype(np.float32) / 255.0
    return np.hstack([rgb, np.ones((len(ids), 1), dtype=np.float32)])


def decode_face_ids(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from the face-id pass -> (H, W) int32, face index + 1 (0 = none)."""
    c = rgb.astype(np.int32)
    return c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16)


class FaceIdMesh:
    """An unwelded triangle mesh node for the face-id pass; vertex positions are rewritten
    in place for every frame (one glBufferSubData, no new GL objects)."""

    def __init__(self, scene, n_faces: int, offset: int = 0) -> None:
        import pyrender

        self.n_faces = n_faces
        self._colors = encode_face_colors(offset + n_faces)[3 * offset:]
        prim = pyrender.Primitive(
            positions=np.zeros((3 * n_faces, 3), dtype=np.float32),
            color_0=self._colors,
            indices=np.arange(3 * n_faces, dtype=np.uint32).reshape(-1, 3),
        )
        self.node = scene.add(pyrender.Mesh([prim]))
        self.node.mesh.is_visible = False

    def set_triangles(self, tri: np.ndarray, make_current=None) -> None:
        """tri: (n_faces, 3, 3) float metres, world frame."""
        prim = self.node.mesh.primitives[0]
        pos = np.ascontiguousarray(tri.reshape(-1, 3), dtype=np.float32)
        if prim._vaid is None:
            prim.positions = pos
            return
        from OpenGL.GL import GL_ARRAY_BUFFER, glBindBuffer, glBufferSubData

        if make_current is not None:
            make_current()
        data = np.ascontiguousarray(np.hstack((pos, self._colors)), dtype=np.float32)
        glBindBuffer(GL_ARRAY_BUFFER, prim._buffers[0])
        glBufferSubData(GL_ARRAY_BUFFER, 0, data.nbytes, data)


def barycentric_at(tri_cam: np.ndarray, x: np.ndarray, y: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Perspective-correct barycentric coordinates of image points.

    tri_cam (N, 3, 3) float64 triangle corners in the OpenCV camera frame (metres);
    x, y (N,) image coordinates in pixels (the top-left pixel's centre is (0.5, 0.5));
    K (3, 3). Returns (N, 3) float64 weights summing to 1: the 3D barycentrics of the
    surface point seen at (x, y)."""
    z = tri_cam[..., 2]
    px = tri_cam[..., 0] / z * K[0, 0] + K[0, 2]
    py = tri_cam[..., 1] / z * K[1, 1] + K[1, 2]
    x0, y0 = px[:, 0], py[:, 0]
    d1x, d1y = px[:, 1] - x0, py[:, 1] - y0
    d2x, d2y = px[:, 2] - x0, py[:, 2] - y0
    den = d1x * d2y - d2x * d1y
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    l1 = ((x - x0) * d2y - d2x * (y - y0)) / den
    l2 = (d1x * (y - y0) - (x - x0) * d1y) / den
    lam = np.stack([1.0 - l1 - l2, l1, l2], 1)
    w = lam / z
    return w / w.sum(1, keepdims=True)


@dataclass
class SurfacePoints:
    """Dense correspondence at N image points. x, y: (N,) float64 pixels; face: (N,) int64
    mesh face; bary: (N, 3) float64 barycentrics (clipped to >= 0, renormalised); part:
    (N,) uint8 1..24; uv: (N, 2) float64 in [0, 1]; vertex: (N,) int64 nearest face corner;
    offset_px: the largest image distance (pixels) between a sample position and the
    projection of its surface point (non-zero only where the rasteriser, working in fixed
    point on float32 vertices, gave a position just outside the float64 triangle its face
    id; the barycentrics are clipped to the triangle there)."""

    x: np.ndarray
    y: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    part: np.ndarray
    uv: np.ndarray
    vertex: np.ndarray
    offset_px: float


def surface_points(
    face: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    face_parts: np.ndarray,
    corner_uv: np.ndarray,
    K: np.ndarray,
    extrinsics: np.ndarray,
) -> SurfacePoints:
    """Correspondence of the points (x, y) that the rasteriser assigned to `face`.

    face (N,) int face indices; vertices (V, 3) world metres; faces (F, 3); face_parts
    (F,) 1..24; corner_uv (F, 3, 2); K (3, 3); extrinsics (4, 4) world -> OpenCV camera."""
    face = np.asarray(face, dtype=np.int64)
    if len(face) and (face.max() >= len(faces) or face.min() < 0):
        raise RenderError(f"face-id pass returned face {face.max()} of a mesh with {len(faces)} faces")
    R = extrinsics[:3, :3].astype(np.float64)
    t = extrinsics[:3, 3].astype(np.float64)
    tri_c = vertices[faces[face]].astype(np.float64) @ R.T + t
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    K = K.astype(np.float64)
    b = barycentric_at(tri_c, x, y, K)
    b = np.clip(b, 0.0, None)
    b /= np.maximum(b.sum(1, keepdims=True), 1e-12)
    X = np.einsum("nk,nkc->nc", b, tri_c)
    proj = X[:, :2] / X[:, 2:3] * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
    offset = float(np.max(np.hypot(proj[:, 0] - x, proj[:, 1] - y), initial=0.0))
    uv = np.einsum("nk,nkc->nc", b, corner_uv[face].astype(np.float64))
    return SurfacePoints(
        x=x, y=y, face=face, bary=b, part=np.asarray(face_parts)[face].astype(np.uint8), uv=uv,
        vertex=faces[face, np.argmax(b, 1)].astype(np.int64), offset_px=offset,
    )


@dataclass
class SurfaceMaps:
    """Per-pixel correspondence of one rendered body (at pixel centres). face: (H, W) int32
    face index (-1 background); iuv: (H, W, 3) float32 (part 1..24, U, V; zeros on the
    background); vertex_ids: (H, W) int32 (-1 background); points: the same at the
    foreground pixels, row-major."""

    face: np.ndarray
    iuv: np.ndarray
    vertex_ids: np.ndarray
    points: SurfacePoints


def surface_maps(face_plus1: np.ndarray, vertices, faces, face_parts, corner_uv, K, extrinsics) -> SurfaceMaps:
    """face_plus1 (H, W) int face index + 1 (0 = none) -> maps at pixel centres."""
    H, W = face_plus1.shape
    ys, xs = np.nonzero(face_plus1)
    pts = surface_points(face_plus1[ys, xs] - 1, xs + 0.5, ys + 0.5, vertices, faces, face_parts, corner_uv, K, extrinsics)
    iuv = np.zeros((H, W, 3), dtype=np.float32)
    iuv[ys, xs, 0] = pts.part
    iuv[ys, xs, 1:] = pts.uv
    vid = np.full((H, W), -1, dtype=np.int32)
    vid[ys, xs] = pts.vertex
    face = np.full((H, W), -1, dtype=np.int32)
    face[ys, xs] = pts.face
    return SurfaceMaps(face=face, iuv=iuv, vertex_ids=vid, points=pts)


# Sub-pixel sample offsets (pixels, from the pixel centre) of the extra face-id passes, in
# the order they are used: pixel corners first, then edge midpoints, then quarter points.
SUBPIXEL_OFFSETS = (
    (0.5, 0.5), (0.5, 0.0), (0.0, 0.5), (0.25, 0.25), (-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25),
    (0.25, 0.0), (0.0, 0.25),
)
