"""SMPL / SMPL+H / SMPL-X backend on synthetic model files, loaded through the real smplx layers."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("smplx")

try:  # tests/ as a package (rootdir on sys.path) or as plain folders (this folder on sys.path)
    from tests.simulator.smpl_fixtures import write
except ImportError:  # pragma: no cover - depends on the layout of tests/
    from smpl_fixtures import write  # noqa: E402

from simulator.body import BODY_MODELS, COCO17, FEET6, H36M17, JOINT_NAMES, get_body_model  # noqa: E402
from simulator.errors import AssetError  # noqa: E402
from simulator.joints import POSE_DOFS, POSE_LIMITS  # noqa: E402
from simulator.parts import REGION_NAMES  # noqa: E402
from simulator.smpl_body import ENV_VAR, LANDMARK_NAMES, SKELETONS, SmplBody, joint_region  # noqa: E402

J = {n: i for i, n in enumerate(JOINT_NAMES)}
MEAN_SHAPE = np.full((1, 6), 0.5)
DEG = math.pi / 180


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("smpl_models")
    return {
        "smpl": write(root / "pkl", "smpl"),
        "smpl_npz": write(root / "npz", "smpl", fmt="npz"),
        "smpl_chumpy": write(root / "chumpy", "smpl", chumpy=True),
        "smplh": write(root / "h", "smplh", fmt="npz"),
        "smplx": write(root / "x", "smplx"),
    }


@pytest.fixture(scope="module")
def smpl(models):
    info = models["smpl"]
    return SmplBody("smpl", model_path=info.path, keypoint_vertex_ids=info.landmarks)


@pytest.fixture(scope="module")
def smplx_body(models):
    info = models["smplx"]
    return SmplBody("smplx", model_path=info.path, keypoint_vertex_ids=info.landmarks)


def pose(**deg) -> np.ndarray:
    p = np.zeros((1, len(POSE_DOFS)))
    for k, v in deg.items():
        p[0, POSE_DOFS.index(k)] = v * DEG
    return p


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle_deg(a, b) -> float:
    return math.degrees(math.acos(np.clip(unit(a) @ unit(b), -1, 1)))


def bone(out, a, b):
    return out.joints[0, J[b]] - out.joints[0, J[a]]


# ---- loading and shapes --------------------------------------------------------------------


@pytest.mark.parametrize("key,model_type,layer", [
    ("smpl", "smpl", "SMPLLayer"), ("smpl_npz", "smpl", "SMPLLayer"), ("smpl_chumpy", "smpl", "SMPLLayer"),
    ("smplh", "smplh", "SMPLHLayer"), ("smplx", "smplx", "SMPLXLayer"),
])
def test_loads_through_smplx_with_protocol_shapes(models, key, model_type, layer):
    import smplx

    info = models[key]
    body = SmplBody(model_type, model_path=info.path)
    assert type(body.model) is getattr(smplx, layer)
    V = info.n_vertices
    assert body.faces.dtype == np.int32 and body.faces.shape[1] == 3
    assert body.face_parts.shape == (len(body.faces),) and body.face_parts.dtype == np.uint8
    assert set(np.unique(body.face_parts)) == set(range(1, 25))  # every DensePose part present
    assert body.vertex_region.shape == (V,)
    out = body.forward(np.zeros((3, len(POSE_DOFS))), MEAN_SHAPE)  # shape broadcast over the batch
    assert out.vertices.shape == (3, V, 3) and out.vertices.dtype == np.float32
    assert out.joints.shape == (3, len(JOINT_NAMES), 3)
    assert out.keypoints["coco17"].shape == (3, len(COCO17), 3)
    assert out.keypoints["feet6"].shape == (3, len(FEET6), 3)
    assert out.keypoints["h36m17"].shape == (3, len(H36M17), 3)
    np.testing.assert_allclose(out.joints[:, J["pelvis"]], 0.0, atol=1e-6)
    if model_type == "smplx":
        assert body.texcoords is not None and body.texcoords.shape == (V, 2)
    else:
        assert body.texcoords is None


def test_formats_give_the_same_body(models):
    outs = [SmplBody("smpl", model_path=models[k].path).forward(pose(l_elbow_flexion=40), MEAN_SHAPE)
            for k in ("smpl", "smpl_npz", "smpl_chumpy")]
    for o in outs[1:]:
        np.testing.assert_allclose(o.vertices, outs[0].vertices, atol=1e-6)


def test_registry_and_create_folder_layout(models, monkeypatch):
    assert {"smpl", "smplh", "smplx"} <= set(BODY_MODELS)
    # $POSEEXAMINER_SMPL_DIR/<type>/<PREFIX>_NEUTRAL.<ext>, as smplx.create lays files out.
    root = models["smplx"].path.parent.parent
    (root / "smplx").mkdir(exist_ok=True)
    target = root / "smplx" / "SMPLX_NEUTRAL.npz"
    target.write_bytes(models["smplx"].path.read_bytes())
    monkeypatch.setenv(ENV_VAR, str(root))
    body = SmplBody("smplx")
    assert body.name == "smplx" and body.path == target
    registered = get_body_model("smplx", model_path=str(target))
    assert isinstance(registered, SmplBody) and registered.name == "smplx"


# ---- frame conventions -----------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["smpl", "smplx_body"])
def test_world_frame(fixture, request):
    body = request.getfixturevalue(fixture)
    out = body.forward(np.zeros((1, len(POSE_DOFS))), MEAN_SHAPE)
    j, kp = out.joints[0], dict(zip(COCO17, out.keypoints["coco17"][0]))
    assert j[J["head_top"], 2] > j[J["head"], 2] > j[J["thorax"], 2] > 0.3  # +Z up
    assert j[J["left_ankle"], 2] < -0.7
    assert j[J["left_shoulder"], 0] > 0.1 and j[J["right_shoulder"], 0] < -0.1  # subject's left +X
    assert kp["left_eye"][0] > 0 > kp["right_eye"][0]
    head = out.vertices[0, body.vertex_region == REGION_NAMES.index("head")]
    head_centre = head[head[:, 2] > j[J["head"], 2]].mean(0)
    assert kp["nose"][1] < head_centre[1] - 0.05  # faces -Y
    assert j[J["left_toe"], 1] < j[J["left_ankle"], 1] - 0.05  # toes forward
    # Arms hang at the sides at pose 0 although the model's rest is a T-pose.
    for side in ("left", "right"):
        assert angle_deg(bone(out, f"{side}_shoulder", f"{side}_elbow"), np.array([0, 0, -1.0])) < 1.0
        assert angle_deg(bone(out, f"{side}_elbow", f"{side}_wrist"), np.array([0, 0, -1.0])) < 1.0


def test_root_yaw_turns_to_the_subjects_left(smpl):
    out = smpl.forward(pose(root_yaw=90), MEAN_SHAPE)
    nose = out.keypoints["coco17"][0, COCO17.index("nose")]
    assert nose[0] > 0.05 and abs(nose[1]) < 0.03


# ---- pose mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("side,s", [("left", "l"), ("right", "r")])
@pytest.mark.parametrize("abduction", [0, 90])
def test_elbow_flexion_90(smpl, side, s, abduction):
    out = smpl.forward(pose(**{f"{s}_elbow_flexion": 90, f"{s}_shoulder_abduction": abduction}), MEAN_SHAPE)
    upper, fore = bone(out, f"{side}_shoulder", f"{side}_elbow"), bone(out, f"{side}_elbow", f"{side}_wrist")
    assert angle_deg(upper, fore) == pytest.approx(90.0, abs=0.2)
    assert unit(fore)[1] < -0.99  # the forearm comes forward


@pytest.mark.parametrize("side,s,outward", [("left", "l", 1.0), ("right", "r", -1.0)])
def test_shoulder_abduction_and_flexion(smpl, side, s, outward):
    def arm(**deg):
        out = smpl.forward(pose(**{f"{s}_{k}": v for k, v in deg.items()}), MEAN_SHAPE)
        return unit(bone(out, f"{side}_shoulder", f"{side}_elbow"))

    assert angle_deg(arm(shoulder_abduction=0), np.array([0, 0, -1.0])) < 1.0  # hanging down
    assert angle_deg(arm(shoulder_abduction=90), np.array([outward, 0, 0])) < 1.0  # horizontal, sideways
    assert angle_deg(arm(shoulder_abduction=45), np.array([outward, 0, -1.0])) < 1.0
    assert angle_deg(arm(shoulder_flexion=90), np.array([0, -1.0, 0])) < 1.0  # forward


def test_joint_limits_pass_through(smpl):
    """The body model applies angles as given, up to the limits and without clamping
    (SceneParams validation owns the limits)."""
    for deg in (POSE_LIMITS["l_elbow_flexion"][1] / DEG, 170.0):
        out = smpl.forward(pose(l_elbow_flexion=deg), MEAN_SHAPE)
        upper, fore = bone(out, "left_shoulder", "left_elbow"), bone(out, "left_elbow", "left_wrist")
        assert angle_deg(upper, fore) == pytest.approx(deg, abs=0.2)  # 0 = straight
    lo, hi = (x / DEG for x in POSE_LIMITS["r_shoulder_flexion"][:2])
    up = smpl.forward(pose(r_shoulder_flexion=hi), MEAN_SHAPE)
    assert angle_deg(bone(up, "right_shoulder", "right_elbow"), np.array([0, 0, 1.0])) < 1.0
    back = smpl.forward(pose(r_shoulder_flexion=lo), MEAN_SHAPE)
    assert angle_deg(bone(back, "right_shoulder", "right_elbow"), np.array([0, 0, -1.0])) == pytest.approx(-lo, abs=1.0)
    assert unit(bone(back, "right_shoulder", "right_elbow"))[1] > 0.5  # behind the body
    knee = POSE_LIMITS["l_knee_flexion"][1] / DEG
    out = smpl.forward(pose(l_knee_flexion=knee), MEAN_SHAPE)
    thigh, shin = bone(out, "left_hip", "left_knee"), bone(out, "left_knee", "left_ankle")
    assert angle_deg(thigh, shin) == pytest.approx(knee, abs=2.0)
    assert unit(shin)[1] > 0.5  # the shin folds backwards
    hip = smpl.forward(pose(r_hip_flexion=90), MEAN_SHAPE)
    assert angle_deg(bone(hip, "right_hip", "right_knee"), np.array([0, -1.0, 0])) < 2.0
    bent = smpl.forward(pose(spine_flexion=POSE_LIMITS["spine_flexion"][1] / DEG), MEAN_SHAPE)
    assert bent.joints[0, J["thorax"], 1] < -0.2  # trunk bent forward


def test_smplx_pose_mapping_matches_smpl(smpl, smplx_body):
    rng = np.random.default_rng(3)
    lo = np.array([POSE_LIMITS[k][0] for k in POSE_DOFS])
    hi = np.array([POSE_LIMITS[k][1] for k in POSE_DOFS])
    p = rng.uniform(lo, hi, size=(4, len(POSE_DOFS)))
    a, b = smpl.forward(p, MEAN_SHAPE), smplx_body.forward(p, MEAN_SHAPE)
    # Same skeleton in both synthetic files, except the hand end point (hand joint vs knuckle).
    body = [J[n] for n in JOINT_NAMES if n not in ("left_hand", "right_hand")]
    np.testing.assert_allclose(a.joints[:, body], b.joints[:, body], atol=1e-4)


# ---- shape -----------------------------------------------------------------------------------


def test_shape_mapping(smpl):
    from simulator.params import SHAPE_NAMES

    def out(**pheno):
        s = MEAN_SHAPE.copy()
        for k, v in pheno.items():
            s[0, SHAPE_NAMES.index(k)] = v
        return smpl.forward(np.zeros((1, len(POSE_DOFS))), s)

    def height(o):
        return np.ptp(o.vertices[0, :, 2])

    # The synthetic file's first component shrinks the body: the mapping finds the sign.
    assert smpl.beta_signs[0] == -1.0
    assert height(out(height=1.0)) > height(out(height=0.5)) * 1.05 > height(out(height=0.0)) * 1.1
    width = [np.ptp(out(weight=w).vertices[0, :, 1]) for w in (0.0, 1.0)]
    assert width[1] > width[0] * 1.1
    base = out().vertices
    for name in ("gender", "age", "muscle", "proportions"):
        np.testing.assert_array_equal(out(**{name: 1.0}).vertices, base)
    betas = smpl.betas(np.array([[0.5, 0.5, 0.5, 1.0, 0.0, 0.5]]))
    np.testing.assert_allclose(betas[0, :3], [2.0, 2.0, 0.0])  # height 0 -> -2 sd, times the sign -1


# ---- keypoints and parts -----------------------------------------------------------------


def test_landmarks_from_vertex_ids_and_fallback(models, smpl):
    info = models["smpl"]
    out = smpl.forward(np.zeros((1, len(POSE_DOFS))), MEAN_SHAPE)
    for i, name in enumerate(FEET6):
        np.testing.assert_array_equal(out.keypoints["feet6"][0, i], out.vertices[0, info.landmarks[name]])
    np.testing.assert_array_equal(out.keypoints["coco17"][0, 0], out.vertices[0, info.landmarks["nose"]])
    np.testing.assert_array_equal(
        out.keypoints["coco17"][0, COCO17.index("left_knee")], out.joints[0, J["left_knee"]]
    )
    fallback = SmplBody("smpl", model_path=info.path)  # 652 vertices: not a published topology
    assert fallback.landmark_vertices["nose"] == info.landmarks["nose"]
    expect = {"nose": "head", "left_eye": "head", "right_eye": "head", "left_ear": "head", "right_ear": "head",
              "left_big_toe": "left_foot", "left_small_toe": "left_foot", "left_heel": "left_foot",
              "right_big_toe": "right_foot", "right_small_toe": "right_foot", "right_heel": "right_foot"}
    assert set(expect) == set(LANDMARK_NAMES)
    for name, region in expect.items():
        assert REGION_NAMES[fallback.vertex_region[fallback.landmark_vertices[name]]] == region, name
    with pytest.raises(AssetError, match="out of range"):
        SmplBody("smpl", model_path=info.path, keypoint_vertex_ids=(("nose", 10**6),))


def test_known_topology_uses_published_vertex_ids(smpl):
    from smplx.vertex_ids import vertex_ids

    ids = smpl._landmarks(None, np.zeros((6890, 3)))
    assert ids["nose"] == vertex_ids["smplh"]["nose"] and ids["left_heel"] == vertex_ids["smplh"]["LHeel"]


def test_regions_from_skinning_weights(smpl):
    for names in SKELETONS.values():
        for n in names:
            assert joint_region(n) in REGION_NAMES
    weights = smpl.model.lbs_weights.numpy()
    skeleton = SKELETONS["smpl"]
    for joint, region in (("left_shoulder", "upper_arm_left"), ("right_elbow", "lower_arm_right"),
                          ("left_knee", "lower_leg_left"), ("spine2", "torso"), ("head", "head")):
        verts = weights[:, skeleton.index(joint)] > 0.5
        assert verts.any() and (smpl.vertex_region[verts] == REGION_NAMES.index(region)).all()


# ---- errors --------------------------------------------------------------------------------


def test_missing_file_errors(tmp_path, monkeypatch):
    with pytest.raises(AssetError) as e:
        SmplBody("smpl", model_path=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "SMPL_NEUTRAL.pkl") in msg
    assert ENV_VAR in msg and "smpl.is.tue.mpg.de" in msg
    with pytest.raises(AssetError, match=r"SMPLX_NEUTRAL\.npz.*smpl-x\.is\.tue\.mpg\.de"):
        get_body_model("smplx", model_path=str(tmp_path))
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(AssetError, match=f"{ENV_VAR}.*unset") as e:
        SmplBody("smpl")
    assert "\n" not in str(e.value)
    with pytest.raises(AssetError, match="not found"):
        SmplBody("smpl", model_path=tmp_path / "nope.pkl")


def test_bad_files(tmp_path, models):
    junk = tmp_path / "SMPL_NEUTRAL.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(AssetError, match="not a readable SMPL model file"):
        SmplBody("smpl", model_path=junk)
    with pytest.raises(AssetError, match="joints"):  # an SMPL-X file loaded as SMPL+H
        SmplBody("smplh", model_path=models["smplx"].path)


# ---- rendering ---------------------------------------------------------------------------


def test_renders_with_the_synthetic_smpl(models):
    from simulator.gl import available_backends

    if not available_backends():
        pytest.skip("no headless OpenGL library")
    from simulator.params import SceneParams
    from simulator.renderer import RenderConfig, Renderer

    config = RenderConfig(body_model="smpl", body_options=(("model_path", str(models["smpl"].path)),))
    renderer = Renderer(config)
    try:
        sample = renderer.render(SceneParams())
    finally:
        renderer.close()
    assert sample.mask.sum() > 500
    assert ((sample.parts > 0) == sample.mask).all()
    assert len(np.unique(sample.parts[sample.mask])) >= 8
