"""Shared fixtures for the examiner tests: synthetic `Sample`s with exact, hand-built
ground truth (no renderer needed)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from examiner.conventions import COCO17, H36M17, conversion_matrix
from simulator.params import SceneParams
from simulator.sample import VISIBLE, Keypoints, Sample

# A standing person facing the camera, hip centre at the origin; OpenCV axes (y down),
# metres. The subject's left is +x (it appears on the image's right).
_TEMPLATE = {
    "nose": (0.0, -0.68, -0.10), "left_eye": (0.03, -0.72, -0.08), "right_eye": (-0.03, -0.72, -0.08),
    "left_ear": (0.07, -0.70, 0.0), "right_ear": (-0.07, -0.70, 0.0),
    "left_shoulder": (0.18, -0.50, 0.0), "right_shoulder": (-0.18, -0.50, 0.0),
    "left_elbow": (0.21, -0.22, 0.02), "right_elbow": (-0.21, -0.22, 0.02),
    "left_wrist": (0.22, 0.03, -0.02), "right_wrist": (-0.22, 0.03, -0.02),
    "left_hip": (0.10, 0.0, 0.0), "right_hip": (-0.10, 0.0, 0.0),
    "left_knee": (0.10, 0.45, -0.01), "right_knee": (-0.10, 0.45, -0.01),
    "left_ankle": (0.10, 0.87, 0.03), "right_ankle": (-0.10, 0.87, 0.03),
}
COCO_TEMPLATE = np.array([_TEMPLATE[n] for n in COCO17], dtype=np.float64)
FOCAL = 300.0
SIZE = 256


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def project(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = (xyz / xyz[:, 2:3]) @ K.T
    return uvw[:, :2]


def synthetic_sample(params: SceneParams, size: int = SIZE) -> Sample:
    """A Sample whose skeleton depends on the scene: body yaw = camera azimuth, distance =
    camera distance, left knee flexion bends the left leg. Image: seeded noise with a
    brighter person box."""
    cam = params.camera
    R = _rot_y(-cam.azimuth)
    body = COCO_TEMPLATE.copy()
    flex = params.pose.get("l_knee_flexion", 0.0)
    knee = body[COCO17.index("left_knee")]
    shin = body[COCO17.index("left_ankle")] - knee
    body[COCO17.index("left_ankle")] = knee + np.array([0.0, math.cos(flex), math.sin(flex)]) * np.linalg.norm(shin)
    xyz = body @ R.T + np.array([0.0, 0.0, cam.distance])
    K = np.array([[FOCAL, 0, size / 2], [0, FOCAL, size / 2], [0, 0, 1]], dtype=np.float64)
    xy = project(xyz, K)
    W, _ = conversion_matrix("coco17", "h36m17")
    h_xyz = W @ xyz
    head = xyz[COCO17.index("nose")] + np.array([0.0, -0.15, 0.08])
    h_xyz[H36M17.index("head_top")] = head
    h_xyz[H36M17.index("neck")] = 0.5 * (h_xyz[H36M17.index("thorax")] + xyz[COCO17.index("nose")])
    h_xy = project(h_xyz, K)
    lo, hi = xy.min(0) - 10, xy.max(0) + 10
    bbox = np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float32)
    rng = np.random.default_rng(zlib.crc32(params.to_json(sort_keys=True).encode()))
    rgb = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), bool)
    x0, y0, x1, y1 = np.clip(bbox, 0, size).astype(int)
    mask[y0:y1, x0:x1] = True
    rgb[mask] += 120
    kp = {
        "coco17": Keypoints("coco17", COCO17, xy.astype(np.float32), xyz.astype(np.float32),
                            np.full(17, VISIBLE, np.int8)),
        "h36m17": Keypoints("h36m17", H36M17, h_xy.astype(np.float32), h_xyz.astype(np.float32),
                            np.full(17, VISIBLE, np.int8)),
    }
    return Sample(
        rgb=rgb, mask=mask, depth=np.zeros((size, size), np.float32), parts=np.zeros((size, size), np.uint8),
        keypoints=kp, K=K.astype(np.float32), extrinsics=np.eye(4, dtype=np.float32), bbox=bbox, params=params,
    )


def synthetic_render(params_list):
    return [synthetic_sample(p) for p in params_list]


@pytest.fixture
def make_samples():
    """make_samples(n, seed=0) -> n synthetic Samples with varied camera azimuth/distance."""

    def make(n: int, seed: int = 0) -> list[Sample]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            p = SceneParams().with_values({
                "camera.azimuth": float(rng.uniform(-0.6, 0.6)),
                "camera.distance": float(rng.uniform(2.8, 4.0)),
            })
            out.append(synthetic_sample(p))
        return out

    return make


@pytest.fixture
def render_fn():
    """A stand-in for simulator.render_batch built on synthetic_sample."""
    return synthetic_render


@pytest.fixture
def coco_template():
    """(17, 3) standing skeleton, metres, hip centre at the origin, OpenCV axes."""
    return COCO_TEMPLATE.copy()


@pytest.fixture
def rot_y():
    return _rot_y


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """$POSEEXAMINER_HOME in a temp folder (no real installs visible)."""
    monkeypatch.setenv("POSEEXAMINER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
