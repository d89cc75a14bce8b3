"""Garment templates on the body's own topology, and their rest shapes per style and shape.

A template is fixed per garment type (like TailorNet's `vert_indices` into the SMPL
mesh): tops and bottoms are the anny faces of the regions the garment covers at its
longest style, selected with the skinning-weight regions (`simulator.parts`); the skirt,
which spans the gap between the legs, is a ring grid around the hips whose top ring sits
on the body. A *style* never changes the topology; it moves the template's vertices:

* lengths (sleeve, trouser leg, hem, rise) compress the template along the limb chain
  (shoulder -> elbow -> wrist, hip -> knee -> ankle) or the trunk height, and every moved
  vertex is re-attached to the body surface at its new place (its *anchor*: a few body
  vertices with weights, found in cylindrical coordinates around the limb / trunk);
* looseness / waist set the ease, the rest gap along the body normal.

The anchors depend on the style only; the rest shape for a body shape is the anchors'
weighted rest-body position plus the ease along the body normal, and the garment vertex
skins with its anchors' blended skinning weights.

Split by concern: `simulator.garments.chains` (cylindrical coordinates), this module
(the fixed template meshes), `simulator.garments.anchors` (style -> anchors and the sparse
blend matrices), `simulator.garments.geometry` (`GarmentGeometry`, which puts them together).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from simulator.garments.chains import CHAIN_ORDER, chain_coords, chain_points, torso_coords
from simulator.garments.rig import CHAIN_REGIONS, BodyRig
from simulator.garments.spec import GarmentSpec, get_spec
from simulator.parts import REGION_NAMES

# Trunk heights (metres, mean-body rest pose, pelvis bone at z = 0.05) used by the templates.
TOP_REF_Z = 0.28  # tops: hem lengths compress the trunk below this height
BOTTOM_REF_Z = 0.0  # bottoms: the rise compresses the trunk above this height
RISE_Z = (0.07, 0.21)  # waistband height, low .. high rise
COLLAR = (0.5, 0.085)  # neck hole: trunk vertices above z with this horizontal radius are cut
SKIRT_RINGS, SKIRT_COLUMNS = 22, 48
K_ANCHOR = 4
TEMPLATE_VERSION = 2  # bump when templates or anchoring change (weights and cached simulations depend on it)


@dataclass
class Template:
    """A garment type's fixed mesh.

    faces (F, 3) int32 into the template vertices; body_ids (N,) the anny vertex each
    template vertex starts on (-1 for skirt grid vertices); chain (N,) index into
    CHAIN_ORDER; s (N,) length coordinate along the chain as a fraction of the chain
    length (trunk: height z in metres); theta (N,) angle around the chain axis;
    boundary (N,) bool vertices on an opening (neck, hem, cuffs, waistband)."""

    spec: GarmentSpec
    faces: np.ndarray
    body_ids: np.ndarray
    chain: np.ndarray
    s: np.ndarray
    theta: np.ndarray
    boundary: np.ndarray
    snapped: np.ndarray | None = None

    @property
    def n_vertices(self) -> int:
        return len(self.chain)


# --------------------------------------------------------------------------------------
# Template construction
# --------------------------------------------------------------------------------------


def _largest_component(faces: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    F = len(faces)
    # Faces sharing a vertex are connected.
    rows = np.repeat(np.arange(F), 3)
    inc = coo_matrix((np.ones(3 * F), (rows, faces.reshape(-1)))).tocsr()
    adj = inc @ inc.T
    n, lab = connected_components(adj, directed=False)
    keep = lab == np.bincount(lab).argmax()
    return faces[keep]


def _boundary_vertices(faces: np.ndarray, n: int) -> np.ndarray:
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(e, axis=0, return_counts=True)
    out = np.zeros(n, dtype=bool)
    out[uniq[counts == 1].reshape(-1)] = True
    return out


def chain_of_body_vertices(rig: BodyRig) -> np.ndarray:
    region_to_chain = {}
    for ci, c in enumerate(CHAIN_ORDER):
        for r in CHAIN_REGIONS[c]:
            region_to_chain[REGION_NAMES.index(r)] = ci
    return np.array([region_to_chain.get(int(r), -1) for r in rig.vertex_region])


def body_chain_coords(rig: BodyRig, ids: np.ndarray, chain_idx: np.ndarray):
    p = rig.mean_rest_vertices[ids]
    s = np.zeros(len(ids))
    th = np.zeros(len(ids))
    for ci, c in enumerate(CHAIN_ORDER):
        sel = chain_idx == ci
        if not sel.any():
            continue
        if c == "torso":
            s[sel], th[sel] = torso_coords(p[sel])
        else:
            s[sel], th[sel], _ = chain_coords(p[sel], chain_points(rig.mean_rest_heads, rig, c))
    return s, th


def build_template(name: str, rig: BodyRig) -> Template:
    spec = get_spec(name)
    if spec.kind == "skirt":
        return _skirt_template(spec, rig)
    V = rig.n_vertices
    chain_all = chain_of_body_vertices(rig)
    ids = np.arange(V)
    s_all, th_all = body_chain_coords(rig, ids, chain_all)
    p = rig.mean_rest_vertices
    keep = np.zeros(V, dtype=bool)
    torso = chain_all == 0
    if spec.kind == "top":
        r_neck = np.hypot(p[:, 0], p[:, 1] + 0.01)
        collar = (p[:, 2] > COLLAR[0]) & (r_neck < COLLAR[1])
        # Front scoop of a crew neck.
        collar |= (p[:, 2] > COLLAR[0] - 0.035) & (r_neck < COLLAR[1] - 0.005) & (p[:, 1] < -0.03)
        keep |= torso & (p[:, 2] >= spec.hem_z[1] - 1e-3) & ~collar & (p[:, 2] < 0.62)
        for ci in (1, 2):
            keep |= (chain_all == ci) & (s_all <= spec.sleeve[1])
    elif spec.kind == "bottom":
        keep |= torso & (p[:, 2] <= RISE_Z[1])
        for ci in (3, 4):
            keep |= (chain_all == ci) & (s_all <= spec.length[1])
    faces = rig.faces[keep[rig.faces].all(1)]
    faces = _largest_component(faces)
    used = np.unique(faces)
    remap = -np.ones(V, dtype=np.int64)
    remap[used] = np.arange(len(used))
    boundary = _boundary_vertices(remap[faces], len(used))
    chain, s = chain_all[used], s_all[used].copy()
    # Hems and cuffs follow the body's mesh edges (a staircase); snap their vertices onto
    # the cut so the opening is a clean ring (they are re-anchored like moved vertices).
    theta = th_all[used]
    if spec.kind == "top":
        hem = boundary & (chain == 0) & (s < TOP_REF_Z)
        cuff = boundary & np.isin(chain, (1, 2)) & (s > 0.5 * spec.sleeve[1])
        s[hem], s[cuff] = spec.hem_z[1], spec.sleeve[1]
        # The neckline: its heights smoothed around the neck (circular moving average).
        collar = np.flatnonzero(boundary & (chain == 0) & (s > TOP_REF_Z))
        order = collar[np.argsort(theta[collar])]
        z = s[order]
        k = 3
        padded = np.concatenate([z[-k:], z, z[:k]])
        s[order] = np.convolve(padded, np.ones(2 * k + 1) / (2 * k + 1), mode="valid")
        cuff = cuff.copy()
        cuff[collar] = True
    else:
        hem = boundary & (chain == 0) & (s > BOTTOM_REF_Z)
        cuff = boundary & np.isin(chain, (3, 4)) & (s > 0.5 * spec.length[1])
        s[hem], s[cuff] = RISE_Z[1], spec.length[1]
    return Template(
        spec=spec,
        faces=remap[faces].astype(np.int32),
        body_ids=used,
        chain=chain,
        s=s,
        theta=theta,
        boundary=boundary,
        snapped=hem | cuff,
    )


def _skirt_template(spec: GarmentSpec, rig: BodyRig) -> Template:
    R, C = SKIRT_RINGS, SKIRT_COLUMNS
    j, k = np.meshgrid(np.arange(R), np.arange(C), indexing="ij")
    idx = j * C + k
    a, b = idx[:-1], idx[1:]
    a1, b1 = np.roll(a, -1, axis=1), np.roll(b, -1, axis=1)
    faces = np.concatenate([np.stack([a, b, b1], -1).reshape(-1, 3), np.stack([a, b1, a1], -1).reshape(-1, 3)])
    # Outward normals: with theta increasing towards +X from the front (-Y) and rows going
    # down, (a, b, b1) winds counter-clockwise seen from outside.
    n = R * C
    boundary = np.zeros(n, dtype=bool)
    boundary[:C] = True
    boundary[-C:] = True
    return Template(
        spec=spec,
        faces=faces.astype(np.int32),
        body_ids=-np.ones(n, dtype=np.int64),
        chain=np.zeros(n, dtype=np.int64),
        s=(j / (R - 1)).reshape(-1).astype(np.float64),  # 0 waist .. 1 hem
        theta=(-np.pi + 2 * np.pi * k / C).reshape(-1).astype(np.float64),
        boundary=boundary,
    )


@functools.lru_cache(maxsize=16)
def _cached_template(name: str, rig_id: int) -> Template:
    return build_template(name, _RIGS[rig_id])


_RIGS: dict[int, BodyRig] = {}


def get_template(name: str, rig: BodyRig) -> Template:
    _RIGS[id(rig)] = rig
    return _cached_template(name, id(rig))
