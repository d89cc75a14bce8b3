"""Physics-based draping: position-based dynamics (PBD) cloth on the posed body.

This is the training-data generator (TailorNet used Marvelous Designer); it is not on the
rendering path. One draping run:

1. the garment's canonical rest shape (template + style + body shape) starts on the body
   in anny's rest pose;
2. the body moves from the rest pose to the target pose over `pose_frames` frames (bone
   rotations interpolated on SO(3)) and holds it for `settle_frames` frames while the
   cloth settles under gravity;
3. every frame the cloth is first carried by the body (each vertex by its blended
   skinning transform, as a tight garment would be by friction), then integrated with
   gravity and projected onto the constraints for `iterations` Jacobi sweeps per
   substep: stretch (edge lengths, stiff when stretched, soft when compressed so the
   cloth buckles), bending (distance across each interior edge's two triangles),
   attachment of waistbands / collars to the body, a tether that keeps every vertex
   within its ease (plus slack) of where the body carries it (long-range attachments,
   Kim et al. 2012: PBD's cure for over-stretching at few iterations), and collision with the body
   (nearest body vertex, pushed out along its normal to `thickness`), with Coulomb-like
   friction on contact.

The result is the draped garment in the simulator's world frame and its unposed
displacement from the canonical rest shape (the quantity the predictor learns).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from simulator.garments.rig import BodyRig, skin
from simulator.garments.geometry import GarmentGeometry
from simulator.parts import REGION_NAMES


@dataclass(frozen=True)
class DrapeConfig:
    pose_frames: int = 8
    settle_frames: int = 10
    substeps: int = 2
    iterations: int = 8
    dt: float = 1.0 / 30.0
    gravity: float = 9.81
    stretch: float = 1.0
    compress: float = 0.3
    bend: float = 0.08
    thickness: float = 0.004
    friction: float = 0.5
    damping: float = 0.04
    relax: float = 1.6
    tether_slack: float = 0.012


@dataclass
class DrapeResult:
    """posed (N, 3) world frame (pelvis at the origin); displacement (N, 3) canonical
    (unposed) offset from `rest` (N, 3); seconds of CPU time."""

    posed: np.ndarray
    displacement: np.ndarray
    rest: np.ndarray
    seconds: float


def _constraints(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique edges (E, 2) and bending pairs (B, 2) (the two vertices opposite each
    interior edge)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    opp = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]])
    key = np.sort(e, axis=1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, opp = key[order], opp[order]
    same = np.all(key[1:] == key[:-1], axis=1)
    edges = np.unique(key, axis=0)
    bend = np.stack([opp[:-1][same], opp[1:][same]], 1)
    return edges, bend


def _slerp_deltas(target: np.ndarray, t: float) -> np.ndarray:
    """target (nb, 4, 4) rotation deltas -> the rotation at fraction t of the way from identity."""
    from scipy.spatial.transform import Rotation

    out = np.repeat(np.eye(4)[None], len(target), 0)
    rv = Rotation.from_matrix(target[:, :3, :3]).as_rotvec()
    out[:, :3, :3] = Rotation.from_rotvec(rv * t).as_matrix()
    return out


class Draper:
    """Drapes one garment type; reusable across styles, shapes and poses."""

    def __init__(self, geometry: GarmentGeometry, config: DrapeConfig | None = None) -> None:
        from scipy.sparse import csr_matrix

        self.geometry = geometry
        self.rig: BodyRig = geometry.rig
        self.config = config or DrapeConfig()
        faces = geometry.faces
        edges, bend = _constraints(faces)
        self.pairs = np.concatenate([edges, bend])
        self.n_edges = len(edges)
        n = geometry.n_vertices
        P = len(self.pairs)
        rows = np.concatenate([self.pairs[:, 0], self.pairs[:, 1]])
        cols = np.concatenate([np.arange(P), np.arange(P)])
        vals = np.concatenate([np.ones(P), -np.ones(P)])
        self.scatter = csr_matrix((vals, (rows, cols)), shape=(n, P))
        self.count = np.maximum(np.bincount(rows, minlength=n), 1).astype(np.float64)[:, None]
        skip = [REGION_NAMES.index(r) for r in ("head", "left_hand", "right_hand")]
        self.collider_ids = np.flatnonzero(~np.isin(self.rig.vertex_region, skip))
        # Normals of the colliders only: the faces touching them.
        from simulator.garments.rig import _Incidence

        is_col = np.zeros(self.rig.n_vertices, dtype=bool)
        is_col[self.collider_ids] = True
        self._col_faces = _Incidence(self.rig.faces[is_col[self.rig.faces].any(1)], self.rig.n_vertices)

    def _normals(self, body: np.ndarray) -> np.ndarray:
        return self._col_faces.normals(body)[self.collider_ids]

    def run(self, style, pose: np.ndarray, shape: np.ndarray) -> DrapeResult:
        """style (4,), pose (34,) anatomical radians, shape (6,) phenotypes."""
        from pykdtree.kdtree import KDTree

        t0 = time.process_time()
        cfg, rig, geom = self.config, self.rig, self.geometry
        anchors = geom.anchors(style)
        rest = rig.rest(np.asarray(shape)[None])
        X0 = geom.rest_shape(anchors, rest["vertices"][0], rest["heads"][0])
        pose = np.asarray(pose, dtype=np.float64).copy()
        pose[:3] = 0.0  # the cloth is simulated upright (see docs/clothing.md)
        target = rig.pose_deltas(pose[None])[0]
        F = cfg.pose_frames
        ts = [0.5 - 0.5 * np.cos(np.pi * (f + 1) / F) for f in range(F)]
        deltas = np.stack([np.repeat(np.eye(4)[None], len(target), 0)] + [_slerp_deltas(target, t) for t in ts])
        posed = rig.pose(deltas, np.asarray(shape)[None])
        W = anchors.skin
        Tv = np.einsum("nb,fbij->fnij", W, posed.transforms)  # (F+1, N, 4, 4)
        x = np.einsum("nij,nj->ni", Tv[0][:, :3, :3], X0) + Tv[0][:, :3, 3]
        v = np.zeros_like(x)
        L = np.linalg.norm(X0[self.pairs[:, 0]] - X0[self.pairs[:, 1]], axis=1)
        k_is_edge = np.arange(len(self.pairs)) < self.n_edges
        attach = anchors.attach[:, None]
        tether = anchors.tether + cfg.tether_slack
        h = cfg.dt / cfg.substeps
        g = np.array([0.0, 0.0, -cfg.gravity])
        frames = list(range(1, F + 1)) + [F] * cfg.settle_frames
        prev = 0
        for f in frames:
            if f != prev:
                # Carry the cloth with the body.
                rel = Tv[f] @ np.linalg.inv(Tv[prev])
                x = np.einsum("nij,nj->ni", rel[:, :3, :3], x) + rel[:, :3, 3]
                v = np.einsum("nij,nj->ni", rel[:, :3, :3], v)
                prev = f
            body = posed.vertices[f]
            normals = self._normals(body)
            bpts = np.ascontiguousarray(body[self.collider_ids])
            # The same nearest-vertex search as the run-time push-out (pykdtree), so the
            # benchmark's simulation is not slowed by a slower k-d tree than the model's.
            tree = KDTree(bpts, leafsize=16)
            targets = np.einsum("nij,nj->ni", Tv[f][:, :3, :3], X0) + Tv[f][:, :3, 3]
            for _ in range(cfg.substeps):
                x_old = x
                v = v + h * g
                x = x + h * v
                near = tree.query(np.ascontiguousarray(x), k=1)[1].astype(np.int64)
                bp, bn = bpts[near], normals[near]
                for _ in range(cfg.iterations):
                    d = x[self.pairs[:, 0]] - x[self.pairs[:, 1]]
                    l = np.linalg.norm(d, axis=1)
                    c = (l - L) / np.maximum(l, 1e-9)
                    k = np.where(k_is_edge, np.where(c > 0, cfg.stretch, cfg.compress), cfg.bend)
                    corr = (0.5 * k * c)[:, None] * d
                    x = x - cfg.relax * (self.scatter @ corr) / self.count
                    x = x + attach * (targets - x)
                    off = x - targets
                    dist = np.linalg.norm(off, axis=1)
                    far = dist > tether
                    x[far] = targets[far] + off[far] * (tether[far] / dist[far])[:, None]
                    depth = cfg.thickness - np.einsum("nd,nd->n", x - bp, bn)
                    hit = depth > 0
                    x[hit] += depth[hit, None] * bn[hit]
                v = (x - x_old) / h * (1.0 - cfg.damping)
                depth = cfg.thickness - np.einsum("nd,nd->n", x - bp, bn)
                contact = depth > -0.002
                vn = np.einsum("nd,nd->n", v, bn)[:, None] * bn
                v[contact] = vn[contact] + (v[contact] - vn[contact]) * (1.0 - cfg.friction)
        # Final exact collision pass against the last frame's body.
        T_last = Tv[frames[-1]]
        canon = np.einsum("nij,nj->ni", np.linalg.inv(T_last[:, :3, :3]), x - T_last[:, :3, 3])
        out = x - posed.offset[frames[-1]]
        return DrapeResult(posed=out, displacement=canon - X0, rest=X0, seconds=time.process_time() - t0)
