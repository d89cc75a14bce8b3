"""Level of detail for the rendered body mesh.

anny's mesh has 27k triangles, 56% of them in the hands and the head; at 256 px a hand
covers a few dozen pixels, and on a CPU rasteriser (Mesa llvmpipe) triangle setup is most
of a render pass. The renderer therefore keeps a second, decimated face set and draws it
whenever its measured surface deviation projects to at most `tolerance_px` pixels
(`RenderConfig.detail = "auto"`); larger or closer people are drawn at full detail.

The decimated level is a *face subset over the same vertices*: every DensePose part is
decimated on its own by quadric edge collapse (`fast_simplification`, borders kept, so
part boundaries and the seams between parts stay exactly where they were), and each
collapse is replayed as a half-edge collapse onto a surviving original vertex. The posed
body model therefore drives both levels with the same vertex array, part labels stay
exact (one part per face), and keypoints, joints and skinning are untouched.

Deviation is measured once per body model in the mean rest pose (distance from every
original vertex to the decimated surface of its part) and cached under the cache root.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from simulator.paths import home

LOD_VERSION = 1
# Share of each part's triangles kept: hands (3, 4) and head (23, 24) are the densest.
DEFAULT_KEEP: dict[int, float] = {3: 0.15, 4: 0.15, 23: 0.35, 24: 0.35}
DEFAULT_KEEP_OTHER = 0.6


@dataclass(frozen=True)
class MeshLevel:
    """One level of detail: faces (F, 3) into the body's vertices, their DensePose parts,
    and the deviation from the full surface (metres, rest pose; 99.9th percentile and
    maximum over the full mesh's vertices)."""

    name: str
    faces: np.ndarray
    face_parts: np.ndarray
    deviation_p999: float = 0.0
    deviation_max: float = 0.0

    def pixels(self, focal_px: float, nearest_depth: float) -> float:
        """Projected deviation (99.9th percentile) in pixels at `nearest_depth` metres."""
        return float(focal_px * self.deviation_p999 / max(nearest_depth, 1e-3))


def decimate_by_part(vertices: np.ndarray, faces: np.ndarray, face_parts: np.ndarray,
                     keep: dict[int, float] | None = None, keep_other: float = DEFAULT_KEEP_OTHER):
    """(faces, face_parts) of the decimated mesh, faces indexing `vertices`."""
    import fast_simplification

    keep = DEFAULT_KEEP if keep is None else keep
    out_f, out_p = [], []
    for part in np.unique(face_parts):
        f = faces[face_parts == part]
        k = keep.get(int(part), keep_other)
        if k >= 1.0 or len(f) < 16:
            out_f.append(f)
            out_p.append(np.full(len(f), part, dtype=face_parts.dtype))
            continue
        verts, inv = np.unique(f.reshape(-1), return_inverse=True)
        local = inv.reshape(-1, 3).astype(np.int32)
        _, _, collapses = fast_simplification.simplify(
            vertices[verts].astype(np.float64), local, target_reduction=1.0 - k,
            preserve_border=True, return_collapses=True,
        )
        target = np.arange(len(verts))
        for i0, i1 in collapses:  # i1 merged into i0, in order
            target[i1] = i0
        while True:  # resolve chains (i1 -> i0 -> ...) to the surviving vertex
            nxt = target[target]
            if np.array_equal(nxt, target):
                break
            target = nxt
        nf = target[local]
        ok = (nf[:, 0] != nf[:, 1]) & (nf[:, 1] != nf[:, 2]) & (nf[:, 0] != nf[:, 2])
        out_f.append(verts[nf[ok]].astype(faces.dtype))
        out_p.append(np.full(int(ok.sum()), part, dtype=face_parts.dtype))
    return np.concatenate(out_f), np.concatenate(out_p)


def point_triangle_distance(points: np.ndarray, tris: np.ndarray, chunk: int = 128) -> np.ndarray:
    """(N,) distance from each point (N, 3) to the nearest of the triangles (T, 3, 3)."""
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    ab, ac = b - a, c - a
    n = np.cross(ab, ac)
    nn = np.maximum((n * n).sum(1), 1e-30)
    out = np.empty(len(points))
    for s in range(0, len(points), chunk):
        p = points[s:s + chunk, None, :]  # (n, 1, 3) against (T, 3)
        # Inside the prism over the triangle: distance to the plane.
        d_plane = ((p - a) * n).sum(-1) / np.sqrt(nn)
        proj = p - (d_plane / np.sqrt(nn))[..., None] * n
        c1 = (np.cross(b - a, proj - a) * n).sum(-1) >= 0
        c2 = (np.cross(c - b, proj - b) * n).sum(-1) >= 0
        c3 = (np.cross(a - c, proj - c) * n).sum(-1) >= 0
        best = np.where(c1 & c2 & c3, np.abs(d_plane), np.inf)
        for u, v in ((a, b), (b, c), (c, a)):  # otherwise: the nearest edge
            e = v - u
            t = np.clip(((p - u) * e).sum(-1) / np.maximum((e * e).sum(-1), 1e-30), 0.0, 1.0)
            d = np.linalg.norm(p - (u + t[..., None] * e), axis=-1)
            best = np.minimum(best, d)
        out[s:s + chunk] = best.min(1)
    return out


def surface_deviation(vertices: np.ndarray, faces: np.ndarray, face_parts: np.ndarray,
                      low_faces: np.ndarray, low_parts: np.ndarray) -> np.ndarray:
    """Distance (m) from every vertex of the full mesh to the decimated surface of its
    own part(s) (the minimum over the parts a border vertex belongs to)."""
    dev = np.full(len(vertices), np.inf)
    for part in np.unique(face_parts):
        verts = np.unique(faces[face_parts == part])
        tris = vertices[low_faces[low_parts == part]]
        if len(tris) == 0:
            continue
        dev[verts] = np.minimum(dev[verts], point_triangle_distance(vertices[verts], tris))
    dev[~np.isfinite(dev)] = 0.0  # vertices on no face
    return dev


def _key(vertices: np.ndarray, faces: np.ndarray, face_parts: np.ndarray, keep, keep_other) -> str:
    h = hashlib.sha1()
    h.update(np.round(vertices, 5).astype(np.float32).tobytes())
    h.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(face_parts, dtype=np.int64).tobytes())
    h.update(json.dumps([LOD_VERSION, sorted(keep.items()), keep_other]).encode())
    return h.hexdigest()[:16]


def build_levels(rest_vertices: np.ndarray, faces: np.ndarray, face_parts: np.ndarray,
                 keep: dict[int, float] | None = None, keep_other: float = DEFAULT_KEEP_OTHER,
                 cache: bool = True) -> dict[str, MeshLevel]:
    """{"full": ..., "low": ...} for a body mesh (rest vertices (V, 3), faces, parts).
    The decimation and its deviation are cached under $POSEEXAMINER_HOME/lod/."""
    keep = DEFAULT_KEEP if keep is None else keep
    full = MeshLevel("full", faces, face_parts)
    path = home() / "lod" / f"{_key(rest_vertices, faces, face_parts, keep, keep_other)}.npz"
    if cache and path.exists():
        with np.load(path) as z:
            low = MeshLevel("low", z["faces"].astype(faces.dtype), z["face_parts"].astype(face_parts.dtype),
                            float(z["p999"]), float(z["max"]))
        return {"full": full, "low": low}
    low_f, low_p = decimate_by_part(rest_vertices, faces, face_parts, keep, keep_other)
    dev = surface_deviation(rest_vertices, faces, face_parts, low_f, low_p)
    low = MeshLevel("low", low_f, low_p, float(np.percentile(dev, 99.9)), float(dev.max()))
    if cache:  # write-then-rename: concurrent workers never read a partial file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, faces=low_f, face_parts=low_p, p999=low.deviation_p999, max=low.deviation_max)
        os.replace(tmp, path)
    return {"full": full, "low": low}
