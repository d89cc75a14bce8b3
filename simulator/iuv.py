"""Dense surface correspondence: per-part UV charts on the body mesh and exact per-pixel
IUV / vertex-index rendering.

Charts (built once per body model from its zero-pose, mid-phenotype mesh; they live on the
mesh topology, so every pose and shape shares them):

- torso, upper/lower arms, upper/lower legs, head (parts 1, 2, 7..24): a cylindrical
  projection about the part's bone axis (torso: pelvis -> neck, head: neck -> head top,
  limbs: proximal -> distal joint). U is the position along the axis (0 proximal,
  1 distal), V the angle about the axis measured from the part's mean surface normal,
  so the angular seam (+-180 degrees) lies on the opposite side of the body from the part
  and never inside it. Both are normalised to [0, 1] over the part's main connected
  component. Small separate components of a part (eyeballs, mouth interior, an 8-vertex
  crotch island on the back torso) take the UV of the nearest main-component vertex.
- hands, feet (parts 3..6): each is a topological disc open at the wrist / ankle; a
  Tutte embedding with mean-value weights (Floater 2003) maps the wrist / ankle boundary
  loop to a circle by arc length and the rest of the surface inside it (bijective: the
  weights are positive and the boundary is convex). U, V = 0.5 + 0.5 * (x, y).

A chart is stored per face corner (`corner_uv`, (F, 3, 2)): a vertex on a seam between two
parts has one UV in each part's chart. U/V are continuous inside each part: cylindrical
coordinates are continuous functions of position away from the seam, and the disc map is
piecewise linear on the mesh.

Exact per-pixel correspondence (no blending): a flat pass rasterises an unwelded copy of
the mesh whose three corners of face f all carry the colour encoding f + 1 (24 bits), with a
`flat` shader varying and without MSAA, so each pixel holds the id of the one triangle that
covers its centre (the occluder and background encode 0). Barycentric coordinates of the
pixel centre are then computed in float64 from the projected triangle with perspective
correction; U/V are the barycentric interpolation of the face's corner UVs, the vertex id
is the face corner with the largest barycentric weight. docs/generators.md reports the
measured exactness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import gl
from simulator.errors import RenderError
from simulator.parts import COARSE_REGIONS, REGION_NAMES

# Part axis per coarse region: (proximal joint, distal joint) in simulator.body.JOINT_NAMES.
PART_AXES: dict[str, tuple[str, str]] = {
    "torso": ("pelvis", "neck"),
    "head": ("neck", "head_top"),
    "upper_leg_right": ("right_hip", "right_knee"),
    "upper_leg_left": ("left_hip", "left_knee"),
    "lower_leg_right": ("right_knee", "right_ankle"),
    "lower_leg_left": ("left_knee", "left_ankle"),
    "upper_arm_left": ("left_shoulder", "left_elbow"),
    "upper_arm_right": ("right_shoulder", "right_elbow"),
    "lower_arm_left": ("left_elbow", "left_wrist"),
    "lower_arm_right": ("right_elbow", "right_wrist"),
    "right_hand": ("right_wrist", "right_hand"),
    "left_hand": ("left_wrist", "left_hand"),
    "right_foot": ("right_ankle", "right_toe"),
    "left_foot": ("left_ankle", "left_toe"),
}
DISC_REGIONS = ("right_hand", "left_hand", "left_foot", "right_foot", "head")
DISC_PARTS = (1,)  # torso back: its crotch lies on the cylinder's axis, where the angle is undefined


@dataclass
class PartCharts:
    """corner_uv: (F, 3, 2) float32 in [0, 1], the UV of each face corner in the chart of
    the face's part; method: part index -> "cylindrical" | "disc" | "cylindrical-fallback";
    flipped: part index -> fraction of the part's faces whose UV triangle is reversed
    (0 = locally injective everywhere)."""

    corner_uv: np.ndarray
    island: np.ndarray | None = None
    method: dict[int, str] = field(default_factory=dict)
    flipped: dict[int, float] = field(default_factory=dict)


def _components(faces: np.ndarray, n: int) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    A = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(A, directed=False)[1]


def _boundary_loop(faces: np.ndarray) -> list[int] | None:
    """The single boundary loop of a disc-topology triangle patch (local vertex ids, in
    the faces' winding direction), or None if the boundary is not exactly one simple loop."""
    he = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = {(int(a), int(b)) for a, b in he}
    nxt: dict[int, int] = {}
    for a, b in he:
        a, b = int(a), int(b)
        if (b, a) not in key:  # boundary half-edge
            if a in nxt:
                return None  # pinched boundary
            nxt[a] = b
    if not nxt:
        return None
    start = min(nxt)
    loop = [start]
    while True:
        v = nxt[loop[-1]]
        if v == start:
            break
        if v not in nxt or len(loop) > len(nxt):
            return None
        loop.append(v)
    return loop if len(loop) == len(nxt) else None


def _mean_value_weights(x: np.ndarray, faces: np.ndarray):
    """Sparse (n, n) matrix of Floater's mean-value weights w_ij (positive)."""
    from scipy.sparse import coo_matrix

    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, l = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        # Angle at i in this triangle, split between edges (i, j) and (i, l).
        a = x[j] - x[i]
        b = x[l] - x[i]
        la, lb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        cos = np.clip(np.einsum("ij,ij->i", a, b) / np.maximum(la * lb, 1e-20), -1.0, 1.0)
        t = np.tan(0.5 * np.arccos(cos))
        rows += [i, i]
        cols += [j, l]
        vals += [t / np.maximum(la, 1e-12), t / np.maximum(lb, 1e-12)]
    n = len(x)
    return coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()


def _disc_chart(x: np.ndarray, faces: np.ndarray, up: np.ndarray) -> np.ndarray | None:
    """Tutte / mean-value embedding of a disc patch into the unit disc -> (n, 2) in [0, 1]."""
    from scipy.sparse import diags
    from scipy.sparse.linalg import spsolve

    loop = _boundary_loop(faces)
    if loop is None:
        return None
    n = len(x)
    seg = np.linalg.norm(x[np.roll(loop, -1)] - x[loop], axis=1)
    # Start the boundary at the loop vertex furthest along `up`, so charts are oriented
    # the same way on the left and right side (up to the mirror).
    s = int(np.argmax(x[loop] @ up))
    loop = loop[s:] + loop[:s]
    seg = np.roll(seg, -s)
    theta = 2 * np.pi * np.concatenate([[0.0], np.cumsum(seg)[:-1]]) / seg.sum()
    uv = np.zeros((n, 2))
    bnd = np.array(loop)
    uv[bnd] = np.stack([np.cos(theta), np.sin(theta)], 1)
    inner = np.setdiff1d(np.arange(n), bnd)
    W = _mean_value_weights(x, faces)
    L = diags(np.asarray(W.sum(1)).ravel()) - W
    A = L[inner][:, inner].tocsc()
    rhs = -(L[inner][:, bnd] @ uv[bnd])
    for c in range(2):
        uv[inner, c] = spsolve(A, rhs[:, c])
    return 0.5 + 0.5 * uv


def _cylindrical_chart(
    x: np.ndarray, a: np.ndarray, b: np.ndarray, ref: np.ndarray, main: np.ndarray
) -> np.ndarray:
    """(n, 2) cylindrical coordinates of x about the axis a -> b, angle measured from
    `ref`; normalised to [0, 1] over the `main` vertices (others are clipped)."""
    d = (b - a) / np.linalg.norm(b - a)
    e1 = ref - (ref @ d) * d
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    r = x - a
    t = r @ d
    phi = np.arctan2(r @ e2, r @ e1)
    out = np.stack([t, phi], 1)
    lo, hi = out[main].min(0), out[main].max(0)
    return np.clip((out - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)


def build_charts(body) -> PartCharts:
    """Per-part UV charts for a body model (see the module docstring)."""
    from simulator.joints import JOINT_NAMES
    from simulator.joints import POSE_DOFS
    from simulator.params import SHAPE_NAMES

    rest = body.forward(np.zeros((1, len(POSE_DOFS))), np.full((1, len(SHAPE_NAMES)), 0.5))
    x_all = rest.vertices[0].astype(np.float64)
    J = {n: rest.joints[0, i].astype(np.float64) for i, n in enumerate(JOINT_NAMES)}
    faces = np.asarray(body.faces)
    fparts = np.asarray(body.face_parts)
    corner_uv = np.zeros((len(faces), 3, 2), dtype=np.float32)
    charts = PartCharts(corner_uv=corner_uv, island=np.zeros(len(faces), dtype=bool))
    part_region = {}
    for name in REGION_NAMES:
        for p in set(COARSE_REGIONS[name]):
            part_region[p] = name
    for p in range(1, 25):
        sel = np.flatnonzero(fparts == p)
        if len(sel) == 0:
            continue
        verts, inv = np.unique(faces[sel].reshape(-1), return_inverse=True)
        lf = inv.reshape(-1, 3)
        x = x_all[verts]
        comp = _components(lf, len(verts))
        sizes = np.bincount(comp[lf[:, 0]], minlength=comp.max() + 1)
        main_c = int(np.argmax(sizes))
        main_v = comp == main_c
        region = part_region[p]
        a, b = J[PART_AXES[region][0]], J[PART_AXES[region][1]]
        tri = x[lf]
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        main_f = main_v[lf[:, 0]]
        ref = fn[main_f].sum(0)
        uv = None
        method = "cylindrical"
        if region in DISC_REGIONS or p in DISC_PARTS:
            mf = lf[main_f]
            sub, sub_inv = np.unique(mf.reshape(-1), return_inverse=True)
            disc = _disc_chart(x[sub], sub_inv.reshape(-1, 3), up=ref)
            if disc is not None:
                uv = np.zeros((len(verts), 2))
                uv[sub] = disc
                method = "disc"
            else:
                method = "cylindrical-fallback"
        if uv is None:
            uv = _cylindrical_chart(x, a, b, ref, main_v)
        # Other components: UV of the nearest main-component vertex.
        others = np.flatnonzero(~main_v)
        if len(others):
            from scipy.spatial import cKDTree

            mv = np.flatnonzero(main_v)
            _, nn = cKDTree(x[mv]).query(x[others])
            uv[others] = uv[mv[nn]]
        cu = uv[lf]
        corner_uv[sel] = cu.astype(np.float32)
        charts.island[sel] = ~main_f
        e1, e2 = cu[:, 1] - cu[:, 0], cu[:, 2] - cu[:, 0]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        sign = np.sign(np.median(area[main_f])) or 1.0
        charts.method[p] = method
        charts.flipped[p] = float(np.mean(area[main_f] * sign < 0))
    return charts


# --------------------------------------------------------------------------------------
# Face-id rasterisation (flat, no MSAA)
# --------------------------------------------------------------------------------------

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


FORWARD_BATCH = 16


def forward_fixed_batch(body, pose: np.ndarray, shape: np.ndarray, batch: int = FORWARD_BATCH):
    """body.forward in chunks of exactly `batch` rows (the last one padded by repeating its
    first row). The body model's float32 results depend slightly (~1e-5 m) on the batch
    size (torch picks other kernels for small batches); a fixed batch makes every sample
    bitwise identical however samples are grouped, so any one can be regenerated alone.

    pose (B, P) radians, shape (B, 6) -> BodyOutput with B rows."""
    from simulator.body_model import BodyOutput

    outs = []
    for a in range(0, len(pose), batch):
        p, s = pose[a:a + batch], shape[a:a + batch]
        n = len(p)
        if n < batch:
            p = np.concatenate([p, np.repeat(p[:1], batch - n, 0)])
            s = np.concatenate([s, np.repeat(s[:1], batch - n, 0)])
        o = body.forward(p, s)
        rig = None
        if o.rig is not None:
            rig = {k: (t if len(t) > 1 else t.expand(len(p), *t.shape[1:]))[:n] for k, t in o.rig.items()}
        outs.append((o.vertices[:n], o.joints[:n], {k: v[:n] for k, v in o.keypoints.items()}, rig))
    rigs = [o[3] for o in outs]
    rig = None
    if all(r is not None for r in rigs):
        import torch

        rig = {k: torch.cat([r[k] for r in rigs]) for k in rigs[0]}
    return BodyOutput(
        vertices=np.concatenate([o[0] for o in outs]),
        joints=np.concatenate([o[1] for o in outs]),
        keypoints={k: np.concatenate([o[2][k] for o in outs]) for k in outs[0][2]},
        rig=rig,
    )


# --------------------------------------------------------------------------------------
# Renderer with IUV
# --------------------------------------------------------------------------------------


class _SegAsFaceId:
    """Wraps the OffscreenRenderer the base Renderer uses: its segmentation pass is
    replaced by one face-id pass, decoded back to the part-label image the base expects."""

    def __init__(self, offscreen, owner) -> None:
        self._r = offscreen
        self._owner = owner

    def render(self, scene, flags, seg_node_map=None):
        import pyrender

        if not flags & pyrender.RenderFlags.SEG:
            return self._r.render(scene, flags=flags)
        return self._owner._face_id_pass(self._r, scene, seg_node_map or {})

    def __getattr__(self, name):
        return getattr(self._r, name)


def _rectangle(params, W: int, H: int):
    """The image-space rectangle occluder [x0, y0, x1, y1) in pixels (as the base renderer
    cuts it), or None."""
    occ, cam = params.occluder, params.camera
    if occ.kind != "rectangle":
        return None
    centre = np.array([W * (0.5 + cam.offset_x), H * (0.5 + cam.offset_y)]) + np.array([occ.x * W, occ.y * H])
    size = np.array([occ.width * W, occ.height * H])
    x0, y0 = np.floor(centre - size / 2).astype(int)
    x1, y1 = np.ceil(centre + size / 2).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)


def make_dense_renderer(config=None):
    """A `simulator.renderer.Renderer` whose samples also carry `iuv` and `vertex_ids`."""
    from simulator.renderer import Renderer

    class DenseRenderer(Renderer):
        """Renderer + exact IUV and vertex-index maps (always the full-detail mesh). The
        base's part-label segmentation pass becomes a single face-id pass (parts = face_parts[face id]), so dense ground truth
        costs no extra render pass; `subpixel_points` adds exact samples between pixel
        centres (one more face-id pass per offset) for small people."""

        def __init__(self, config=None) -> None:
            super().__init__(config)
            self._detail = "full"  # face ids index the full mesh; the colour pass must match it
            self.charts = build_charts(self.body)
            self._faces = np.asarray(self.body.faces)
            self._face_parts = np.asarray(self.body.face_parts, dtype=np.uint8)
            self._fid_mesh = FaceIdMesh(self.scene, len(self._faces))
            self._last_face_ids: np.ndarray | None = None
            self._last = None  # (params, vertices, sample) of the latest render
            self.last_maps: SurfaceMaps | None = None

        def _ensure_renderer(self, width, height):
            r = super()._ensure_renderer(width, height)
            install_face_id_shader(r)
            return _SegAsFaceId(r, self)

        def _set_body(self, v, skin) -> None:
            """The base uploads the body (drawn in the colour pass only here); the face-id
            mesh gets the same vertices."""
            super()._set_body(v, skin)
            current = self._renderer._platform.make_current if self._renderer is not None else None
            self._fid_mesh.set_triangles(v[self._faces], make_current=current)

        def _raw_face_ids(self, r, scene, extra_seg) -> tuple[np.ndarray, np.ndarray]:
            """One face-id pass: the body's faces plus the nodes of `extra_seg` (with their
            flat SEG colours); the 24 part meshes are hidden."""
            import pyrender

            seg = dict(extra_seg)
            seg[self._fid_mesh.node] = (0, 0, 0)
            for n in self._part_nodes:
                n.mesh.is_visible = False
            self._fid_mesh.node.mesh.is_visible = True
            try:
                rgb, depth = r.render(scene, flags=pyrender.RenderFlags.SEG, seg_node_map=seg)
            finally:
                self._fid_mesh.node.mesh.is_visible = False
            return decode_face_ids(rgb), depth

        def _face_id_pass(self, r, scene, seg_node_map):
            """Replaces the base's segmentation pass. Without clothing: one face-id pass,
            parts = face_parts[face]. With clothing, the garments occlude the body in a
            second pass (garment pixels encoded as (part, label, 255), above every face id)
            that gives parts, the clothing label and depth; the body-only pass gives the
            surface point behind the garment along each pixel's ray, which is what IUV and
            the vertex map report there (DensePose annotates clothed people the same way)."""
            part_nodes = set(self._part_nodes)
            occluder = {n: c for n, c in seg_node_map.items() if n is self._occluder_node}
            garments = {n: c for n, c in seg_node_map.items() if n not in part_nodes and n is not self._occluder_node}
            fid, depth = self._raw_face_ids(r, scene, occluder)
            if fid.max() > len(self._faces):
                raise RenderError("the face-id pass produced an id beyond the mesh; the GL driver blended colours")
            lut = np.concatenate([[0], self._face_parts]).astype(np.uint8)
            parts = lut[fid]
            cloth = np.zeros_like(parts)
            if garments:
                coded = {n: (int(c[0]), int(c[1]), 255) for n, c in garments.items()}
                both, depth = self._raw_face_ids(r, scene, {**occluder, **coded})
                on_garment = (both >> 16) == 255
                parts = np.where(on_garment, both & 255, lut[np.where(on_garment, 0, both)]).astype(np.uint8)
                cloth = np.where(on_garment, (both >> 8) & 255, 0).astype(np.uint8)
            self._last_face_ids = fid
            self._last_occluder_map = occluder
            return np.stack([parts, cloth, np.zeros_like(parts)], axis=2), depth

        def _render_one(self, params, v, joints, kps, body_rig=None):
            sample = super()._render_one(params, v, joints, kps, body_rig)
            # Rectangle occluders are cut after the pass; under clothing, the body behind it.
            fid = np.where(sample.mask, self._last_face_ids, 0)
            maps = surface_maps(fid, v, self._faces, self._face_parts, self.charts.corner_uv, sample.K, sample.extrinsics)
            sample.iuv = maps.iuv
            sample.vertex_ids = maps.vertex_ids
            self.last_maps = maps
            self._last = (params, v, sample)
            return sample

        def render_each(self, params_list, fn) -> list:
            """Render scenes with the body model batched and call fn(i, sample) right after
            each one, while the GL scene still holds it (for `subpixel_points`)."""
            from simulator.renderer import pose_vector, shape_vector

            if not params_list:
                return []
            out = forward_fixed_batch(self.body, np.stack([pose_vector(p) for p in params_list]),
                                      np.stack([shape_vector(p) for p in params_list]))
            results = []
            for i, p in enumerate(params_list):
                kps = {k: val[i] for k, val in out.keypoints.items()}
                results.append(fn(i, self._render_one(p, out.vertices[i], out.joints[i], kps, (out.rig, i))))
            return results

        def subpixel_points(self, offsets) -> SurfacePoints:
            """Exact correspondence at pixel centre + (dx, dy) for each offset, for the scene
            rendered last (one face-id pass per offset, the camera's principal point shifted
            by -(dx, dy))."""
            if self._last is None:
                raise RenderError("render a scene before asking for sub-pixel points")
            params, v, sample = self._last
            H, W = sample.mask.shape
            cam = self._camera_node.camera
            cx, cy = cam.cx, cam.cy
            rect = _rectangle(params, W, H)
            xs_all, ys_all, f_all = [], [], []
            r = self._renderer
            try:
                for dx, dy in offsets:
                    cam.cx, cam.cy = cx - dx, cy - dy
                    fid, _ = self._raw_face_ids(r, self.scene, self._last_occluder_map)
                    ys, xs = np.nonzero(fid)
                    x, y = xs + 0.5 + dx, ys + 0.5 + dy
                    keep = (x >= 0) & (x < W) & (y >= 0) & (y < H)
                    if rect is not None:
                        keep &= ~((x >= rect[0]) & (x < rect[2]) & (y >= rect[1]) & (y < rect[3]))
                    xs_all.append(x[keep])
                    ys_all.append(y[keep])
                    f_all.append(fid[ys[keep], xs[keep]] - 1)
            finally:
                cam.cx, cam.cy = cx, cy
            cat = (lambda a, dt: np.concatenate(a) if a else np.zeros(0, dt))
            return surface_points(cat(f_all, np.int64), cat(xs_all, np.float64), cat(ys_all, np.float64), v,
                                  self._faces, self._face_parts, self.charts.corner_uv, sample.K, sample.extrinsics)

    return DenseRenderer(config)


_DENSE: dict = {}


def get_dense_renderer(config=None):
    """One dense renderer per process and configuration."""
    from simulator.renderer import RenderConfig

    config = config or RenderConfig()
    if config not in _DENSE:
        _DENSE[config] = make_dense_renderer(config)
    return _DENSE[config]


def iuv_to_png_array(iuv: np.ndarray) -> np.ndarray:
    """(H, W, 3) float (I, U, V) -> (H, W, 3) uint8: R = I (0..24), G = round(255 U),
    B = round(255 V), zeros on the background (DensePose's IUV layout, RGB order)."""
    out = np.zeros(iuv.shape, dtype=np.uint8)
    fg = iuv[..., 0] > 0
    vals = iuv[fg]
    out[fg, 0] = vals[:, 0].astype(np.uint8)
    out[fg, 1:] = np.clip(np.round(vals[:, 1:] * 255.0), 0, 255).astype(np.uint8)
    return out


gl.close_at_exit(_DENSE)
