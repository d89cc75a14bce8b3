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
    p = points_world @ extrinsics[:3, :3].T + extrinsics[:3, 3]
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
