"""Per-part UV charts on the body mesh (the I, U, V of dense correspondence).

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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
