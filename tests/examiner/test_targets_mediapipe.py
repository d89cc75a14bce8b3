"""MediaPipe BlazePose through its worker, on a real photograph.

Needs the environment made by `examiner targets install mediapipe`; skipped otherwise.
The photograph is matplotlib's sample `grace_hopper.jpg`, which that environment ships.
"""

from __future__ import annotations

import numpy as np
import pytest

from examiner.conventions import BLAZEPOSE33, COCO17, convert
from examiner.targets import TargetBatch, checked_predict, load_target
from examiner.targets.envs import env_path, is_installed

pytestmark = pytest.mark.mediapipe

if not is_installed("mediapipe"):
    pytest.skip("MediaPipe environment not installed: run `examiner targets install mediapipe`",
                allow_module_level=True)

PHOTO = next(env_path("mediapipe").glob("lib/python*/site-packages/matplotlib/mpl-data/sample_data/grace_hopper.jpg"), None)


@pytest.fixture(scope="module")
def model():
    m = load_target("mediapipe?crop=full")
    yield m
    m.close()


@pytest.fixture(scope="module")
def photo():
    if PHOTO is None:
        pytest.skip("grace_hopper.jpg not found in the MediaPipe environment")
    from PIL import Image

    return np.asarray(Image.open(PHOTO).convert("RGB"))


def _batch(images):
    h, w = images[0].shape[:2]
    K = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float32)
    return TargetBatch(np.stack(images), np.tile(K, (len(images), 1, 1)),
                       np.tile(np.array([0, 0, w, h], np.float32), (len(images), 1)))


def test_declaration(model):
    assert model.convention == "blazepose33"
    assert {"joints2d", "joints3d", "confidence"} <= model.outputs
    assert model.frame == "root_relative"


def test_real_photo_landmarks_are_where_the_person_is(model, photo):
    blank = np.zeros_like(photo)
    pred = checked_predict(model, _batch([photo, blank, photo[:, ::-1].copy()]))
    assert [f.kind if f else None for f in pred.failures] == [None, "no_detection", None]
    j2 = pred.joints2d[0]
    nose = j2[BLAZEPOSE33.index("nose")]
    ls, rs = j2[BLAZEPOSE33.index("left_shoulder")], j2[BLAZEPOSE33.index("right_shoulder")]
    # 512 x 600 portrait: the face is in the upper middle, the shoulders below it
    assert 200 < nose[0] < 330 and 150 < nose[1] < 300
    assert ls[0] > nose[0] > rs[0]  # the subject's left is on the image's right
    assert ls[1] > nose[1] + 100 and rs[1] > nose[1] + 100
    assert pred.confidence[0, BLAZEPOSE33.index("nose")] > 0.9
    # mirrored photo: the nose moves to the mirrored x
    assert abs(pred.joints2d[2, 0, 0] - (photo.shape[1] - nose[0])) < 15
    # world landmarks: metres, origin between the hips, y down
    j3 = pred.joints3d[0]
    hips = 0.5 * (j3[BLAZEPOSE33.index("left_hip")] + j3[BLAZEPOSE33.index("right_hip")])
    assert np.linalg.norm(hips) < 0.05
    width = np.linalg.norm(j3[BLAZEPOSE33.index("left_shoulder")] - j3[BLAZEPOSE33.index("right_shoulder")])
    assert 0.2 < width < 0.5
    assert j3[BLAZEPOSE33.index("nose"), 1] < -0.4  # head above the hips


def test_mapping_to_coco(model, photo):
    pred = checked_predict(model, _batch([photo]))
    coco, valid = convert(pred.joints2d, "blazepose33", "coco17")
    assert valid.all()
    np.testing.assert_allclose(coco[0, COCO17.index("left_ear")], pred.joints2d[0, BLAZEPOSE33.index("left_ear")])


def test_box_crop_agrees_with_full_image(photo):
    with load_target("mediapipe?crop=box") as boxed, load_target("mediapipe?crop=full") as full:
        h, w = photo.shape[:2]
        batch = _batch([photo])
        batch.boxes[:] = [60, 100, 480, 600]
        a, b = checked_predict(boxed, batch), checked_predict(full, batch)
    nose = BLAZEPOSE33.index("nose")
    assert np.linalg.norm(a.joints2d[0, nose] - b.joints2d[0, nose]) < 20
