"""Dense surface correspondence rendering: exact per-pixel IUV and vertex ids.

`make_dense_renderer` / `get_dense_renderer` give a `simulator.renderer.Renderer` whose
samples also carry `iuv` and `vertex_ids`. The pieces live by concern:
`simulator.surface_charts` (per-part UV charts on the body mesh) and
`simulator.face_ids` (face-id rasterisation, barycentric surface sampling); the names
`SUBPIXEL_OFFSETS` is re-exported here.
"""

from __future__ import annotations

import numpy as np

from simulator import gl
from simulator.errors import RenderError
from simulator.face_ids import (
    SUBPIXEL_OFFSETS,
    FaceIdMesh,
    SurfaceMaps,
    SurfacePoints,
    decode_face_ids,
    install_face_id_shader,
    surface_maps,
    surface_points,
)
from simulator.surface_charts import build_charts

__all__ = ["FORWARD_BATCH", "SUBPIXEL_OFFSETS", "forward_fixed_batch", "get_dense_renderer", "iuv_to_png_array",
           "make_dense_renderer"]




FORWARD_BATCH = 16


def forward_fixed_batch(body, pose: np.ndarray, shape: np.ndarray, batch: int = FORWARD_BATCH):
    """body.forward in chunks of exactly `batch` rows (the last one padded by repeating its
    first row). The body model's float32 results depend slightly (~1e-5 m) on the batch
    size (torch picks other kernels for small batches); a fixed batch makes every sample
    bitwise identical however samples are grouped, so any one can be regenerated alone.

    pose (B, P) radians, shape (B, 6) or (B, 10) (``ALL_SHAPE_NAMES``) -> BodyOutput with B rows."""
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
                                      np.stack([shape_vector(p, self.body.name) for p in params_list]))
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
