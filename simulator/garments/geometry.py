"""`GarmentGeometry`: a garment type's template plus everything that turns (style, body
shape) into a canonical rest shape, skinning weights and part labels."""

from __future__ import annotations

import functools

import numpy as np

from simulator.garments.anchors import Anchors, CylIndex, anchor_skin, blend_rows, interval_table, sorted_row_matrix
from simulator.garments.chains import CHAIN_ORDER, CHAIN_RADIUS, chain_points
from simulator.garments.rig import CHAIN_REGIONS, BodyRig
from simulator.garments.spec import GarmentError, check_style
from simulator.garments.template import (
    BOTTOM_REF_Z,
    K_ANCHOR,
    RISE_Z,
    SKIRT_COLUMNS,
    SKIRT_RINGS,
    TOP_REF_Z,
    body_chain_coords,
    chain_of_body_vertices,
    get_template,
)
from simulator.parts import REGION_NAMES, face_parts


class GarmentGeometry:
    """A garment type's template plus everything needed to turn (style, shape) into a
    canonical rest shape and skinning weights."""

    def __init__(self, name: str, rig: BodyRig) -> None:
        self.rig = rig
        self.template = get_template(name, rig)
        self.spec = self.template.spec
        chain_all = chain_of_body_vertices(rig)
        ids = np.arange(rig.n_vertices)
        s_all, th_all = body_chain_coords(rig, ids, chain_all)
        self._index: dict[int, CylIndex] = {}
        heads = rig.mean_rest_heads
        for ci, c in enumerate(CHAIN_ORDER):
            sel = chain_all == ci
            if c == "torso":
                scale = 1.0
            else:
                pts = chain_points(heads, rig, c)
                scale = float(np.linalg.norm(pts[1:] - pts[:-1], axis=1).sum())
            self._index[ci] = CylIndex(ids[sel], s_all[sel], th_all[sel], scale, CHAIN_RADIUS[c])
        self._anchor_cache: dict[tuple, Anchors] = {}
        self._parts_cache: dict[tuple, np.ndarray] = {}
        self._query_row: np.ndarray | None = None
        self._mean_patch: tuple | None = None
        self._skirt_parts: np.ndarray | None = None
        self._skirt_fixed: tuple | None = None
        self._face_corners: tuple | None = None
        self._mean_rest_z = np.ascontiguousarray(rig.mean_rest_vertices[:, 2])
        self._chain_masks: dict[tuple, np.ndarray] = {}
        self.regions = self._regions()
        self._patch_obj = None  # see _patch
        # The skirt's envelope: trunk and leg vertices.
        self._skirt_sel = np.flatnonzero(np.isin(rig.vertex_region, [REGION_NAMES.index(r) for r in (
            "torso", "upper_leg_left", "upper_leg_right", "lower_leg_left", "lower_leg_right")]))

    @property
    def _patch(self):
        """The rest body's surface where anchors can sit (positions and normals are only
        computed there): every body vertex that is an anchor of some style in [0, 1] (the
        template's own vertices and every K nearest of the prepared interval table), and
        the faces around them. For shorts that is 1.2k of the 2.8k vertices of the trunk
        and legs; the skirt's waistband is blended without it (its regions are kept)."""
        if self._patch_obj is None:
            from simulator.garments.collision import SurfacePatch

            if self.spec.kind == "skirt":
                rows = self.rig.region_ids(self.regions)
            else:
                if self._query_row is None:
                    self._prepare_queries()
                near = self._q["ids"][self._q["near"]].ravel()
                rows = np.union1d(self.template.body_ids, near[near >= 0])
            self._patch_obj = SurfacePatch(self.rig.faces, rows, self.rig.n_vertices)
        return self._patch_obj

    @property
    def collider_regions(self) -> tuple[str, ...]:
        """Body regions the push-out checks: the garment's own plus what hangs against it
        (forearms at the hips)."""
        if self.spec.kind == "top":
            return self.regions
        return self.regions + ("lower_arm_left", "lower_arm_right")

    @property
    def collider_ids(self) -> np.ndarray:
        """Body vertices the push-out checks: those of `collider_regions`, for lower garments
        without the trunk above the highest waistband + 15 cm and (trousers, shorts) the
        legs below the longest hem + 20% of the leg: no cloth of the type comes near them."""
        ids = self.rig.region_ids(self.collider_regions)
        if self.spec.slot != "lower":
            return ids
        chain = chain_of_body_vertices(self.rig)[ids]
        s, _ = body_chain_coords(self.rig, ids, chain)
        keep = np.where(chain == 0, s < RISE_Z[1] + 0.15, True)
        if self.spec.kind != "skirt":
            keep &= np.where(np.isin(chain, (3, 4)), s <= self.spec.length[1] + 0.2, True)
        return ids[keep]

    def _regions(self) -> tuple[str, ...]:
        chains = ("torso", "arm_l", "arm_r") if self.spec.kind == "top" else ("torso", "leg_l", "leg_r")
        return tuple(r for c in chains for r in CHAIN_REGIONS[c])

    @property
    def faces(self) -> np.ndarray:
        return self.template.faces

    @property
    def n_vertices(self) -> int:
        return self.template.n_vertices

    # ---- style ---------------------------------------------------------------------------
    def anchors(self, style, checked: bool = False) -> Anchors:
        """Anchors of a style (4,) (cached per style rounded to 1e-6); checked=True: `style`
        is already a row of `check_style`'s output."""
        if not checked:
            style = check_style(style)[0]
        key = style.round(6).tobytes()
        hit = self._anchor_cache.get(key)
        if hit is None:
            hit = self._anchors(style)
            if len(self._anchor_cache) > 256:
                self._anchor_cache.clear()
            self._anchor_cache[key] = hit
        return hit

    def _on_chains(self, chains: tuple[int, ...]) -> np.ndarray:
        """(N,) template vertices on these chains (cached)."""
        hit = self._chain_masks.get(chains)
        if hit is None:
            hit = self._chain_masks[chains] = np.isin(self.template.chain, chains)
        return hit

    def _stretch(self, style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Length coordinates s (N,) of the template vertices for a style's lengths, and
        which vertices moved (they are re-anchored). Each vertex's s is affine in one style
        dimension (sleeve or length, hem, rise), so its range over all styles is spanned by
        the all-0 and all-1 styles."""
        sleeve_f, hem_f, loose, waist = style
        spec, T = self.spec, self.template
        s_new = T.s.copy()
        if spec.kind == "top":
            k = (spec.sleeve[0] + sleeve_f * (spec.sleeve[1] - spec.sleeve[0])) / spec.sleeve[1]
            arm = self._on_chains((1, 2)) & (T.s > 0)
            s_new[arm] = T.s[arm] * k
            hem = spec.hem_z[0] + hem_f * (spec.hem_z[1] - spec.hem_z[0])
            trunk = (T.chain == 0) & (T.s < TOP_REF_Z)
            s_new[trunk] = TOP_REF_Z - (TOP_REF_Z - T.s[trunk]) * (TOP_REF_Z - hem) / (TOP_REF_Z - spec.hem_z[1])
            moved = (arm & (k < 1)) | (trunk & (hem > spec.hem_z[1])) | T.snapped
        else:
            k = (spec.length[0] + hem_f * (spec.length[1] - spec.length[0])) / spec.length[1]
            leg = self._on_chains((3, 4)) & (T.s > 0)
            s_new[leg] = T.s[leg] * k
            rise = RISE_Z[0] + waist * (RISE_Z[1] - RISE_Z[0])
            trunk = (T.chain == 0) & (T.s > BOTTOM_REF_Z)
            s_new[trunk] = BOTTOM_REF_Z + (T.s[trunk] - BOTTOM_REF_Z) * (rise - BOTTOM_REF_Z) / (RISE_Z[1] - BOTTOM_REF_Z)
            moved = (leg & (k < 1)) | (trunk & (rise < RISE_Z[1])) | T.snapped
        return s_new, moved

    def _prepare_queries(self) -> None:
        """Nearest-anchor candidates for every vertex some style moves (per chain), merged
        into one table so that a style's moved vertices of all chains are one query. The
        skirt's: its top ring (waistband) along the trunk, over the range of rises."""
        T = self.template
        if self.spec.kind == "skirt":
            C = SKIRT_COLUMNS
            groups = [(0, np.arange(C), np.full(C, RISE_Z[0]), np.full(C, RISE_Z[1]))]
        else:
            s0, m0 = self._stretch(np.zeros(4))
            s1, m1 = self._stretch(np.ones(4))
            movable = m0 | m1
            groups = []
            for ci in np.unique(T.chain[movable]):
                sel = np.flatnonzero(movable & (T.chain == ci))
                groups.append((int(ci), sel, np.minimum(s0[sel], s1[sel]), np.maximum(s0[sel], s1[sel])))
        self._query_row = -np.ones(T.n_vertices, dtype=np.int64)
        parts = []
        rows = chunks = pts = 0
        for ci, sel, s_lo, s_hi in groups:
            idx = self._index[ci]
            idx.prepare(s_lo, s_hi, T.theta[sel])
            self._query_row[sel] = rows + np.arange(len(sel))
            parts.append((idx, pts, chunks))
            rows += len(sel)
            chunks += len(idx.cand)
            pts += len(idx.pts)
        width = max(len(idx.cand[0]) for idx, _, _ in parts)
        cand = np.full((chunks, width), pts, dtype=np.int64)  # pts: the padding point
        for idx, p0, c0 in parts:
            c = idx.cand
            cand[c0:c0 + len(c), :c.shape[1]] = np.where(c == len(idx.pts), pts, c + p0)
        cat = lambda f: np.concatenate([f(idx, p0, c0) for idx, p0, c0 in parts])  # noqa: E731
        self._q = {
            "cand": cand,
            "x": np.concatenate([idx.pts[:, 0] for idx, _, _ in parts] + [[1e9]]),
            "y": np.concatenate([idx.pts[:, 1] for idx, _, _ in parts] + [[1e9]]),
            "ids": np.concatenate([idx.ids for idx, _, _ in parts] + [[-1]]),
            "chunk_first": cat(lambda idx, p0, c0: idx._chunk_first + c0),
            "n_chunks": cat(lambda idx, p0, c0: idx._n_chunks),
            "s_lo": cat(lambda idx, p0, c0: idx._s_lo), "s_step": cat(lambda idx, p0, c0: idx._s_step),
            "scale": cat(lambda idx, p0, c0: np.full(len(idx._s_lo), idx.s_scale)),
            "th": cat(lambda idx, p0, c0: idx.cand_th),
        }
        self._q.update(interval_table(self._q))
        del self._q["cand"]  # only the interval table is queried
        for idx, _, _ in parts:
            idx.cand = None

    def _query_moved(self, sel: np.ndarray, s: np.ndarray, nearest: bool = False) -> tuple[np.ndarray, ...]:
        """Anchors (ids, weights (len(sel), K)) of template vertices sel at length coordinates
        s: the K nearest body vertices of their chain in unrolled cylindrical coordinates,
        the same as `CylIndex.query`, each row ordered by body vertex instead of by
        distance. A lookup in the prepared table of s intervals (`interval_table`) gives
        the K nearest; only their K distances (the weights) are computed. nearest=True:
        also the nearest body vertex of each row (the weights' argmax), (len(sel),)."""
        q = self._q
        rows = self._query_row[sel]
        if (rows < 0).any():  # not prepared (cannot happen for styles in [0, 1]): k-d tree
            ids, w = self._query_tree(sel, s)
            return (ids, w, ids[np.arange(len(ids)), w.argmax(1)]) if nearest else (ids, w)
        u = np.clip((s - q["s_lo"][rows]) * q["inv_span"][rows], 0.0, 1.0)
        i = np.searchsorted(q["key"], 2.0 * rows + u, side="right") - 1
        c = q["near"][i]  # (m, K)
        dx = q["x"][c] - (s * q["scale"][rows])[:, None]
        dy = q["y"][c] - q["th"][rows][:, None]
        w = 1.0 / (np.sqrt(dx * dx + dy * dy) + 1e-4) ** 2
        w /= w.sum(1, keepdims=True)
        return (q["ids"][c], w, q["first"][i]) if nearest else (q["ids"][c], w)

    def _query_tree(self, sel: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`_query_moved` by the k-d trees."""
        T = self.template
        ids = np.empty((len(sel), K_ANCHOR), dtype=np.int64)
        w = np.empty((len(sel), K_ANCHOR))
        chain = T.chain[sel]
        for ci in np.unique(chain):
            m = chain == ci
            ids[m], w[m] = self._index[int(ci)].query(s[m], T.theta[sel[m]])
        return ids, w

    def _anchors(self, style: np.ndarray) -> Anchors:
        sleeve_f, hem_f, loose, waist = style
        spec, T, rig = self.spec, self.template, self.rig
        if spec.kind == "skirt":
            return self._skirt_anchors(style)
        if self._query_row is None:
            self._prepare_queries()
        n = T.n_vertices
        ids = np.repeat(T.body_ids[:, None], K_ANCHOR, 1)
        w = np.zeros((n, K_ANCHOR))
        w[:, 0] = 1.0
        s_new, moved = self._stretch(style)
        sel = np.flatnonzero(moved)
        nearest = T.body_ids.copy()  # an unmoved vertex's only anchor
        ids[sel], w[sel], nearest[sel] = self._query_moved(sel, s_new[sel], nearest=True)
        # Ease profile.
        e0, e1 = spec.ease
        ease = np.full(n, e0 + loose * (e1 - e0))
        z = self._mean_rest_z[nearest]
        attach = np.zeros(n)
        if spec.kind == "top":
            trunk = T.chain == 0
            collar = trunk & (z > 0.44)
            ease[collar] = e0 + loose * (e1 - e0) * np.clip((0.52 - z[collar]) / 0.08, 0.15, 1.0)
            fitted = 1.0 - 0.75 * waist * np.exp(-(((z - 0.17) / 0.09) ** 2))
            ease[trunk] = e0 + (ease[trunk] - e0) * fitted[trunk]
            arm = self._on_chains((1, 2))
            ease[arm] = e0 + (ease[arm] - e0) * 0.8
            attach[collar] = 0.15
        else:
            rise = RISE_Z[0] + waist * (RISE_Z[1] - RISE_Z[0])
            band = (T.chain == 0) & (z > rise - 0.04)
            leg = self._on_chains((3, 4))
            prof = np.where(leg, 0.45 + 0.55 * np.clip(s_new / max(spec.length[1], 1e-6), 0, 1), 0.45)
            ease = e0 + (ease - e0) * prof
            ease[band] = e0
            attach[band] = 0.6
        return Anchors(ids=ids, weights=w, ease=ease, skin_of=functools.partial(anchor_skin, rig, ids, w),
                       region=rig.vertex_region[nearest], attach=attach, tether=1.2 * ease, rows_by_id=True)

    def _skirt_anchors(self, style: np.ndarray) -> Anchors:
        _, len_f, loose, waist = style
        spec, T, rig = self.spec, self.template, self.rig
        C = SKIRT_COLUMNS
        rise = RISE_Z[0] + waist * (RISE_Z[1] - RISE_Z[0])
        n = T.n_vertices
        if self._query_row is None:
            self._prepare_queries()
        # The waistband's anchors at this rise (rows by body vertex: Anchors.rows_by_id).
        tid, tw = self._query_moved(np.arange(C), np.full(C, rise))
        ids = np.tile(tid, (SKIRT_RINGS, 1))
        w = np.tile(tw, (SKIRT_RINGS, 1))
        length = spec.length[0] + len_f * (spec.length[1] - spec.length[0])
        e0, e1 = spec.ease
        ease = np.full(n, e0)
        t = T.s
        if self._skirt_fixed is None:  # style independent
            side = 0.5 * (1 + np.sin(T.theta))  # 1 on the left (+X) side, 0 on the right
            self._skirt_fixed = (
                np.where(t < 0.25, REGION_NAMES.index("torso"),
                         np.where(side > 0.5, REGION_NAMES.index("upper_leg_left"), REGION_NAMES.index("upper_leg_right"))),
                np.where(t < 1.0 / (SKIRT_RINGS - 1) + 1e-6, 0.6, 0.0))
            for arr in self._skirt_fixed:
                arr.flags.writeable = False  # shared by every style's Anchors
        region, attach = self._skirt_fixed
        skirt = {"rise": rise, "length": length, "flare": loose * 0.16 + 0.01, "ease": e0 + loose * (e1 - e0) * 0.3}
        tether = skirt["ease"] + skirt["flare"] * t + 0.03 * t
        return Anchors(ids=ids, weights=w, ease=ease, skin_of=functools.partial(self._skirt_skin, tid, tw),
                       region=region, attach=attach, tether=tether, skirt=skirt, rows_by_id=True)

    def _skirt_legs(self) -> tuple[np.ndarray, np.ndarray]:
        """The skirt's thigh share a (N,) (0 at the waistband .. 0.8 at the hem) and side (N,)
        (1 on the left (+X), 0 on the right)."""
        T = self.template
        return 0.8 * np.clip(T.s, 0, 1), 0.5 * (1 + np.sin(T.theta))

    def _skirt_skin(self, tid: np.ndarray, tw: np.ndarray):
        """Skirt skinning weights (CSR (N, nb)): the waistband follows the trunk; lower down
        the cloth leans on the thigh of its side (half each at the front and back centre).
        Every ring has the top ring's base weights (tid, tw: (C, K) anchors): blended on the
        bones any row uses only (elementwise the same as on the dense (N, nb) matrix, zeros
        dropped)."""
        from scipy.sparse import csr_matrix

        rig, n = self.rig, self.n_vertices
        base_top = anchor_skin(rig, tid, tw).toarray()
        lb, rb = rig.bone("upperleg01.L"), rig.bone("upperleg01.R")
        used = np.union1d(np.flatnonzero(base_top.any(0)), [lb, rb])
        base = np.tile(base_top[:, used], (SKIRT_RINGS, 1))
        a, side = self._skirt_legs()
        legs = np.zeros_like(base)
        legs[:, np.searchsorted(used, lb)] = side
        legs[:, np.searchsorted(used, rb)] = 1 - side
        a = a[:, None]
        sub = (1 - a) * base + a * legs
        r, c = np.nonzero(sub)
        return csr_matrix((sub[r, c], used[c], np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])),
                          shape=(n, rig.weights.shape[1]))

    def skin_transforms(self, a: Anchors, vertex_transforms: np.ndarray, index: np.ndarray,
                        bone_transforms: np.ndarray) -> np.ndarray:
        """(N, 4, 4) skinning transforms of the garment vertices for one posed body:
        vertex_transforms (M, 16) the body's blended transforms of some body vertices,
        index (V,) body vertex -> row there (-1: not there), bone_transforms (nb, 4, 4).
        The same as blending the bones with `a.skin` (up to rounding), without forming the
        (N, nb) matrix; the anchor matrix is cached on the Anchors per `index` (the skirt's
        C waistband rows are blended directly)."""
        C = SKIRT_COLUMNS if a.skirt is not None else len(a.ids)  # a skirt: every ring has the top ring's anchors
        ids, w = a.by_column
        top = None
        if a.skirt is not None:  # C rows: blending them directly costs less than building a matrix
            i = index[ids[:C]]
            if (i >= 0).all():
                top = blend_rows(w[:C], vertex_transforms[i])
        else:
            hit = getattr(a, "_skin_rows", None)
            if hit is None or hit[0] is not index:
                i = index[ids]
                hit = a._skin_rows = (index, None if (i < 0).any() else sorted_row_matrix(i, w, len(vertex_transforms)))
            if hit[1] is not None:
                top = hit[1] @ vertex_transforms
        if top is None:  # an anchor outside the given vertices: blend its bones
            nb = len(bone_transforms)
            rows = self.rig.weights[ids[:C].reshape(-1)] @ bone_transforms.reshape(nb, 16)
            top = blend_rows(w[:C], rows.reshape(C, -1, 16))
        if a.skirt is None:
            return top.reshape(-1, 4, 4)
        t, side = self._skirt_legs()
        rig = self.rig
        legs = (side[:, None] * bone_transforms[rig.bone("upperleg01.L")].reshape(16)
                + (1 - side)[:, None] * bone_transforms[rig.bone("upperleg01.R")].reshape(16))
        return ((1 - t)[:, None] * np.tile(top, (SKIRT_RINGS, 1)) + t[:, None] * legs).reshape(-1, 4, 4)

    # ---- shape ---------------------------------------------------------------------------
    def rest_normals(self, rest_vertices: np.ndarray) -> np.ndarray:
        """(V, 3) unit normals of the rest body, valid where this garment's anchors can sit
        (`_patch`; zero elsewhere)."""
        out = np.zeros_like(rest_vertices)
        out[self._patch.rows] = self._patch.normals(rest_vertices[None, self._patch.verts])[0]
        return out

    def rest_shape(self, anchors: Anchors, rest_vertices: np.ndarray, heads: np.ndarray,
                   normals: np.ndarray | None = None) -> np.ndarray:
        """Canonical rest garment (N, 3) for one body: rest_vertices (V, 3), heads (nb, 3);
        `normals` from `rest_normals` when the caller already has them."""
        if anchors.skirt is not None:  # only the top ring sits on the body
            C = SKIRT_COLUMNS
            top = np.einsum("nk,nkd->nd", anchors.weights[:C], rest_vertices[anchors.ids[:C]])
            return self._skirt_shape(anchors, rest_vertices, heads, top)
        if normals is None:
            return self.rest_shapes([anchors], rest_vertices[None], heads[None])[0]
        base = np.einsum("nk,nkd->nd", anchors.weights, rest_vertices[anchors.ids])
        nrm = np.einsum("nk,nkd->nd", anchors.weights, normals[anchors.ids])
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        return base + anchors.ease[:, None] * nrm

    def rest_shapes(self, anchors: list[Anchors], rest_vertices: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """Batched `rest_shape`: one Anchors per body, rest_vertices (B, V, 3), heads
        (B, nb, 3) -> (B, N, 3). Normals come from the faces around the anchors only."""
        B = len(anchors)
        if self.spec.kind == "skirt":
            return np.stack([self.rest_shape(a, rest_vertices[b], heads[b]) for b, a in enumerate(anchors)])
        patch = self._patch
        p = rest_vertices[:, patch.verts]
        normals = patch.normals(p)
        out = np.empty((B, self.n_vertices, 3))
        for b, a in enumerate(anchors):
            out[b] = self._rest_from(a, p[b], normals[b])
        return out

    def _rest_from(self, a: Anchors, p: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Rest garment (N, 3) from the patch positions p (len(patch.verts), 3) and unit
        normals (len(patch.rows), 3) of one body."""
        pos, nrm_of = self._blend_matrices(a)
        nrm = nrm_of @ normals
        nrm /= np.maximum(np.sqrt(np.einsum("nd,nd->n", nrm, nrm)), 1e-12)[:, None]
        return pos @ p + a.ease[:, None] * nrm

    def _blend_matrices(self, a: Anchors):
        """Sparse (N, len(patch.verts)) and (N, len(patch.rows)) matrices of the anchor
        weights (cached on the Anchors): rest positions and normals -> per garment vertex."""
        hit = getattr(a, "_blend", None)
        if hit is None:
            ids, w = a.by_column
            r = self._patch.row_index[ids]
            if (r < 0).any():  # only a style outside [0, 1] could anchor elsewhere
                raise GarmentError(f"{self.spec.name}: an anchor outside the prepared surface; styles must lie in [0, 1]")
            hit = a._blend = (sorted_row_matrix(self._patch.row_in_verts[r], w, len(self._patch.verts)),
                              sorted_row_matrix(r, w, len(self._patch.rows)))
        return hit

    def _skirt_shape(self, anchors: Anchors, rv: np.ndarray, heads: np.ndarray, top: np.ndarray) -> np.ndarray:
        """The skirt's rings (R * C, 3) below its waistband `top` (C, 3) on the rest body rv."""
        rig, T = self.rig, self.template
        R, C = SKIRT_RINGS, SKIRT_COLUMNS
        centre = top.mean(0)
        hip = 0.5 * (heads[rig.bone("upperleg01.L")] + heads[rig.bone("upperleg01.R")])
        leg_len = np.linalg.norm(heads[rig.bone("lowerleg01.L")] - heads[rig.bone("upperleg01.L")]) + np.linalg.norm(
            heads[rig.bone("foot.L")] - heads[rig.bone("lowerleg01.L")]
        )
        z_top = top[:, 2].mean()
        z_hem = hip[2] - anchors.skirt["length"] * leg_len
        # Envelope of the trunk and legs around the skirt axis, per column and ring height:
        # the widest body vertex within 3 cm of each ring's height, in each column.
        t = np.arange(R) / (R - 1)
        z = z_top + t * (z_hem - z_top)
        pv = rv[self._skirt_sel]
        pv = pv[(pv[:, 2] > z.min() - 0.031) & (pv[:, 2] < z.max() + 0.031)]
        band = np.abs(pv[None, :, 2] - z[:, None]) < 0.03  # (R, M)
        rel = pv[:, :2] - centre[:2]
        ang = np.arctan2(rel[:, 0], -rel[:, 1])
        rad = np.hypot(rel[:, 0], rel[:, 1])
        col = np.round((ang + np.pi) / (2 * np.pi) * C).astype(int) % C
        ring, m = np.nonzero(band)
        env = np.zeros(R * C)
        np.maximum.at(env, ring * C + col[m], rad[m])
        env = env.reshape(R, C)
        # Spread each column's envelope to its neighbours (bins can be empty).
        wrap = np.concatenate([env[:, -2:], env, env[:, :2]], 1)
        env = np.maximum.reduce([wrap[:, d:d + C] for d in range(5)])
        theta = T.theta[:C]
        tdir = np.stack([np.sin(theta), -np.cos(theta)], 1)
        top_r = np.einsum("cd,cd->c", top[:, :2] - centre[:2], tdir)
        ease = anchors.skirt["ease"]
        # Rings never narrow going down: r_j = max(r_{j-1}, envelope_j + ease).
        r = np.maximum.accumulate(np.vstack([top_r + ease * 0.2, env + ease]), axis=0)[1:]
        rr = r + anchors.skirt["flare"] * t[:, None]
        out = np.zeros((R, C, 3))
        out[..., :2] = centre[:2] + rr[..., None] * tdir
        out[..., 2] = z[:, None]
        out[0] = top + (out[0] - top) * 0.0 + ease * 0.2 * np.concatenate([tdir, np.zeros((C, 1))], 1)
        return out.reshape(-1, 3)

    def face_parts(self, anchors: Anchors, rest: np.ndarray | None) -> np.ndarray:
        """(F,) DensePose part of the body under each garment face, front / back and left /
        right from the rest garment `rest` (N, 3). The skirt's parts come from its template
        grid alone (`rest` unused): a face's band (waist or thigh) and side from its
        columns' angles, front / back and left / right as on a round cylinder at those
        angles, so the same for every style and body (a whole skirt shape on the mean body
        per style cost 0.4 ms; it labelled 0.2% of the faces, at the sides, otherwise)."""
        if anchors.skirt is None:
            if self._face_corners is None:
                self._face_corners = tuple(np.ascontiguousarray(self.faces[:, i]) for i in range(3))
            return face_parts(anchors.region, self.faces, rest, corners=self._face_corners)
        if self._skirt_parts is None:  # the skirt's region is style independent
            T = self.template
            cylinder = np.stack([np.sin(T.theta), -np.cos(T.theta), -T.s], 1)
            self._skirt_parts = face_parts(anchors.region, self.faces, cylinder)
        return self._skirt_parts

    def style_parts(self, style, checked: bool = False) -> np.ndarray:
        """(F,) face parts for a style (on the mean body; cached)."""
        if not checked:
            style = check_style(style)[0]
        key = style.round(6).tobytes()
        hit = self._parts_cache.get(key)
        if hit is None:
            a = self.anchors(style, checked=True)
            if a.skirt is not None:
                rest = None  # see face_parts
            else:  # the mean body's patch and normals are computed once
                if self._mean_patch is None:
                    p = self.rig.mean_rest_vertices[None, self._patch.verts]
                    self._mean_patch = (p[0], self._patch.normals(p)[0])
                rest = self._rest_from(a, *self._mean_patch)
            hit = self.face_parts(a, rest)
            if len(self._parts_cache) > 256:
                self._parts_cache.clear()
            self._parts_cache[key] = hit
        return hit
