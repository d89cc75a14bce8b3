"""Garments: templates, style / pose directions, penetration, determinism, the
predictor against the draping simulation, and user errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.errors import ParamError, PoseExaminerError
from simulator.garments import GARMENTS, GarmentError
from simulator.garments.spec import ClothingParams, check_style
from simulator.joints import POSE_DOFS, neutral_pose

NEUTRAL = np.array([neutral_pose()[k] for k in POSE_DOFS])
MEAN_SHAPE = np.full(6, 0.5)


def _pose(**deg):
    p = dict(zip(POSE_DOFS, NEUTRAL))
    p.update({k: math.radians(v) for k, v in deg.items()})
    return np.array([p[k] for k in POSE_DOFS])


@pytest.fixture(scope="module")
def wardrobe():
    from simulator.garments import get_wardrobe

    return get_wardrobe()


def _dress(wardrobe, name, style, pose=NEUTRAL, shape=MEAN_SHAPE, **kw):
    return wardrobe.dress(name, style, pose[None], shape[None], **kw)


def _distance_to_body(wardrobe, x, pose=NEUTRAL, shape=MEAN_SHAPE):
    from scipy.spatial import cKDTree

    body = wardrobe.rig.body.forward(pose[None], shape[None]).vertices[0]
    return cKDTree(body).query(x)[0]


def test_templates_are_coarse_meshes_on_the_body(wardrobe):
    for name in GARMENTS:
        geom = wardrobe.geometry(name)
        n = geom.n_vertices
        assert 800 <= n <= 3000, (name, n)
        assert geom.faces.min() == 0 and geom.faces.max() == n - 1
        assert len(np.unique(geom.faces)) == n  # no unused vertex
        if geom.spec.kind != "skirt":  # tops and bottoms are the body's own vertices and faces
            ids = geom.template.body_ids
            assert len(np.unique(ids)) == n
            body_faces = {tuple(sorted(f)) for f in wardrobe.rig.faces.tolist()}
            assert all(tuple(sorted(ids[f])) in body_faces for f in geom.faces[:200].tolist())


@pytest.mark.parametrize("name", ["t-shirt", "shirt"])
def test_longer_sleeves_cover_more_arm(wardrobe, name):
    from simulator.garments.chains import chain_coords, chain_points

    geom = wardrobe.geometry(name)
    rig = wardrobe.rig
    arm = chain_points(rig.mean_rest_heads, rig, "arm_l")
    reach = []
    for sleeve in (0.0, 0.5, 1.0):
        a = geom.anchors([sleeve, 0.5, 0.3, 0.0])
        rest = geom.rest_shape(a, rig.mean_rest_vertices, rig.mean_rest_heads)
        left = geom.template.chain == 1
        s, _, _ = chain_coords(rest[left], arm)
        reach.append(s.max())
    assert reach[0] < reach[1] - 0.05 < reach[2] - 0.1, reach
    # Posed and predicted: more of the left forearm / upper arm lies under cloth.
    covered = []
    for sleeve in (0.0, 1.0):
        g = _dress(wardrobe, name, [sleeve, 0.5, 0.3, 0.0])
        body = rig.body.forward(NEUTRAL[None], MEAN_SHAPE[None]).vertices[0]
        from scipy.spatial import cKDTree

        arm_ids = rig.region_ids(["upper_arm_left", "lower_arm_left"])
        d, _ = cKDTree(g.vertices[0]).query(body[arm_ids])
        covered.append((d < 0.04).mean())
    assert covered[1] > covered[0] + 0.15, covered


@pytest.mark.parametrize("name,slot", [("t-shirt", "upper"), ("pants", "lower"), ("shorts", "lower"), ("skirt", "lower")])
def test_longer_hem_reaches_lower(wardrobe, name, slot):
    lows = [_dress(wardrobe, name, [0.5, h, 0.3, 0.5]).vertices[0][:, 2].min() for h in (0.0, 1.0)]
    assert lows[1] < lows[0] - 0.05, lows


@pytest.mark.parametrize("name", list(GARMENTS))
def test_looser_is_further_from_the_body(wardrobe, name):
    gaps = [np.median(_distance_to_body(wardrobe, _dress(wardrobe, name, [0.5, 0.5, l, 0.0]).vertices[0])) for l in (0.0, 1.0)]
    assert gaps[1] > gaps[0] + 0.005, (name, gaps)


def test_raised_arm_raises_the_sleeve(wardrobe):
    geom = wardrobe.geometry("shirt")
    left = geom.template.chain == 1
    down = _dress(wardrobe, "shirt", [1, 0.5, 0.3, 0], _pose(l_shoulder_abduction=0)).vertices[0]
    up = _dress(wardrobe, "shirt", [1, 0.5, 0.3, 0], _pose(l_shoulder_abduction=100)).vertices[0]
    assert up[left, 2].mean() > down[left, 2].mean() + 0.15
    assert np.median(_distance_to_body(wardrobe, up[left], _pose(l_shoulder_abduction=100))) < 0.05


def test_hip_flexion_moves_the_trouser_leg_forward(wardrobe):
    geom = wardrobe.geometry("pants")
    left = geom.template.chain == 3
    a = _dress(wardrobe, "pants", [0, 1, 0.3, 0.5], _pose(l_hip_flexion=0)).vertices[0]
    b = _dress(wardrobe, "pants", [0, 1, 0.3, 0.5], _pose(l_hip_flexion=80)).vertices[0]
    assert b[left, 1].mean() < a[left, 1].mean() - 0.1  # forward is -Y


def test_penetration_below_one_percent(wardrobe):
    from simulator.garments.training.train import sample_poses, sample_shapes

    rng = np.random.default_rng(11)
    for name, spec in GARMENTS.items():
        P, S, G = sample_poses(rng, spec.slot, 4), sample_shapes(rng, 4), rng.uniform(0, 1, (4, 4))
        g = wardrobe.dress(name, G, P, S)
        for b in range(4):
            body = wardrobe.rig.pose(wardrobe.rig.pose_deltas(P[b:b + 1]), S[b:b + 1])
            x = g.vertices[b] + body.offset[0]
            assert wardrobe.collider.inside_fraction(x, body.vertices[0]) < 0.01, name


def test_fast_path_matches_the_whole_body_reference(wardrobe):
    """`Wardrobe.dress` poses only the collider's body vertices (batched), takes their
    normals from the faces around them and blends rest shapes with cached sparse anchor
    matrices; it must give what the plain whole-body computation gives."""
    from simulator.garments.training.train import sample_poses, sample_shapes

    rng = np.random.default_rng(3)
    rig = wardrobe.rig
    for name in ("t-shirt", "pants", "skirt"):
        geom, col = wardrobe.geometry(name), wardrobe.collider_for(name)
        P, S, G = sample_poses(rng, GARMENTS[name].slot, 3), sample_shapes(rng, 3), rng.uniform(0, 1, (3, 4))
        raw = wardrobe.dress(name, G, P, S, push_out=False)
        fast = wardrobe.dress(name, G, P, S)
        body = rig.pose(rig.pose_deltas(P), S)
        rests = geom.rest_shapes([geom.anchors(g) for g in G], body.rest_vertices, body.rest_heads)
        for b in range(3):
            a = geom.anchors(G[b])
            normals = rig.incidence.normals(body.rest_vertices[b])  # whole-body normals
            ref_rest = geom.rest_shape(a, body.rest_vertices[b], body.rest_heads[b], normals)
            assert np.abs(rests[b] - ref_rest).max() < 1e-9, name
            x = raw.vertices[b].astype(np.float64) + body.offset[b]
            pushed, inside = col.push_out(x, body.vertices[b])
            assert np.abs(fast.vertices[b] - (pushed - body.offset[b])).max() < 1e-4, name
            assert abs(fast.inside_fraction[b] - inside) <= 2.0 / len(x), name
            assert abs(raw.inside_fraction[b] - inside) <= 2.0 / len(x), name


def test_prepared_anchor_queries_match_the_kd_tree(wardrobe):
    """New styles find their anchors by brute force over precomputed candidates; they must
    be the k-d tree's K nearest (same ids and weights; rows ordered by body vertex), extreme
    styles included, and the nearest of them the weights' argmax. Rows with equidistant body
    vertices among the K + 1 nearest (mirror pairs around the midline) may keep the other one
    of a pair at the K-th place: the same weights."""
    from simulator.garments.template import K_ANCHOR

    rng = np.random.default_rng(5)
    styles = np.concatenate([rng.uniform(0, 1, (12, 4)), [[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]]])
    for name in ("t-shirt", "shorts"):
        geom = wardrobe.geometry(name)
        T = geom.template
        geom.anchors(styles[0])  # prepares the candidates
        n_tied = n_rows = 0
        for style in styles:
            s, moved = geom._stretch(style)
            sel = np.flatnonzero(moved)
            ids, w, nearest = geom._query_moved(sel, s[sel], nearest=True)
            assert np.array_equal(nearest, ids[np.arange(len(ids)), w.argmax(1)]), (name, style)
            ref_ids, ref_w = geom._query_tree(sel, s[sel])
            o = np.argsort(ref_ids, axis=1, kind="stable")  # the prepared query orders rows by body vertex
            ref_ids, ref_w = np.take_along_axis(ref_ids, o, 1), np.take_along_axis(ref_w, o, 1)
            tied = np.zeros(len(sel), dtype=bool)
            for ci in np.unique(T.chain[sel]):
                m = T.chain[sel] == ci
                idx = geom._index[int(ci)]
                d, _ = idx.tree.query(np.stack([s[sel][m] * idx.s_scale, T.theta[sel][m] * idx.radius], 1), k=K_ANCHOR + 1)
                tied[m] = (np.diff(d, axis=1) < 1e-9).any(1)
            assert np.array_equal(ids[~tied], ref_ids[~tied]), (name, style)
            assert np.abs(w[~tied] - ref_w[~tied]).max() < 1e-12, (name, style)
            assert np.abs(np.sort(w[tied], 1) - np.sort(ref_w[tied], 1)).max(initial=0) < 1e-12, (name, style)
            n_tied, n_rows = n_tied + int(tied.sum()), n_rows + len(sel)
        assert 0 < n_tied < 0.05 * n_rows, name  # mirror pairs only


def test_skirt_waistband_anchors_match_the_kd_tree(wardrobe):
    """The skirt's waistband anchors come from the prepared interval table over the range
    of rises: the k-d tree's K nearest at every rise, rows ordered by body vertex."""
    from simulator.garments.template import RISE_Z, SKIRT_COLUMNS

    geom = wardrobe.geometry("skirt")
    C = SKIRT_COLUMNS
    theta = geom.template.theta[:C]
    for rise in np.concatenate([[RISE_Z[0], RISE_Z[1]], np.random.default_rng(2).uniform(*RISE_Z, 20)]):
        a = geom._anchors(np.array([0.5, 0.5, 0.5, (rise - RISE_Z[0]) / (RISE_Z[1] - RISE_Z[0])]))
        ref_ids, ref_w = geom._index[0].query(np.full(C, a.skirt["rise"]), theta)
        o = np.argsort(ref_ids, axis=1, kind="stable")
        ref_ids, ref_w = np.take_along_axis(ref_ids, o, 1), np.take_along_axis(ref_w, o, 1)
        ids, w = a.ids[:C], a.weights[:C]
        same = (ids == ref_ids).all(1)
        assert (~same).sum() <= 2, rise  # mirror-pair ties at the K-th place (0-1 rows seen)
        assert np.abs(w[same] - ref_w[same]).max() < 1e-12, rise
        assert np.abs(np.sort(w, 1) - np.sort(ref_w, 1)).max() < 1e-9, rise


def test_skin_transforms_match_the_skinning_weights(wardrobe):
    """The run-time skinning blends the body's per-vertex transforms with the anchor weights
    instead of forming the (N, nb) skinning matrix: the same transforms."""
    from simulator.garments.rig import _blend

    rng = np.random.default_rng(9)
    rig = wardrobe.rig
    for name in ("shirt", "skirt"):
        geom, col = wardrobe.geometry(name), wardrobe.collider_for(name)
        body = wardrobe.body(_pose(l_shoulder_flexion=70, r_hip_flexion=30)[None], MEAN_SHAPE[None])
        _, _, t_near = col.pose_surface(body.rest_vertices, body.transforms, return_transforms=True)
        a = geom.anchors(rng.uniform(0, 1, 4))
        ref = _blend(a.skin, body.transforms[0])
        fast = geom.skin_transforms(a, t_near[0], col.near_index, body.transforms[0])
        assert np.abs(fast - ref).max() < 1e-12, name
        # Anchors outside the given vertices fall back to blending the bones.
        b = geom.anchors(rng.uniform(0, 1, 4))
        none = -np.ones(rig.n_vertices, dtype=np.int64)
        slow = geom.skin_transforms(b, t_near[0], none, body.transforms[0])
        assert np.abs(slow - _blend(b.skin, body.transforms[0])).max() < 1e-12, name


def test_face_parts_match_a_per_region_reference():
    """`simulator.parts.face_parts` (a table lookup; the default axes need only the normal's
    y and the centroid's x) against the plain per-region definition."""
    from simulator.parts import COARSE_REGIONS, REGION_NAMES, face_parts

    def reference(reg, faces, v, forward, left):
        fr = reg[faces]
        region = np.where((fr[:, 0] == fr[:, 1]) | (fr[:, 0] == fr[:, 2]), fr[:, 0],
                          np.where(fr[:, 1] == fr[:, 2], fr[:, 1], fr[:, 0]))
        tri = v[faces]
        front = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) @ forward > 0
        is_left = tri.mean(1) @ left > 0
        out = np.zeros(len(faces), dtype=np.uint8)
        for r, name in enumerate(REGION_NAMES):
            sel = region == r
            out[sel] = np.where((is_left if name == "head" else front)[sel], COARSE_REGIONS[name][1], COARSE_REGIONS[name][0])
        return out

    rng = np.random.default_rng(2)
    for axes in ((np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0])), (rng.normal(size=3), rng.normal(size=3))):
        v, faces = rng.normal(size=(300, 3)), rng.integers(0, 300, (1500, 3))
        reg = rng.integers(-1, len(REGION_NAMES) + 1, 300)  # out-of-range regions give 0
        assert np.array_equal(face_parts(reg, faces, v, *axes), reference(reg, faces, v, *axes))


def test_skirt_parts_follow_its_grid(wardrobe):
    """The skirt's face parts are the same for every style: waist band on the torso, the
    rest on the thigh of its side, front faces facing -y; they agree with the parts of the
    skirt's real rest shape on the mean body except at the sides."""
    from simulator.parts import COARSE_REGIONS, face_parts

    geom = wardrobe.geometry("skirt")
    rng = np.random.default_rng(2)
    styles = rng.uniform(0, 1, (4, 4))
    parts = [geom.style_parts(st) for st in styles]
    assert all(np.array_equal(parts[0], p) for p in parts[1:])
    T, F = geom.template, geom.faces
    torso, thigh_l = COARSE_REGIONS["torso"], COARSE_REGIONS["upper_leg_left"]
    centre = np.stack([np.sin(T.theta), -np.cos(T.theta)], 1)[F].mean(1)  # outward direction per face
    front, left = centre[:, 1] < -0.3, centre[:, 0] > 0.3
    low = T.s[F].min(1) > 0.3
    back = centre[:, 1] > 0.3
    # COARSE_REGIONS: (back, front); the upper legs' fronts are 9 and 10, backs 7 and 8.
    assert set(parts[0][front]) <= {torso[1], 9, 10} and torso[1] in parts[0][front]
    assert set(parts[0][back]) <= {torso[0], 7, 8} and torso[0] in parts[0][back]
    assert set(parts[0][left & low & front]) == {thigh_l[1]} and set(parts[0][left & low & back]) == {thigh_l[0]}
    for st in styles:
        a = geom.anchors(st)
        real = face_parts(a.region, F, geom.rest_shape(a, wardrobe.rig.mean_rest_vertices, wardrobe.rig.mean_rest_heads))
        assert (real != parts[0]).mean() < 0.01


def test_deterministic(wardrobe):
    a = _dress(wardrobe, "skirt", [0, 0.7, 0.6, 0.4], _pose(r_hip_flexion=40))
    b = _dress(wardrobe, "skirt", [0, 0.7, 0.6, 0.4], _pose(r_hip_flexion=40))
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.face_parts, b.face_parts)


def test_the_renderers_body_evaluation_serves_as_the_garment_rig(wardrobe):
    # The renderer dresses the body it has already evaluated (BodyOutput.rig) instead of
    # evaluating the rig again: at batch 1 the same numbers exactly; in a batch, the body
    # model's own float32 batch effects only (as for the body mesh).
    from simulator.body import get_body_model
    from simulator.params import ALL_SHAPE_NAMES

    body = get_body_model("anny")
    assert wardrobe.rig.body is body
    rng = np.random.default_rng(3)
    poses = np.stack([_pose(l_hip_flexion=30, r_shoulder_abduction=70), _pose(spine_flexion=25), _pose()])
    shapes = rng.uniform(0.2, 0.8, (3, len(ALL_SHAPE_NAMES)))
    for batch in (1, 3):
        for a in range(0, 3, batch):
            out = body.forward(poses[a:a + batch], shapes[a:a + batch])
            for i in range(len(out.vertices)):
                got = wardrobe.rig.from_body_output(out.rig, i)
                ref = wardrobe.body(poses[a + i][None], shapes[a + i][None])
                for x, y in ((got.transforms, ref.transforms), (got.rest_vertices, ref.rest_vertices),
                             (got.offset, ref.offset), (got.rest_heads, ref.rest_heads)):
                    # Float32 round-off only: anny's results carry the last bits of what the
                    # process evaluated before (its caches), also at batch 1 (seen on this
                    # machine's CPU at 1e-27 absolute on near-zero entries).
                    assert np.abs(x - y).max() < (1e-6 if batch == 1 else 1e-5)
    style = np.array([0.5, 0.5, 0.5, 0.5])
    out = body.forward(poses[:1], shapes[:1])
    shared = wardrobe.dress("shirt", style, poses[:1], shapes[:1], body=wardrobe.rig.from_body_output(out.rig, 0))
    own = wardrobe.dress("shirt", style, poses[:1], shapes[:1])
    assert np.abs(shared.vertices - own.vertices).max() < 1e-6


def test_prediction_is_close_to_the_simulation(wardrobe):
    """One fresh draping run (not in the training data) against the predictor."""
    from simulator.garments.training.drape import Draper

    pose = _pose(l_shoulder_flexion=50, r_shoulder_abduction=60, r_elbow_flexion=40, spine_flexion=15)
    shape = np.array([0.3, 0.6, 0.5, 0.6, 0.4, 0.5])
    style = np.array([0.6, 0.4, 0.5, 0.3])
    sim = Draper(wardrobe.geometry("t-shirt")).run(style, pose, shape)
    pred = wardrobe.dress("t-shirt", style, pose[None], shape[None]).vertices[0]
    bare = wardrobe.dress("t-shirt", style, pose[None], shape[None], use_model=False).vertices[0]
    err = np.linalg.norm(pred - sim.posed, axis=1).mean()
    err_bare = np.linalg.norm(bare - sim.posed, axis=1).mean()
    assert err < 0.03 and err < err_bare, (err, err_bare)


def test_drape_simulation_hangs_cloth_on_the_body(wardrobe):
    from simulator.garments.training.drape import DrapeConfig, Draper

    r = Draper(wardrobe.geometry("shorts"), DrapeConfig(pose_frames=4, settle_frames=6)).run(
        [0, 0.5, 0.8, 0.5], _pose(l_knee_flexion=60), MEAN_SHAPE)
    assert np.all(np.isfinite(r.posed))
    assert r.displacement[:, 2].mean() < 0  # gravity pulls the cloth down
    body = wardrobe.rig.pose(wardrobe.rig.pose_deltas(_pose(l_knee_flexion=60)[None]), MEAN_SHAPE[None])
    assert wardrobe.collider.inside_fraction(r.posed + body.offset[0], body.vertices[0]) < 0.02


def test_user_errors_are_one_line(wardrobe, tmp_path):
    with pytest.raises(GarmentError, match="unknown garment type") as e:
        wardrobe.geometry("cape")
    assert "\n" not in str(e.value) and isinstance(e.value, PoseExaminerError)
    with pytest.raises(GarmentError, match=r"\[0, 1\]"):
        check_style([0.5, 1.5, 0, 0])
    with pytest.raises(ParamError, match="clothing.upper"):
        ClothingParams(upper="cape")
    from simulator.garments.dress import Wardrobe
    from simulator.garments.model import PredictorWeights

    w = PredictorWeights.load(wardrobe.weights_dir / "shorts.npz")
    w.save(tmp_path / "pants.npz")  # shorts weights under the pants name: wrong vertex count
    with pytest.raises(GarmentError, match="retrain"):
        Wardrobe(rig=wardrobe.rig, weights_dir=tmp_path).predictor("pants")
    from simulator.errors import AssetError

    with pytest.raises(AssetError, match="train_garments"):
        Wardrobe(rig=wardrobe.rig, weights_dir=tmp_path / "none").predictor("skirt")


def test_per_garment_training_settings():
    from simulator.garments.training.train import TrainConfig, _data_key

    cfg = TrainConfig()
    skirt = cfg.for_garment("skirt")
    assert skirt.n_random > cfg.n_random and skirt.per_garment == ()
    assert cfg.for_garment("pants") is cfg
    # The simulation cache key depends on what changes the simulations only.
    assert _data_key(cfg.for_garment("pants")) == _data_key(TrainConfig(per_garment=(), lf_weight_decay=0.5))
    assert _data_key(skirt) != _data_key(cfg)
