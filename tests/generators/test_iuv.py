"""Part charts and exact per-pixel IUV / vertex-index rendering (simulator/iuv.py)."""

import numpy as np
import pytest

from simulator.params import ParamSpace, SceneParams


@pytest.fixture(scope="module")
def dense():
    from simulator.iuv import get_dense_renderer

    return get_dense_renderer()


@pytest.fixture(scope="module")
def scenes():
    space = ParamSpace.from_groups("pose,shape,camera,occluder")
    return [space.to_params(u) for u in space.sample(np.random.default_rng(11), 6)]


def test_charts_are_continuous_inside_each_part(dense):
    body, charts = dense.body, dense.charts
    faces, parts, cu = body.faces, body.face_parts, charts.corner_uv
    assert cu.shape == (len(faces), 3, 2) and cu.min() >= 0.0 and cu.max() <= 1.0
    for p in range(1, 25):
        sel = np.flatnonzero(parts == p)
        # Every (vertex, part) pair has one UV: faces of a part sharing a vertex agree there.
        v = faces[sel].reshape(-1)
        uv = cu[sel].reshape(-1, 2)
        order = np.argsort(v, kind="stable")
        v, uv = v[order], uv[order]
        same = v[1:] == v[:-1]
        assert np.abs(uv[1:][same] - uv[:-1][same]).max() == 0.0, p
        # No face straddles an angular seam (a seam inside a face would jump across [0, 1]).
        main = sel[~charts.island[sel]]
        span = cu[main].max(1) - cu[main].min(1)
        assert span.max() < 0.3, (p, span.max())
        # Charts are almost everywhere locally injective (no folded-over UV triangles).
        assert charts.flipped[p] < 0.03, (p, charts.flipped[p])
    assert {charts.method[p] for p in (1, 3, 4, 5, 6, 23, 24)} == {"disc"}
    assert charts.island.mean() < 0.03  # eyeballs, mouth interior, one 4-face crotch island


def test_dense_renderer_matches_base_renderer_exactly(dense, scenes):
    from simulator.renderer import RenderConfig, get_renderer

    base = get_renderer(RenderConfig(detail="full"))  # the dense renderer always draws full detail
    for p in scenes[:3]:
        a, b = dense.render(p), base.render(p)
        assert np.array_equal(a.rgb, b.rgb)
        assert np.array_equal(a.parts, b.parts) and np.array_equal(a.mask, b.mask)
        assert np.array_equal(a.depth, b.depth)


def test_iuv_and_vertex_maps_are_exact_and_consistent(dense, scenes):
    for p in scenes:
        s = dense.render(p)
        maps = dense.last_maps
        assert s.iuv.shape == s.rgb.shape and s.iuv.dtype == np.float32
        assert np.array_equal(s.iuv[..., 0].astype(np.uint8), s.parts)
        assert np.array_equal(s.vertex_ids >= 0, s.mask)
        fg = s.mask
        assert s.iuv[..., 1:][fg].min() >= 0 and s.iuv[..., 1:][fg].max() <= 1
        # Pixel centres lie inside the triangle the rasteriser chose, up to its fixed point;
        # on sliver triangles (one of 3817 pixels here: a face 0.01 px high, 5 px long) the
        # clipped barycentrics land up to ~0.2 px away. A wrong face would be pixels away.
        assert maps.points.offset_px < 0.3
        # The vertex id belongs to the face seen at the pixel, in the same part.
        f = maps.face[fg]
        assert np.all((dense.body.faces[f] == s.vertex_ids[fg][:, None]).any(1))
        # The surface point reconstructed from the barycentrics projects onto the pixel centre.
        v = dense._last[1]
        pts = maps.points
        X = np.einsum("nk,nkc->nc", pts.bary, v[dense.body.faces[pts.face]])
        cam = X @ s.extrinsics[:3, :3].T + s.extrinsics[:3, 3]
        xy = cam[:, :2] / cam[:, 2:3] * np.diag(s.K)[:2] + s.K[:2, 2]
        err = np.abs(xy - np.stack([pts.x, pts.y], 1)).max(1)
        assert np.quantile(err, 0.999) < 0.05 and err.max() < 0.3  # slivers, as above


def _stretch(v, faces, corner_uv):
    """(F,) largest singular value of each face's UV-per-metre Jacobian."""
    tri = v[faces].astype(np.float64)
    E = np.stack([tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]], 2)  # (F, 3, 2)
    T = np.stack([corner_uv[:, 1] - corner_uv[:, 0], corner_uv[:, 2] - corner_uv[:, 0]], 2).astype(np.float64)
    J = T @ np.linalg.pinv(E)  # (F, 2, 3)
    return np.linalg.svd(J, compute_uv=False)[:, 0]


def test_uv_is_continuous_in_the_image(dense):
    """Neighbouring pixels whose faces touch on the mesh (same part) differ in U/V by no more
    than the chart's own local stretch allows: a seam inside a part would jump by ~1 over a
    tiny distance. (Pixels across occlusion or contact edges, such as closed lips, are
    near in the image but not on the surface, and are left out.)"""
    s = dense.render(SceneParams().with_values({"camera.width": 512, "camera.height": 512}))
    maps = dense.last_maps
    v = dense._last[1]
    pts = maps.points
    X = np.zeros(s.mask.shape + (3,))
    X[pts.y.astype(int), pts.x.astype(int)] = np.einsum("nk,nkc->nc", pts.bary, v[dense.body.faces[pts.face]])
    stretch = _stretch(v, dense.body.faces, dense.charts.corner_uv)
    I, UV, F = s.iuv[..., 0], s.iuv[..., 1:], maps.face
    for a, b in (((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                 ((slice(1, None), slice(None)), (slice(None, -1), slice(None)))):
        dist = np.linalg.norm(X[a] - X[b], axis=-1)
        fa, fb = np.maximum(F[a], 0), np.maximum(F[b], 0)
        faces = dense.body.faces
        touch = (faces[fa][..., :, None] == faces[fb][..., None, :]).any((-1, -2))
        near = (I[a] == I[b]) & (I[a] > 0) & touch
        near &= ~dense.charts.island[fa] & ~dense.charts.island[fb]
        jump = np.linalg.norm(UV[a] - UV[b], axis=-1)[near]
        bound = 2.0 * np.maximum(stretch[F[a]], stretch[F[b]])[near] * dist[near] + 2e-3
        assert near.sum() > 5000
        assert np.all(jump <= bound), (jump - bound).max()


def test_subpixel_samples_equal_a_twice_larger_render(dense):
    """Extra passes at quarter-pixel offsets sample exactly where a 2x render's pixel
    centres are: their face ids agree with the 2x render's."""
    p = SceneParams().with_values({"camera.width": 96, "camera.height": 96, "pose.l_elbow_flexion": 1.0})
    dense.render(p)
    offsets = [(-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)]
    sub = dense.subpixel_points(offsets)
    big = p.with_values({"camera.width": 192, "camera.height": 192})
    dense.render(big)
    fid2 = dense.last_maps.face
    col = np.floor(sub.x * 2).astype(int)
    row = np.floor(sub.y * 2).astype(int)
    agree = fid2[row, col] == sub.face
    assert len(sub.face) > 1000 and agree.mean() > 0.95
    assert sub.offset_px < 0.1


def test_clothed_body_matches_base_and_reports_the_surface_behind_garments(dense):
    from simulator.renderer import RenderConfig, get_renderer

    p = SceneParams().with_values({"clothing.upper": "t-shirt"})
    a, b = dense.render(p), get_renderer(RenderConfig(detail="full")).render(p)
    assert np.array_equal(a.parts, b.parts) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.clothing_mask, b.clothing_mask) and a.clothing_mask.sum() > 500
    assert np.array_equal(a.depth, b.depth)
    # Under the garments the body surface behind is reported, in the garment's part.
    under = a.clothing_mask & (a.iuv[..., 0] > 0)
    assert under.sum() > 0.9 * a.clothing_mask.sum()
    same_region = a.iuv[..., 0][under].astype(int) == a.parts[under]
    assert same_region.mean() > 0.8
