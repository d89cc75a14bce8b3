"""Pinhole camera geometry (pure numpy)."""

from __future__ import annotations

import math

import numpy as np

from simulator.params import CameraParams

# OpenGL camera frame -> OpenCV camera frame.
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def intrinsics(cam: CameraParams) -> np.ndarray:
    """(3, 3) K with square pixels and the principal point at the image centre."""
    fy = 0.5 * cam.height / math.tan(0.5 * cam.fov_y)
    return np.array([[fy, 0.0, 0.5 * cam.width], [0.0, fy, 0.5 * cam.height], [0.0, 0.0, 1.0]])


def camera_to_world_gl(cam: CameraParams, target: np.ndarray) -> np.ndarray:
    """(4, 4) camera-to-world pose in the OpenGL convention (x right, y up, looking -z).

    The camera sits at `distance` from `target` (world, +Z up, subject facing -Y) at the
    given azimuth / elevation, rolled about its optical axis, then shifted in its image
    plane so the target appears at offset_x * width, offset_y * height from the centre."""
    az, el = cam.azimuth, cam.elevation
    direction = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
    pos = np.asarray(target, dtype=np.float64) + cam.distance * direction
    fwd = -direction
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-8:  # looking straight up/down
        right = np.array([math.cos(az), math.sin(az), 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    c, s = math.cos(cam.roll), math.sin(cam.roll)
    right, up = c * right + s * up, -s * right + c * up
    half_h = cam.distance * math.tan(0.5 * cam.fov_y)
    half_w = half_h * cam.width / cam.height
    pos = pos - 2 * cam.offset_x * half_w * right + 2 * cam.offset_y * half_h * up
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, up, -fwd, pos
    return T


def world_to_camera_cv(cam_to_world_gl: np.ndarray) -> np.ndarray:
    """(4, 4) world -> OpenCV camera extrinsics."""
    return GL_TO_CV @ np.linalg.inv(cam_to_world_gl)


def project(points_world: np.ndarray, K: np.ndarray, extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """points (..., 3) world -> (xy (..., 2) pixels, xyz (..., 3) camera frame)."""
    # einsum, not a BLAS product: BLAS changes the last bits with its thread count, and the
    # camera's framing iterates on these projections (same scene, same pixels, any process).
    p = np.einsum("...j,ij->...i", points_world, extrinsics[:3, :3], optimize=False) + extrinsics[:3, 3]
    z = p[..., 2:3]
    xy = p[..., :2] / np.where(np.abs(z) < 1e-9, 1e-9, z) * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
    return xy, p


def look_at_pose(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) OpenGL-style pose at `eye` whose -Z axis points at `target`."""
    fwd = np.asarray(target, float) - np.asarray(eye, float)
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-8:
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, up, -fwd, eye
    return T


# The camera stays at least this far above the floor (m): below it, the elevation is raised.
MIN_CAMERA_HEIGHT = 0.3


def _image_box(cam: CameraParams, target: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[x0, y0, x1, y1] pixels of `points` (N, 3) world seen by `cam` looking at `target`."""
    xy, _ = project(points, intrinsics(cam), world_to_camera_cv(camera_to_world_gl(cam, target)))
    return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])


def resolve_camera(cam: CameraParams, points: np.ndarray, floor_z: float | None = None,
                   target: np.ndarray | None = None) -> CameraParams:
    """The camera as rendered: framing, truncation and the floor turned into a concrete
    distance, elevation and image offsets.

    points (N, 3) world: the person (a few hundred body vertices are enough). With
    `cam.framing` > 0 the distance puts the person's larger image extent at that fraction
    of the image; with a floor at `floor_z` the elevation is raised where needed to keep
    the camera MIN_CAMERA_HEIGHT above it; `cam.truncation` shifts the person so that
    fraction of their image box lies outside the image on `cam.truncation_side`. Returns
    a camera with framing and truncation kept (they describe the scene) whose distance,
    elevation and offsets already include them. target: the look-at point (default: the
    centre of the points' bounding box)."""
    import dataclasses

    points = np.asarray(points, dtype=np.float64)
    if target is None:
        target = 0.5 * (points.min(0) + points.max(0))
    out = dataclasses.replace(cam, offset_x=0.0, offset_y=0.0)

    def floor_clamp(c: CameraParams) -> CameraParams:
        if floor_z is None:
            return c
        height = target[2] + c.distance * math.sin(c.elevation) - floor_z
        if height >= MIN_CAMERA_HEIGHT:
            return c
        s = (floor_z + MIN_CAMERA_HEIGHT - target[2]) / c.distance
        return dataclasses.replace(c, elevation=math.asin(min(max(s, -1.0), 1.0)))

    out = floor_clamp(out)
    if cam.framing > 0:
        for _ in range(3):  # extent ~ 1 / distance; perspective needs a few rounds
            box = _image_box(out, target, points)
            extent = max((box[3] - box[1]) / cam.height, (box[2] - box[0]) / cam.width)
            out = floor_clamp(dataclasses.replace(out, distance=float(out.distance * extent / cam.framing)))
            # Keep the camera out of the body: at least 0.3 m beyond its bounding sphere.
            radius = float(np.linalg.norm(points - target, axis=1).max())
            if out.distance < radius + 0.3:
                out = floor_clamp(dataclasses.replace(out, distance=radius + 0.3))
    framed = out
    for _ in range(4):  # offsets move the camera in its image plane, maybe towards the floor
        out = _truncate(dataclasses.replace(framed, offset_x=cam.offset_x, offset_y=cam.offset_y), target, points)
        if floor_z is None:
            break
        low = floor_z + MIN_CAMERA_HEIGHT - camera_to_world_gl(out, target)[2, 3]
        if low <= 1e-4:
            break
        # Raise the camera along its orbit by the height it lacks (plus a margin).
        lift = math.asin(min(1.0, (low + 0.02) / framed.distance))
        framed = dataclasses.replace(framed, elevation=min(framed.elevation + lift, math.pi / 2 - 1e-3))
    # Rounded (micrometres, nanoradians): the body model's float32 vertices can differ in
    # their last bits between processes (its caches depend on what it evaluated before),
    # and the camera, iterated on them, would carry that into every pixel's position.
    return dataclasses.replace(out, distance=round(out.distance, 6), elevation=round(out.elevation, 9),
                               offset_x=round(out.offset_x, 9), offset_y=round(out.offset_y, 9))


def _truncate(cam: CameraParams, target: np.ndarray, points: np.ndarray) -> CameraParams:
    """Shift `cam` so cam.truncation of the points' image box lies beyond cam.truncation_side."""
    import dataclasses

    if cam.truncation <= 0:
        return cam
    W, H, t = cam.width, cam.height, cam.truncation
    for _ in range(2):  # the shift is exact at the target's depth; once more for parallax
        x0, y0, x1, y1 = _image_box(cam, target, points)
        dx = dy = 0.0
        if cam.truncation_side == "bottom":
            dy = H + t * (y1 - y0) - y1
        elif cam.truncation_side == "top":
            dy = -t * (y1 - y0) - y0
        elif cam.truncation_side == "left":
            dx = -t * (x1 - x0) - x0
        else:
            dx = W + t * (x1 - x0) - x1
        cam = dataclasses.replace(cam, offset_x=cam.offset_x + dx / W, offset_y=cam.offset_y + dy / H)
    return cam
