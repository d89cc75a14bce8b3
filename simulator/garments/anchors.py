"""Style -> anchors: where each moved template vertex re-attaches to the body (a few body
vertices with weights, found in cylindrical coordinates), and the sparse blend matrices
that turn anchors into rest positions and skinning weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.garments.rig import BodyRig
from simulator.garments.template import K_ANCHOR



@dataclass
class Anchors:
    """Where each template vertex sits on the body for one style.

    ids (N, K) anny vertex indices and weights (N, K) (rows sum to 1); ease (N,) metres;
    skin_sparse (N, nb) scipy CSR skinning weights and skin the same dense (both computed
    on first use: the run-time path blends the body's posed vertex transforms with the
    anchor weights instead); region (N,) index into REGION_NAMES (for body-part labels of
    the cloth); for the skirt also the grid's heights / flare (see `rest_shape`)."""

    ids: np.ndarray
    weights: np.ndarray
    ease: np.ndarray
    skin_of: Callable[[], object]  # -> skin_sparse
    region: np.ndarray
    attach: np.ndarray
    tether: np.ndarray
    skirt: dict | None = None
    rows_by_id: bool = False  # each row of ids already ascending (by_column is ids, weights)

    @property
    def skin_sparse(self):
        """(N, nb) scipy CSR skinning weights (skinning without BLAS threads)."""
        if not hasattr(self, "_skin_sparse"):
            self._skin_sparse = self.skin_of()
        return self._skin_sparse

    @property
    def skin(self) -> np.ndarray:
        """(N, nb) dense skinning weights."""
        if not hasattr(self, "_skin"):
            self._skin = self.skin_sparse.toarray()
        return self._skin

    @property
    def by_column(self) -> tuple[np.ndarray, np.ndarray]:
        """ids and weights with each row ordered by body vertex (cached): blending in this
        order sums like a canonical CSR product of the anchor weights."""
        if self.rows_by_id:
            return self.ids, self.weights
        if not hasattr(self, "_by_column"):
            o = np.argsort(self.ids, axis=1, kind="stable")
            self._by_column = (np.take_along_axis(self.ids, o, 1), np.take_along_axis(self.weights, o, 1))
        return self._by_column


def sorted_row_matrix(cols: np.ndarray, w: np.ndarray, n_cols: int):
    """CSR (N, n_cols) with row n holding w[n, k] at column cols[n, k]; each row's cols
    already ascending (`Anchors.by_column`). Built directly (no COO conversion); repeated
    columns (an unmoved vertex's zero weights) add zeros in the products."""
    from scipy.sparse import csr_matrix

    n, k = cols.shape
    # int32 indices: scipy would otherwise scan int64 ones to downcast them (80 us of the
    # 90 us this takes per style at N = 1818).
    m = csr_matrix((w.reshape(-1), cols.reshape(-1).astype(np.int32), np.arange(0, n * k + 1, k, dtype=np.int32)),
                   shape=(n, n_cols))
    m.has_sorted_indices = True
    return m


def blend_rows(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_k w[:, k] * x[:, k] for w (N, K), x (N, K, D), accumulated in k order."""
    out = w[:, 0, None] * x[:, 0]
    for k in range(1, w.shape[1]):
        out += w[:, k, None] * x[:, k]
    return out


def row_matrix(cols: np.ndarray, w: np.ndarray, n_cols: int):
    """CSR (N, n_cols) with row n holding w[n, k] at column cols[n, k] (duplicates summed
    by the products that use it), built without a COO conversion."""
    from scipy.sparse import csr_matrix

    n, k = cols.shape
    o = np.argsort(cols, axis=1, kind="stable")  # canonical column order: same sums as a COO build
    cols, w = np.take_along_axis(cols, o, 1), np.take_along_axis(w, o, 1)
    return csr_matrix((w.reshape(-1), cols.reshape(-1), np.arange(0, n * k + 1, k)), shape=(n, n_cols))


def anchor_skin(rig: BodyRig, ids: np.ndarray, w: np.ndarray):
    """(N, nb) skinning weights blended from the anchors: sum_k w[:, k] * rig.weights[ids[:, k]],
    as a CSR matrix with sorted indices (a sparse product: the dense (N, K, nb) gather costs
    milliseconds per style)."""
    from scipy.sparse import csr_matrix

    W = getattr(rig, "_weights_csr", None)
    if W is None:
        W = rig._weights_csr = csr_matrix(rig.weights)
    out = row_matrix(ids, w, rig.n_vertices) @ W
    out.sort_indices()
    return out


class CylIndex:
    """Nearest body vertices of one chain in unrolled cylindrical coordinates.

    `prepare` precomputes, for template vertices whose length coordinate s can only move
    along a known interval [s_lo, s_hi] (style changes s, never theta), every body vertex
    that can be among their K nearest for some s in it; `interval_table` turns those
    candidates into the K nearest per piece of the interval, which
    `GarmentGeometry._query_moved` looks up (the same neighbours as the k-d tree query, a
    fraction of its cost)."""

    def __init__(self, ids: np.ndarray, s: np.ndarray, th: np.ndarray, s_scale: float, radius: float) -> None:
        from scipy.spatial import cKDTree

        self.ids = np.concatenate([ids, ids, ids])
        self.s_scale, self.radius = s_scale, radius
        pts = np.stack([s * s_scale, th * radius], 1)
        shift = np.array([0.0, 2 * np.pi * radius])
        self.pts = np.concatenate([pts, pts + shift, pts - shift])
        self.tree = cKDTree(self.pts)
        self.cand: np.ndarray | None = None

    def query(self, s: np.ndarray, th: np.ndarray, k: int = K_ANCHOR) -> tuple[np.ndarray, np.ndarray]:
        d, i = self.tree.query(np.stack([s * self.s_scale, th * self.radius], 1), k=k)
        w = 1.0 / (d + 1e-4) ** 2
        return self.ids[i], w / w.sum(1, keepdims=True)

    def prepare(self, s_lo: np.ndarray, s_hi: np.ndarray, th: np.ndarray, k: int = K_ANCHOR,
                step: float = 0.004) -> None:
        """Candidates for query points (s * s_scale, th * radius), s in [s_lo, s_hi] (M,):
        the segment is sampled every <= `step` (scaled units); a point within distance
        d_k(q_i) + step of a sample q_i contains every K nearest of the points between
        q_i and the next sample (|q - q_i| <= step / 2 moves both distances by at most
        step / 2). Candidates are kept per sample interval."""
        m, chunk = len(th), 1
        s_lo, s_hi = s_lo - 1e-9, s_hi + 1e-9  # rounding of the style arithmetic
        length = (s_hi - s_lo) * self.s_scale
        n = np.ceil(length / step).astype(int) + 1  # samples per vertex
        owner = np.repeat(np.arange(m), n)
        first = np.concatenate([[0], np.cumsum(n)[:-1]])
        j = np.arange(len(owner)) - first[owner]  # sample index along the vertex's segment
        t = j / (n[owner] - 1)
        q = np.stack([(s_lo[owner] + t * (s_hi - s_lo)[owner]) * self.s_scale, th[owner] * self.radius], 1)
        spacing = length[owner] / (n[owner] - 1)
        d, _ = self.tree.query(q, k=k)
        near = self.tree.query_ball_point(q, d[:, -1] + spacing + 1e-9)
        cnt = np.array([len(x) for x in near])
        # Chunk c of a vertex covers samples c * chunk .. (c + 1) * chunk (both ends).
        n_chunks = np.maximum((n - 2) // chunk + 1, 1)
        chunk_first = np.concatenate([[0], np.cumsum(n_chunks)[:-1]])
        c0 = np.minimum(j // chunk, n_chunks[owner] - 1)
        also = (j % chunk == 0) & (j > 0) & (c0 == j // chunk)  # a chunk boundary: also the chunk before
        key = np.concatenate([chunk_first[owner] + c0, (chunk_first[owner] + c0 - 1)[also]])
        reps = np.concatenate([cnt, cnt[also]])
        pts_i = np.concatenate(near).astype(np.int64)
        offs = np.concatenate([[0], np.cumsum(cnt)])
        pts_also = np.concatenate([pts_i[offs[i]:offs[i + 1]] for i in np.flatnonzero(also)] or [np.zeros(0, np.int64)])
        pairs = np.unique(np.stack([np.repeat(key, reps), np.concatenate([pts_i, pts_also])], 1), axis=0)
        total = int(n_chunks.sum())
        per = np.bincount(pairs[:, 0], minlength=total)
        col = np.arange(len(pairs)) - np.concatenate([[0], np.cumsum(per)[:-1]])[pairs[:, 0]]
        far = len(self.pts)  # padding: a point no query reaches
        cand = np.full((total, max(int(per.max()), k + 1)), far, dtype=np.int64)
        cand[pairs[:, 0], col] = pairs[:, 1]
        self.cand, self.cand_th = cand, th * self.radius
        self._chunk_first, self._n_chunks = chunk_first, n_chunks
        self._s_lo, self._s_step = s_lo, (s_hi - s_lo) / (n - 1)


def interval_table(q: dict) -> dict:
    """The K nearest candidates of every prepared query row as a function of its length
    coordinate s: piecewise constant, changing only where two candidates are equidistant.

    In unrolled coordinates the squared distance of candidate j to the query (sigma, th),
    sigma = s * scale, is (x_j - sigma)^2 + (y_j - th)^2: the difference of two candidates'
    squared distances is linear in sigma, so their order swaps at most once, at
    sigma = (x_i^2 + a_i - x_j^2 - a_j) / (2 (x_i - x_j)), a = (y - th)^2. Within a sample
    chunk (whose candidates hold every K nearest) the K nearest are therefore constant
    between consecutive crossings; they are found at each interval's middle by the same
    stable sort of the same distances as a brute-force query, and equal neighbouring
    intervals of a row are merged.

    Returns key (I,) sorted interval starts, 2 * row + (s - s_lo) / (s_hi - s_lo), near
    (I, K) candidate points of each interval ordered by body vertex, first (I,) the body
    vertex nearest of all (the whole order is constant between crossings too), and
    inv_span (rows,)."""
    k = K_ANCHOR
    cand, x, y = q["cand"], q["x"], q["y"]
    n_rows = len(q["s_lo"])
    row = np.repeat(np.arange(n_rows), q["n_chunks"])  # chunk -> row
    ch = np.arange(len(cand)) - q["chunk_first"][row]
    s0 = q["s_lo"][row] + ch * q["s_step"][row]
    s1 = s0 + q["s_step"][row]
    scale, th = q["scale"][row], q["th"][row]
    xc = x[cand]
    ac = (y[cand] - th[:, None]) ** 2
    i, j = np.triu_indices(cand.shape[1], 1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sig = ((xc[:, i] ** 2 + ac[:, i]) - (xc[:, j] ** 2 + ac[:, j])) / (2.0 * (xc[:, i] - xc[:, j]))
        s_cross = sig / scale[:, None]
        inside = (s_cross > s0[:, None]) & (s_cross < s1[:, None])
    ck, _ = np.nonzero(inside)
    # Interval starts: each chunk's start and the crossings inside it, sorted per chunk.
    chunk = np.concatenate([np.arange(len(cand)), ck])
    start = np.concatenate([s0, s_cross[inside]])
    o = np.lexsort((start, chunk))
    chunk, start = chunk[o], start[o]
    last = np.r_[chunk[1:] != chunk[:-1], True]
    end = np.where(last, s1[chunk], np.r_[start[1:], 0.0])
    mid = 0.5 * (start + end)
    c = cand[chunk]
    r = row[chunk]
    dx = x[c] - (mid * q["scale"][r])[:, None]
    dy = y[c] - q["th"][r][:, None]
    d = np.sqrt(dx * dx + dy * dy)
    o = np.argsort(d, axis=1, kind="stable")[:, :k]
    near = np.take_along_axis(c, o, 1)
    o2 = np.argsort(q["ids"][near], axis=1, kind="stable")
    near = np.take_along_axis(near, o2, 1)
    # The nearest of the K as the weights' argmax picks it (rows by body vertex; first of equals).
    dk = np.take_along_axis(np.take_along_axis(d, o, 1), o2, 1)
    first = near[np.arange(len(near)), (1.0 / (dk + 1e-4) ** 2).argmax(1)]
    # Merge: keep an interval where its row starts or its K nearest (or the nearest of them)
    # differ from the last.
    keep = np.r_[True, (r[1:] != r[:-1]) | (near[1:] != near[:-1]).any(1) | (first[1:] != first[:-1])]
    span = q["s_step"] * q["n_chunks"]
    u = (start - q["s_lo"][r]) / span[r]
    u[np.r_[True, r[1:] != r[:-1]]] = -0.5  # a row's first interval takes everything below
    # int32: the table is read at random by every new style; half the bytes, fewer cache misses.
    return {"key": (2.0 * r + u)[keep], "near": near[keep].astype(np.int32), "first": q["ids"][first[keep]],
            "inv_span": 1.0 / span}
