import json
import math

import numpy as np
import pytest

from simulator.errors import ParamError
from simulator.joints import POSE_DOFS, POSE_LIMITS
from simulator.params import ParamSpace, SceneParams, default_dimensions, validate_params


def test_space_round_trip_vector_params_vector():
    space = ParamSpace.from_groups("pose,shape,camera,light,occluder,background")
    U = space.sample(np.random.default_rng(0), 50)
    for u in U:
        p = space.to_params(u)
        back = space.to_vector(p)
        cont = [i for i, d in enumerate(space.dimensions) if not d.choices]
        np.testing.assert_allclose(back[cont], u[cont], atol=1e-12)
        # Categorical dims come back as their bin centre, which maps to the same choice.
        p2 = space.to_params(back)
        assert p2.background.kind == p.background.kind and p2.occluder.kind == p.occluder.kind
        np.testing.assert_allclose(space.to_vector(p2), back, atol=1e-12)


def test_scene_json_round_trip():
    space = ParamSpace.from_groups("all")
    p = space.to_params(space.sample(np.random.default_rng(1), 1)[0])
    assert SceneParams.from_json(p.to_json()) == p
    d = json.loads(p.to_json())
    assert d["schema_version"] == 2 and set(d["pose"]) == set(POSE_DOFS)
    # A prior pose records the latent it was decoded from.
    assert len(d["pose_latent"]) == sum(1 for x in space.dimensions if x.is_latent) > 0


def test_restricted_space_keeps_base_fixed():
    base = SceneParams().with_values({"camera.azimuth": 0.7})
    space = ParamSpace.from_groups("joints", base=base)
    p = space.to_params(np.ones(space.dim))
    assert p.camera.azimuth == 0.7
    assert all(math.isclose(p.pose[n], POSE_LIMITS[n][1]) for n in POSE_DOFS)
    assert space.names == [f"pose.{n}" for n in POSE_DOFS]
    assert {d.group for d in space.dimensions} == {"joints"}


def test_pose_group_is_the_prior_latent_and_joints_become_offsets():
    from simulator.prior import load_pose_prior

    prior = load_pose_prior()
    latent = ParamSpace.from_groups("pose")
    assert latent.dim == prior.latent_dim and all(d.is_latent for d in latent.dimensions)
    u = np.random.default_rng(5).uniform(-1, 1, latent.dim)
    p = latent.to_params(u)
    z = np.array(p.pose_latent)
    np.testing.assert_allclose(latent.to_vector(p), u, atol=1e-9)
    expected = prior.decode(z[None])[0]
    np.testing.assert_allclose([p.pose[n] for n in POSE_DOFS], expected, atol=1e-9)
    # u = 0 is the prior's mean; u = +-1 its +-2.5 sigma tails.
    assert latent.dimensions[0].to_physical(0.0) == pytest.approx(0.0, abs=1e-12)
    assert latent.dimensions[0].to_physical(1.0) == pytest.approx(2.5)
    both = ParamSpace.from_groups("pose,joints")
    v = np.r_[u, np.zeros(len(POSE_DOFS))]
    v[latent.dim + POSE_DOFS.index("l_knee_flexion")] = 0.5  # +10 degrees on the prior pose
    q = both.to_params(v)
    lo, hi, _ = POSE_LIMITS["l_knee_flexion"]
    assert q.pose["l_knee_flexion"] == pytest.approx(min(max(p.pose["l_knee_flexion"] + math.radians(10), lo), hi))
    assert q.pose["r_knee_flexion"] == pytest.approx(p.pose["r_knee_flexion"])


def test_single_dimension_and_overrides():
    space = ParamSpace.from_groups("pose.l_knee_flexion,camera", overrides={"camera.framing": (0.4, 0.8)})
    assert space.names[0] == "pose.l_knee_flexion"
    d = {x.name: x for x in space.dimensions}["camera.framing"]
    assert (d.low, d.high) == (0.4, 0.8)
    assert space.to_params(np.r_[0.0, np.full(space.dim - 1, 1.0)]).camera.framing == 0.8


# groups -> (most samples allowed on a limit, least share of each varying DOF's range covered).
# Every pose is clipped to the limits, so "within the limits" alone cannot fail; a mapping
# that ignored the vector, used the wrong bounds or leaned on the clip fails these.
@pytest.mark.parametrize("groups, max_at_limit, min_coverage", [
    ("joints", 0.0, 0.9),  # each DOF mapped linearly onto its limits
    ("pose", 0.03, 0.1),  # prior poses: the clip is a safety net (measured 1% of values)
    ("pose,joints", 0.08, 0.1),  # prior pose + offsets of +-JOINT_OFFSET (measured 4%)
])
def test_sampled_poses_fill_the_anatomical_limits(groups, max_at_limit, min_coverage):
    space = ParamSpace.from_groups(groups)
    params = space.to_params_batch(space.sample(np.random.default_rng(2), 200))
    P = np.array([[p.pose[n] for n in POSE_DOFS] for p in params])
    lo = np.array([POSE_LIMITS[n][0] for n in POSE_DOFS])
    hi = np.array([POSE_LIMITS[n][1] for n in POSE_DOFS])
    assert (P >= lo - 1e-12).all() and (P <= hi + 1e-12).all()
    at_limit = np.isclose(P, lo, rtol=0, atol=1e-9) | np.isclose(P, hi, rtol=0, atol=1e-9)
    assert at_limit.mean() <= max_at_limit
    coverage = np.ptp(P, axis=0) / (hi - lo)
    varying = coverage > 0
    # The prior is yaw-free (root_yaw is its own search dimension); everything else moves.
    assert set(np.array(POSE_DOFS)[~varying]) <= {"root_yaw"}
    assert coverage[varying].min() >= min_coverage
    for p in params[:20]:
        validate_params(p)  # no error


def test_out_of_range_names_parameter_and_range():
    p = SceneParams().with_values({"pose.l_knee_flexion": math.radians(170)})
    with pytest.raises(ParamError, match=r"pose.l_knee_flexion = 170° is outside its range \[0, 135\]°"):
        validate_params(p)
    clamped = validate_params(p, clamp=True)
    assert math.isclose(clamped.pose["l_knee_flexion"], math.radians(135))


def test_unknown_names_and_bad_json_are_one_line_errors():
    with pytest.raises(ParamError, match="unknown pose parameter.*l_kne_flexion"):
        SceneParams(pose={"l_kne_flexion": 0.1})
    with pytest.raises(ParamError, match="unknown parameter 'camera.zoom'"):
        SceneParams().with_values({"camera.zoom": 1})
    with pytest.raises(ParamError, match="malformed scene JSON at line 1"):
        SceneParams.from_json("{not json")
    with pytest.raises(ParamError, match="unknown scene field"):
        SceneParams.from_dict({"posture": {}})
    with pytest.raises(ParamError, match="unknown space group or dimension 'poses'"):
        ParamSpace.from_groups("poses")
    with pytest.raises(ParamError, match="outside \\[-1, 1\\]"):
        ParamSpace.from_groups("camera", clamp=False).to_params(np.full(9, 1.5))
    for e in (ParamError("x"),):
        assert "\n" not in str(e)


def test_every_default_dimension_is_a_scene_parameter():
    flat = SceneParams().flat()
    for d in default_dimensions():
        assert d.name in flat or d.is_latent or d.is_posture


def test_space_limits_narrow_or_fix_a_dimension_in_the_units_examiner_space_shows():
    """'name=LOW:HIGH' narrows (degrees for angles, years for age), 'name=VALUE' or one
    choice fixes the dimension in the base scene, 'a|b' keeps some choices."""
    ps = ParamSpace.from_groups("camera,shape,camera.truncation=0:0.19,camera.elevation=0:30,shape.age=18:80")
    dims = {d.name: d for d in ps.dimensions}
    assert (dims["camera.truncation"].low, dims["camera.truncation"].high) == (0.0, 0.19)
    assert math.isclose(dims["camera.elevation"].high, math.radians(30)) and dims["camera.elevation"].low == 0.0
    assert dims["shape.age"].format(dims["shape.age"].low) == "18 years"
    U = ps.sample(np.random.default_rng(0), 200)
    trunc = np.array([p.camera.truncation for p in ps.to_params_batch(U)])
    assert trunc.min() >= 0.0 and trunc.max() <= 0.19 and trunc.max() > 0.15
    fixed = ParamSpace.from_groups("camera,camera.truncation=0.1,camera.truncation_side=left|right")
    assert "camera.truncation" not in fixed.names and fixed.base.camera.truncation == 0.1
    assert {d.name: d for d in fixed.dimensions}["camera.truncation_side"].choices == ("left", "right")
    one = ParamSpace.from_groups("camera,camera.truncation_side=top")
    assert "camera.truncation_side" not in one.names and one.base.camera.truncation_side == "top"
    # A dimension no group selected joins the space with its narrowed range.
    assert ParamSpace.from_groups("pose,camera.framing=0.5:0.9").names[-1] == "camera.framing"
    # The narrowed space survives the run store's JSON.
    again = ParamSpace.from_dict(json.loads(json.dumps(fixed.to_dict())))
    assert again.names == fixed.names and again.base.camera.truncation == 0.1


@pytest.mark.parametrize("spec, says", [
    ("camera,camera.truncation=0:0.5", "widens camera.truncation"),
    ("camera,camera.truncation=0.3:0.1", "from low to high"),
    ("camera,camera.truncation=", "gives no range"),
    ("camera,camera.elevation=a:30", "'a' is not a number"),
    ("camera,camera.fov=1:2", "names no dimension"),
    ("camera,camera.truncation_side=up", "one or more of bottom|top|left|right"),
    ("pose,pose.z01=1", "can be narrowed"),
    ("camera,camera.truncation=0:0.1,camera.truncation=0", "twice"),
    ("camera.truncation=0", "every dimension of the space is fixed"),
])
def test_bad_space_limits_are_one_line_errors_naming_the_fix(spec, says):
    with pytest.raises(ParamError) as e:
        ParamSpace.from_groups(spec)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_limit_entry_reads_back_as_the_range_it_keeps():
    from simulator.params import limit_entry, parse_limit, with_limits

    ps = ParamSpace.from_groups("pose,shape,camera")
    known = {d.name: d for d in ps.dimensions}
    for name in ("camera.truncation", "camera.elevation", "shape.age", "pose.z03"):
        d = known[name]
        entry = limit_entry(d, -0.4, 1.0)
        back = parse_limit(entry, known)
        assert back.high == d.high and abs(d.to_normalised(back.low) + 0.4) < 2e-3, (entry, back)
    assert limit_entry(known["camera.truncation_side"], -0.6, 0.1) == "camera.truncation_side=bottom|top|left"
    assert with_limits("pose,camera,camera.truncation=0:0.2", ["camera.truncation=0:0.1"]) == \
        "pose,camera,camera.truncation=0:0.1"
