"""Joint conventions and mapping tables."""

from __future__ import annotations

import numpy as np
import pytest

from examiner import conventions as C
from simulator.errors import PoseExaminerError


def test_builtin_conventions_have_expected_sizes_and_common_joints():
    sizes = {"coco17": 17, "h36m17": 17, "smpl24": 24, "blazepose33": 33, "feet6": 6, "common12": 12}
    for name, n in sizes.items():
        conv = C.get_convention(name)
        assert conv.num_joints == n
        if name != "feet6":
            assert set(C.COMMON_JOINTS) <= set(conv.joints), name


def test_coco_to_common_is_a_selection():
    W, valid = C.conversion_matrix("coco17", "common12")
    assert valid.all()
    for k, joint in enumerate(C.COMMON_JOINTS):
        row = np.zeros(17)
        row[C.COCO17.index(joint)] = 1
        np.testing.assert_array_equal(W[k], row)


def test_blazepose_to_coco_direct_rows():
    W, valid = C.conversion_matrix("blazepose33", "coco17")
    assert valid.all()
    assert W[0, 0] == 1.0  # nose -> nose
    assert W[1, 2] == 1.0  # left_eye is BlazePose landmark 2
    assert W[5, 11] == 1.0 and W[16, 28] == 1.0  # left_shoulder, right_ankle
    np.testing.assert_allclose(W.sum(1), 1.0)


def test_blazepose_to_h36m_derived_and_missing():
    W, valid = C.conversion_matrix("blazepose33", "h36m17")
    h = C.H36M17
    pelvis = W[h.index("pelvis")]
    assert pelvis[23] == 0.5 and pelvis[24] == 0.5 and pelvis.sum() == 1.0
    thorax = W[h.index("thorax")]
    assert thorax[11] == 0.5 and thorax[12] == 0.5
    spine = W[h.index("spine")]
    np.testing.assert_allclose(spine[[11, 12, 23, 24]], 0.25)
    assert not valid[h.index("head_top")]
    assert not valid[h.index("neck")]  # only an approximation exists
    _, valid_approx = C.conversion_matrix("blazepose33", "h36m17", allow_approximate=True)
    assert valid_approx[h.index("neck")] and not valid_approx[h.index("head_top")]


def test_convert_numbers():
    j = np.zeros((2, 17, 3))
    j[:, C.COCO17.index("left_hip")] = [1.0, 0.0, 2.0]
    j[:, C.COCO17.index("right_hip")] = [-1.0, 0.0, 4.0]
    out, valid = C.convert(j, "coco17", "h36m17")
    np.testing.assert_allclose(out[:, C.H36M17.index("pelvis")], [[0.0, 0.0, 3.0]] * 2)
    assert np.isnan(out[0, C.H36M17.index("head_top")]).all()
    assert valid.sum() == 15  # all but neck and head_top


def test_smpl_to_coco_has_no_face():
    _, valid = C.conversion_matrix("smpl24", "coco17")
    assert not valid[:5].any() and valid[5:].all()


def test_user_mapping():
    conv = C.user_convention("mynet", ["l_sho", "r_sho", "l_hip", "r_hip", "tail"],
                             {"l_sho": "left_shoulder", "r_sho": "right_shoulder", "l_hip": "left_hip", "r_hip": "right_hip"})
    assert conv.labels[0] == "l_sho" and conv.joints[0] == "left_shoulder"
    W, valid = C.conversion_matrix("mynet", "h36m17")
    assert valid[C.H36M17.index("pelvis")]
    assert W[C.H36M17.index("pelvis"), 2] == 0.5
    with pytest.raises(PoseExaminerError, match="not in its joint list"):
        C.user_convention("bad", ["a"], {"b": "left_hip"})


def test_unknown_convention_one_line_error():
    with pytest.raises(PoseExaminerError) as e:
        C.get_convention("openpose25")
    assert "\n" not in str(e.value) and "coco17" in str(e.value)


def test_sigmas_and_root():
    coco = C.get_convention("coco17")
    assert coco.sigmas[0] == 0.026 and coco.sigmas[C.COCO17.index("left_hip")] == 0.107
    assert np.isnan(C.get_convention("h36m17").sigmas[0])  # pelvis has no COCO sigma
    w = C.get_convention("h36m17").root_weights()
    assert w[C.H36M17.index("left_hip")] == 0.5 and w.sum() == 1.0


def test_mapping_table_rows():
    rows = dict((j, (f, e)) for j, f, e in C.mapping_table("blazepose33", "h36m17"))
    assert rows["pelvis"] == ("0.5*left_hip + 0.5*right_hip", True)
    assert rows["head_top"] == ("-", False)
    assert rows["neck"][1] is False
