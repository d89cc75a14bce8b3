import math

import numpy as np
import pytest

from simulator.body import JOINT_NAMES
from simulator.errors import RenderError
from simulator.params import ParamSpace, SceneParams
from simulator.sample import OCCLUDED, OUT_OF_FRAME, VISIBLE


@pytest.fixture(scope="module")
def renderer():
    from simulator.renderer import get_renderer

    return get_renderer()


@pytest.fixture(scope="module")
def samples(renderer):
    space = ParamSpace.from_groups("pose,shape,camera,light,background,occluder")
    U = space.sample(np.random.default_rng(3), 12)
    return renderer.render_batch([space.to_params(u) for u in U])


def test_sample_contents(samples):
    for s in samples:
        H, W = s.rgb.shape[:2]
        assert s.rgb.dtype == np.uint8 and s.rgb.shape == (H, W, 3)
        assert s.mask.shape == (H, W) and s.mask.dtype == bool
        assert s.depth.dtype == np.float32 and s.parts.dtype == np.uint8
        assert s.parts.max() <= 24
        assert set(s.keypoints) == {"coco17", "feet6", "h36m17"}


def test_parts_cover_exactly_the_mask(samples):
    for s in samples:
        assert np.array_equal(s.parts > 0, s.mask)
        # Exact labels: no value outside 0..24 and depth present under every part pixel.
        assert np.all(s.depth[s.mask] > 0)


def test_default_scene_in_frame_and_all_parts_visible(renderer):
    s = renderer.render(SceneParams())
    assert s.mask.mean() > 0.03
    ys, xs = np.nonzero(s.mask)
    assert ys.min() > 0 and ys.max() < s.mask.shape[0] - 1 and xs.min() > 0 and xs.max() < s.mask.shape[1] - 1
    # Frontal view: front torso, both hands, head halves, front leg parts are all visible.
    for p in (2, 3, 4, 10, 9, 14, 13, 23, 24):
        assert (s.parts == p).sum() > 5, p
    assert np.all(s.keypoints["coco17"].visibility == VISIBLE)
    # Facing the camera: the subject's left side appears on the image's right.
    kp = s.keypoints["coco17"]
    assert kp.xy[5, 0] > kp.xy[6, 0]  # left shoulder right of right shoulder


def test_projection_of_3d_keypoints_matches_2d(samples):
    for s in samples:
        for kp in s.keypoints.values():
            z = kp.xyz[:, 2:3]
            proj = kp.xyz[:, :2] / z * np.array([s.K[0, 0], s.K[1, 1]]) + s.K[:2, 2]
            assert np.abs(proj - kp.xy).max() < 0.5


def test_extrinsics_map_world_joints_to_camera_keypoints(samples):
    s = samples[0]
    J = s.joints_world
    cam = J @ s.extrinsics[:3, :3].T + s.extrinsics[:3, 3]
    idx = JOINT_NAMES.index("left_knee")
    h36m = s.keypoints["h36m17"]
    np.testing.assert_allclose(cam[idx], h36m.xyz[h36m.names.index("left_knee")], atol=1e-4)


def test_same_params_identical_pixels(renderer):
    space = ParamSpace.from_groups("pose,shape,camera,background,occluder")
    p = space.to_params(space.sample(np.random.default_rng(5), 1)[0])
    a = renderer.render(p)
    renderer.render(SceneParams())  # something else in between
    b = renderer.render(p)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.parts, b.parts) and np.array_equal(a.depth, b.depth)


def _angle(a, b):
    return math.degrees(math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


@pytest.mark.parametrize("deg", [0, 45, 90, 135])
def test_hinge_angles_follow_parameters(renderer, deg):
    J = {n: i for i, n in enumerate(JOINT_NAMES)}
    p = SceneParams().with_values({"pose.l_elbow_flexion": math.radians(deg), "pose.r_knee_flexion": math.radians(deg)})
    out = renderer.body.forward(
        np.array([[p.pose[k] for k in p.pose]]), np.array([[p.shape[k] for k in p.shape]])
    )
    j = out.joints[0]
    elbow = _angle(j[J["left_elbow"]] - j[J["left_shoulder"]], j[J["left_wrist"]] - j[J["left_elbow"]])
    knee = _angle(j[J["right_knee"]] - j[J["right_hip"]], j[J["right_ankle"]] - j[J["right_knee"]])
    assert abs(elbow - deg) < 1.5 and abs(knee - deg) < 1.5


def test_shoulder_abduction_is_anatomical(renderer):
    J = {n: i for i, n in enumerate(JOINT_NAMES)}
    for deg, expected in ((0, np.array([0, 0, -1.0])), (90, np.array([1.0, 0, 0])), (180, np.array([0, 0, 1.0]))):
        p = SceneParams().with_values({"pose.l_shoulder_abduction": math.radians(deg), "pose.l_elbow_flexion": 0.0})
        out = renderer.body.forward(np.array([list(p.pose.values())]), np.array([list(p.shape.values())]))
        d = out.joints[0, J["left_elbow"]] - out.joints[0, J["left_shoulder"]]
        assert _angle(d, expected) < 3.0, (deg, d)


def test_visibility_codes(renderer):
    # Turned away from the camera: the face keypoints are hidden behind the head.
    back = renderer.render(SceneParams().with_values({"camera.azimuth": math.pi}))
    assert np.all(back.keypoints["coco17"].visibility[:3] == OCCLUDED)
    # Shifted far to the right: the person leaves the frame partly.
    out = renderer.render(SceneParams().with_values({"camera.offset_x": 0.5}))
    vis = out.keypoints["coco17"].visibility
    assert (vis == OUT_OF_FRAME).any() and (vis == VISIBLE).any()
    # A rectangle over the head occludes the face keypoints and removes them from the mask.
    base = renderer.render(SceneParams())
    head_y = base.keypoints["coco17"].xy[0, 1] / 256 - 0.5
    occ = renderer.render(
        SceneParams().with_values({"occluder.kind": "rectangle", "occluder.y": float(head_y), "occluder.width": 0.3, "occluder.height": 0.15})
    )
    assert np.all(occ.keypoints["coco17"].visibility[:5] == OCCLUDED)
    assert occ.mask.sum() < base.mask.sum()


def test_self_penetration_flagged(renderer):
    ok = renderer.render(SceneParams())
    assert ok.plausible
    # Forearm driven through the trunk: shoulder adducted across the body, elbow bent in.
    bad = renderer.render(
        SceneParams().with_values({
            "pose.r_shoulder_abduction": math.radians(-30), "pose.r_shoulder_rotation": math.radians(70),
            "pose.r_elbow_flexion": math.radians(100), "pose.r_shoulder_flexion": math.radians(-10),
        })
    )
    assert not bad.plausible and any("r_forearm" in p or "r_hand" in p for p in bad.plausibility["penetrating"])


def test_missing_gl_names_the_debian_packages(monkeypatch):
    import simulator.gl as gl

    monkeypatch.setattr(gl, "available_backends", lambda: [])
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    with pytest.raises(RenderError, match="apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libgles2"):
        gl.select_backend("auto")
    with pytest.raises(RenderError, match="apt-get install libosmesa6"):
        gl.select_backend("osmesa")


def test_package_render_is_the_function_after_module_import():
    import types

    import simulator
    import simulator.renderer  # noqa: F401  (the module has its own name: no rebinding)

    assert isinstance(simulator.render, types.FunctionType)
    s = simulator.render(SceneParams())
    assert s.mask.any()
    assert len(simulator.render_batch([SceneParams()])) == 1


def test_osmesa_fallback_renders_the_same_person(tmp_path, renderer):
    """OSMesa (own process: the GL platform is fixed per process) gives the same mask."""
    import subprocess
    import sys

    import simulator.gl as gl

    if "osmesa" not in gl.available_backends():
        pytest.skip("libOSMesa not installed (apt-get install libosmesa6)")
    code = (
        "import numpy as np, sys\n"
        "from simulator.renderer import Renderer, RenderConfig\n"
        "from simulator.params import SceneParams\n"
        "s = Renderer(RenderConfig(gl_backend='osmesa')).render(SceneParams())\n"
        f"np.savez(r'{tmp_path}/o.npz', mask=s.mask, parts=s.parts)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    o = np.load(tmp_path / "o.npz")
    e = renderer.render(SceneParams())
    iou = (o["mask"] & e.mask).sum() / (o["mask"] | e.mask).sum()
    assert iou > 0.98
    assert (o["parts"] == e.parts).mean() > 0.99


def test_local_shape_changes_move_the_surface(renderer):
    from simulator.renderer import pose_vector, shape_vector

    def verts(**shape):
        p = SceneParams(shape=shape)
        return renderer.body.forward(pose_vector(p)[None], shape_vector(p)[None]).vertices[0]

    base, belly, hips = verts(), verts(belly=1.0), verts(hip_width=0.9)
    from simulator.parts import REGION_NAMES

    torso = renderer.body.vertex_region == REGION_NAMES.index("torso")
    waist = torso & (np.abs(base[:, 2]) < 0.12)
    # The belly grows forward (-Y) at the waist; the hips widen along X.
    assert belly[waist, 1].min() < base[waist, 1].min() - 0.03
    assert np.ptp(hips[waist, 0]) > np.ptp(base[waist, 0]) + 0.01


def test_a_discarded_renderer_does_not_kill_other_gl_contexts(renderer):
    import gc

    from simulator.renderer import RenderConfig, Renderer

    extra = Renderer(RenderConfig(check_plausibility=False))
    extra.render(SceneParams())
    extra.close()
    del extra
    gc.collect()
    assert renderer.render(SceneParams()).mask.any()  # the shared renderer still works


def test_point_triangle_distance_hand_computed():
    from simulator.lod import point_triangle_distance

    tri = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    pts = np.array([
        [0.2, 0.2, 0.5],  # above the interior: distance to the plane
        [0.5, -1.0, 0.0],  # beside edge a-b
        [2.0, 0.0, 0.0],  # beyond vertex b
        [1.0, 1.0, 1.0],  # beyond the hypotenuse, above the plane
    ])
    d = point_triangle_distance(pts, tri)
    assert np.allclose(d, [0.5, 1.0, 1.0, math.sqrt(0.5 + 1.0)])


def test_low_detail_level_is_a_face_subset_with_measured_deviation(renderer):
    from simulator.lod import build_levels

    body = renderer.body
    levels = build_levels(renderer._rest_vertices, body.faces, body.face_parts)
    low = levels["low"]
    assert len(low.faces) < 0.5 * len(body.faces)
    # Same vertices, every part still present, and the decimated surface stays close.
    assert low.faces.max() < len(body.vertex_region)
    assert set(np.unique(low.face_parts)) == set(np.unique(body.face_parts))
    assert 0 < low.deviation_p999 < 0.01 and low.deviation_p999 <= low.deviation_max < 0.02
    # Part borders are kept: every border vertex of a part is still used by that part's faces.
    for p in (3, 23, 1):
        full_v = np.unique(body.faces[body.face_parts == p])
        other = np.unique(body.faces[body.face_parts != p])
        border = np.intersect1d(full_v, other)
        assert np.isin(border, low.faces[low.face_parts == p]).all(), p


def test_levels_of_detail_render_the_same_person(renderer):
    from simulator.renderer import RenderConfig, Renderer

    full = Renderer(RenderConfig(detail="full"))
    low = Renderer(RenderConfig(detail="low"))
    space = ParamSpace.from_groups("pose,shape,camera")
    for u in space.sample(np.random.default_rng(5), 4):
        p = space.to_params(u)
        a, b = full.render(p), low.render(p)
        assert (a.mesh_detail, b.mesh_detail) == ("full", "low")
        assert np.array_equal(b.parts > 0, b.mask)
        iou = (a.mask & b.mask).sum() / (a.mask | b.mask).sum()
        assert iou > 0.96, iou
        both = a.mask & b.mask
        assert (a.parts[both] == b.parts[both]).mean() > 0.97
        assert np.array_equal(a.keypoints["coco17"].xy, b.keypoints["coco17"].xy)


def test_auto_detail_follows_projected_size(renderer):
    far = SceneParams()
    near = far.with_values({"camera.width": 1024, "camera.height": 1024})
    assert renderer.render(far).mesh_detail == "low"  # 256 px: deviation well under a pixel
    assert renderer.render(near).mesh_detail == "full"  # 1024 px: it would show
