"""The realistic world: floor contact, framing, truncation, body-relative occluders."""

import dataclasses
import math

import numpy as np
import pytest

from simulator.camera import MIN_CAMERA_HEIGHT, camera_to_world_gl
from simulator.params import CameraParams, OccluderParams, ParamSpace, SceneParams
from simulator.renderer import OCCLUDER_REGION_PARTS, occlusion_fractions


@pytest.fixture(scope="module")
def renderer():
    from simulator.renderer import get_renderer

    return get_renderer()


@pytest.fixture(scope="module", params=["pose,camera,occluder,ground", "pose,posture,camera"])
def world_samples(renderer, request):
    # the second space tilts a third of its bodies past 120 degrees (inverted) and a third
    # lying: they must rest on the floor too
    space = ParamSpace.from_groups(request.param)
    U = space.sample(np.random.default_rng(11), 24)
    return renderer.render_batch(space.to_params_batch(U))


def _camera_height(s):
    cam_pose = np.linalg.inv(s.extrinsics.astype(np.float64))  # camera -> world (OpenCV axes)
    return float(cam_pose[2, 3])


def test_no_body_below_the_floor_and_camera_above_it(world_samples):
    for s in world_samples:
        assert s.ground_height is not None
        assert np.all(s.joints_world[:, 2] >= s.ground_height - 1e-6)
        # 3D keypoints back in the world frame lie on or above the floor too.
        R, t = s.extrinsics[:3, :3].astype(np.float64), s.extrinsics[:3, 3].astype(np.float64)
        for kp in s.keypoints.values():
            world = (kp.xyz.astype(np.float64) - t) @ R
            assert np.all(world[:, 2] >= s.ground_height - 1e-3)
        assert _camera_height(s) >= s.ground_height + MIN_CAMERA_HEIGHT - 1e-3


def test_floor_is_drawn_but_not_part_of_the_person(renderer):
    base = SceneParams(camera=CameraParams(elevation=math.radians(25), framing=0.6))
    with_floor = renderer.render(base)
    without = renderer.render(base.replace(ground=dataclasses.replace(base.ground, kind="none")))
    assert np.array_equal(with_floor.mask, without.mask)
    below_feet = slice(int(with_floor.bbox[3]) + 2, None)
    diff = np.abs(with_floor.rgb[below_feet].astype(int) - without.rgb[below_feet].astype(int)).sum(-1)
    assert (diff > 10).mean() > 0.9  # the floor replaces the background under the feet


def _floor_inputs(pattern):
    """A camera 2 m above the floor looking straight down (OpenCV axes: x right, y down,
    z forward = world -z), a solid or tiled floor, no shadow on the image."""
    from simulator import floor
    from simulator.params import GroundParams

    K = np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = np.diag([1.0, -1.0, -1.0])
    cam_to_world[:3, 3] = [0.0, 0.0, 2.0]
    smap = floor.shadow_map(np.array([[50.0, 50.0, 0.0], [50.1, 50.0, 1.0]]), 0.0, np.array([0.0, 0.0, 1.0]))
    ground = GroundParams(kind="floor", pattern=pattern, tile_size=0.5, hue=0.3, saturation=0.5, value=0.6)
    return floor, K, cam_to_world, smap, ground


def test_floor_layer_lights_every_background_pixel_and_only_those():
    floor, K, cam_to_world, smap, ground = _floor_inputs("solid")
    bg = np.zeros((64, 64, 3), np.float32)
    pixels = np.ones((64, 64), bool)
    pixels[20:30, 10:40] = False  # where the body is
    direct, ambient = floor.upward_light(3.0, math.radians(60), 0.3)
    floor.floor_layer(bg, pixels, ground, (direct, ambient), K, cam_to_world, 0.0, np.zeros(2), smap)
    from simulator.appearance import hsv

    expected = np.minimum(hsv(0.3, 0.5, 0.6) * (ambient + direct) ** (1 / 2.2), 1.0)
    assert np.allclose(bg[pixels], expected, atol=1e-5)
    assert np.all(bg[~pixels] == 0)


def test_floor_tiles_have_grout_lines_and_are_deterministic():
    floor, K, cam_to_world, smap, ground = _floor_inputs("tiles")
    out = []
    for _ in range(2):
        bg = np.zeros((64, 64, 3), np.float32)
        floor.floor_layer(bg, np.ones((64, 64), bool), ground, (0.5, 0.3), K, cam_to_world, 0.0, np.zeros(2), smap)
        out.append(bg)
    assert np.array_equal(out[0], out[1])
    grey = out[0].sum(-1)
    # 2 cm per pixel, 0.5 m tiles: the grout line of the tile edge at x = 0 (column 32) is
    # darker than the tile beside it.
    assert grey[:, 32].mean() < 0.75 * grey[:, 40].mean()


@pytest.mark.parametrize("framing", [0.35, 0.6, 0.9])
def test_framing_sets_the_person_extent(renderer, framing):
    p = SceneParams(camera=CameraParams(framing=framing, azimuth=0.6, elevation=0.2))
    s = renderer.render(p)
    x0, y0, x1, y1 = s.bbox
    extent = max((y1 - y0) / s.rgb.shape[0], (x1 - x0) / s.rgb.shape[1])
    assert extent == pytest.approx(framing, abs=0.04)


@pytest.mark.parametrize("side", ["bottom", "top", "left", "right"])
def test_truncation_puts_that_share_of_the_person_outside(renderer, side):
    t = 0.3
    p = SceneParams(camera=CameraParams(framing=0.6, truncation=t, truncation_side=side))
    s = renderer.render(p)
    full = renderer.render(p.replace(camera=dataclasses.replace(p.camera, truncation=0.0)))
    # The visible box lost `t` of the person's extent along the truncated axis.
    axis = 1 if side in ("bottom", "top") else 0
    full_extent = full.bbox[axis + 2] - full.bbox[axis]
    visible = s.bbox[axis + 2] - s.bbox[axis]
    assert visible / full_extent == pytest.approx(1 - t, abs=0.06)
    edge = {"bottom": s.bbox[3] == s.rgb.shape[0], "top": s.bbox[1] == 0,
            "left": s.bbox[0] == 0, "right": s.bbox[2] == s.rgb.shape[1]}[side]
    assert edge


@pytest.mark.parametrize("kind,part", [("box", "left_leg"), ("box", "torso"), ("pole", "head"), ("pole", "right_arm")])
def test_occlusion_fractions_agree_with_the_part_map(renderer, kind, part):
    p = SceneParams(camera=CameraParams(framing=0.8, azimuth=0.3),
                    occluder=OccluderParams(kind=kind, part=part, coverage=0.5))
    s = renderer.render(p)
    clear = renderer.render(p.replace(occluder=OccluderParams(kind="none")))
    assert s.occlusion[part] is not None and s.occlusion[part] > 0.2
    for region, ids in OCCLUDER_REGION_PARTS.items():
        n_full = np.isin(clear.parts, ids).sum()
        if n_full == 0:
            assert s.occlusion[region] is None
            continue
        hidden = 1.0 - np.isin(s.parts, ids).sum() / n_full
        assert s.occlusion[region] == pytest.approx(hidden, abs=0.01), region
    assert s.ground_truth()["occlusion"] == s.occlusion


def test_occlusion_fractions_function():
    full = np.zeros((4, 4), np.uint8)
    full[:2, :2] = 23  # head, 4 pixels
    full[2:, :] = 1  # torso, 8 pixels
    foot = np.zeros((4, 4), bool)
    foot[:, 0] = True
    f = occlusion_fractions(full, foot)
    assert f["head"] == 0.5 and f["torso"] == 0.25 and f["left_leg"] is None


def test_v1_scene_reads_without_floor():
    d = SceneParams().to_dict()
    d["schema_version"] = 1
    for key in ("ground", "pose_latent"):
        d.pop(key)
    for key in ("framing", "truncation", "truncation_side"):
        d["camera"].pop(key)
    for key in ("part", "coverage"):
        d["occluder"].pop(key)
    p = SceneParams.from_dict(d)
    assert p.ground.kind == "none" and p.camera.framing == 0 and p.schema_version == 2


@pytest.mark.parametrize("part", ["head", "torso", "left_arm"])
def test_a_box_hides_its_region_not_the_body_below_it(renderer, part):
    # A box over the head is a panel in front of the head, not a wall that rises from the
    # image bottom and hides the whole person below it.
    p = SceneParams(camera=CameraParams(framing=0.8, azimuth=0.3),
                    occluder=OccluderParams(kind="box", part=part, coverage=0.5))
    s = renderer.render(p)
    assert s.occlusion[part] > 0.25
    assert s.occlusion["left_leg"] < 0.4 and s.occlusion["right_leg"] < 0.4  # a torso box reaches the hips
    legs = renderer.render(p.replace(occluder=OccluderParams(kind="box", part="left_leg", coverage=0.5)))
    assert legs.occlusion["left_leg"] > 0.25 and legs.occlusion["head"] == 0.0
