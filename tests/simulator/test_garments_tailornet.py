"""TailorNet loader on small files with the released formats, written by the test."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from simulator.errors import AssetError, PoseExaminerError
from simulator.garments import tailornet as tn

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


class FullyConnected(torch.nn.Module):
    """TailorNet's models/networks.py architecture (layer indices are what matters)."""

    def __init__(self, input_size, output_size, hidden_size=16, num_layers=3):
        super().__init__()
        net = [torch.nn.Linear(input_size, hidden_size), torch.nn.ReLU(inplace=True), torch.nn.Dropout(p=0.2)]
        for _ in range(num_layers - 2):
            net += [torch.nn.Linear(hidden_size, hidden_size), torch.nn.ReLU(inplace=True)]
        net += [torch.nn.Linear(hidden_size, output_size)]
        self.net = torch.nn.Sequential(*net)

    def forward(self, x):
        return self.net(x)


def _save_runner(folder, model, params):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.json").write_text(json.dumps(params))
    torch.save(model.state_dict(), folder / "lin.pth.tar")


def _tiny_smpl(path, rng):
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=1, radius=0.3)
    V = len(m.vertices)
    w = rng.random((V, 24)) ** 4
    J = np.zeros((24, V))
    for j in range(24):
        J[j, rng.choice(V, 3, replace=False)] = 1 / 3
    from scipy.sparse import csc_matrix

    data = {
        "v_template": np.asarray(m.vertices), "f": np.asarray(m.faces, dtype=np.uint32),
        "weights": w / w.sum(1, keepdims=True), "posedirs": rng.normal(0, 1e-3, (V, 3, 207)),
        "shapedirs": rng.normal(0, 1e-2, (V, 3, 10)), "J_regressor": csc_matrix(J),
        "kintree_table": np.array([[4294967295] + SMPL_PARENTS[1:], list(range(24))], dtype=np.int64),
        "bs_type": "lrotmin", "bs_style": "lbs",
    }
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """weights_root, data_dir, smpl file and the torch modules that made them."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tailornet")
    smpl = _tiny_smpl(root / "smpl_female.pkl", rng)
    V = len(smpl["v_template"])
    M, hf = tn.loop_subdivision(smpl["v_template"], smpl["f"].astype(np.int64))
    nh = M.shape[0]
    idx = np.arange(0, nh, 2)
    keep = np.isin(hf, idx).all(1)
    remap = -np.ones(nh, int)
    remap[idx] = np.arange(len(idx))
    data = root / "data"
    (data / "t-shirt_female" / "shape").mkdir(parents=True)
    (data / "t-shirt_female" / "style").mkdir()
    (data / "t-shirt_female" / "style_shape").mkdir()
    with open(data / "garment_class_info.pkl", "wb") as f:
        pickle.dump({"t-shirt": {"vert_indices": idx, "f": remap[hf[keep]]}}, f)
    betas = rng.normal(0, 1, (3, 10))
    gammas = rng.normal(0, 1, (3, 4))
    np.save(data / "t-shirt_female" / "shape" / "betas.npy", betas)
    np.save(data / "t-shirt_female" / "style" / "gammas.npy", gammas)
    pivots = [("000", "001"), ("002", "000")]
    (data / "t-shirt_female" / "pivots.txt").write_text("".join(f"{a}_{b}\n" for a, b in pivots))
    (data / "t-shirt_female" / "test.txt").write_text("001_001\n")
    Ng = len(idx)
    basis = []
    for a, b in pivots:
        arr = rng.normal(0, 0.01, (Ng, 3))
        np.save(data / "t-shirt_female" / "style_shape" / f"beta{a}_gamma{b}.npy", arr)
        basis.append(arr)
    w = root / "weights" / "t-shirt_female_weights"
    common = {"garment_class": "t-shirt", "gender": "female", "model_name": "FullyConnected", "num_layers": 3, "hidden_size": 16}
    lf = FullyConnected(72 + 10 + 4, Ng * 3)
    _save_runner(w / "tn_orig_lf" / "t-shirt_female", lf, {**common, "shape_style": "", "smooth_level": 1})
    ss2g = FullyConnected(14, Ng * 3, hidden_size=8)
    with torch.no_grad():  # canonical garments of centimetre scale, like real SS2G outputs
        ss2g.net[-1].weight.mul_(0.01)
        ss2g.net[-1].bias.mul_(0.01)
    _save_runner(w / "tn_orig_ss2g" / "t-shirt_female", ss2g, {**common, "hidden_size": 8, "shape_style": ""})
    hfs = []
    for a, b in pivots:
        net = FullyConnected(72, Ng * 3)
        _save_runner(w / "tn_orig_hf" / "t-shirt_female" / f"{a}_{b}", net, {**common, "shape_style": f"{a}_{b}"})
        hfs.append(net)
    return {"weights": root / "weights", "data": data, "smpl": root / "smpl_female.pkl", "lf": lf, "hf": hfs,
            "ss2g": ss2g, "basis": np.stack(basis), "idx": idx, "V": V, "betas": betas, "gammas": gammas}


def _reference_forward(r, thetas, betas, gammas):
    """TailorNet's TailorNetModel.forward / interp4 / ops.mask_inputs, in torch."""
    for m in [r["lf"], r["ss2g"], *r["hf"]]:
        m.eval()
    t, b, g = (torch.as_tensor(a, dtype=torch.float32) for a in (thetas, betas, gammas))
    mask = torch.zeros(24, 3)
    mask[tn.VALID_THETA["t-shirt"]] = 1
    tm = t * mask.view(1, 72)
    bm = b * torch.tensor([1.0, 1] + [0.0] * 8)
    gm = g * torch.tensor([1.0, 1, 0, 0])
    with torch.no_grad():
        bs = t.shape[0]
        hf = torch.stack([m(tm).view(bs, -1, 3) for m in r["hf"]]).transpose(0, 1)
        rest = r["ss2g"](torch.cat((b, g), 1)).view(bs, -1, 3)
        dist = ((rest.unsqueeze(1) - torch.as_tensor(r["basis"], dtype=torch.float32).unsqueeze(0)) ** 2).sum(-1).mean(-1) * 1000.0
        wgt = torch.exp(-dist / 0.01)
        wgt = wgt / wgt.sum(1, keepdim=True)
        hf = (hf * wgt.unsqueeze(-1).unsqueeze(-1)).sum(1)
        lf = r["lf"](torch.cat((tm, bm, gm), 1)).view(bs, -1, 3)
    return (lf + hf).numpy()


def test_forward_matches_tailornet(released):
    model = tn.load_tailornet("t-shirt", "female", released["weights"], released["data"])
    assert len(model.hf) == 2 and model.basis.shape == released["basis"].shape
    rng = np.random.default_rng(1)
    thetas = rng.normal(0, 0.3, (4, 72))
    betas, gammas = rng.normal(0, 1, (4, 10)), rng.normal(0, 1, (4, 4))
    ours = model.forward(thetas, betas, gammas)
    ref = _reference_forward(released, thetas, betas, gammas)
    assert ours.shape == (4, len(released["idx"]), 3)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_rbf_is_narrow_and_picks_the_nearest_pivot(released):
    model = tn.load_tailornet("t-shirt", "female", released["weights"], released["data"])
    # An SS2G that returns pivot 1's canonical garment exactly: all weight on pivot 1.
    W, b = model.ss2g.layers[-1]
    model.ss2g.layers[-1] = (np.zeros_like(W), released["basis"][1].reshape(-1))
    w = model.rbf_weights(np.zeros((1, 10)), np.zeros((1, 4)))
    assert w[0, 1] > 0.999
    model.ss2g.layers[-1] = (W, b)


def test_loop_subdivision_matches_opendr_order():
    """Compare with a direct transcription of opendr's loop_subdivider bookkeeping."""
    import trimesh
    from scipy.sparse import csc_matrix

    m = trimesh.creation.icosphere(subdivisions=1)
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    M, nf = tn.loop_subdivision(v, f)
    vpv = csc_matrix((len(v), len(v)))
    for i in range(3):
        vpv = vpv + csc_matrix((np.ones(len(f)), (f[:, i], f[:, (i + 1) % 3])), shape=vpv.shape)
    vpv = vpv + vpv.T
    coo = vpv.tocoo()
    ve = np.stack([coo.row, coo.col], 1)
    ve = ve[ve[:, 0] < ve[:, 1]]
    assert M.shape == (len(v) + len(ve), len(v)) and len(nf) == 4 * len(f)
    mids = M[len(v):].toarray()
    for k, (a, b) in enumerate(ve):
        assert mids[k, a] == pytest.approx(3 / 8) and mids[k, b] == pytest.approx(3 / 8)
    assert np.allclose(np.asarray(M.sum(1)).ravel(), 1.0)  # affine combinations
    # Valence-5 vertices of an icosphere keep weight 1 - 5 * 3/40.
    assert M[0, 0] == pytest.approx(1 - 5 * 3 / 40)


def test_hres_smpl_garment_rest_pose_is_template_plus_displacement(released):
    smpl = tn.HresSMPL(released["smpl"])
    info = tn.load_garment_class_info(released["data"])
    idx = info["t-shirt"]["vert_indices"]
    D = np.random.default_rng(2).normal(0, 0.01, (len(idx), 3))
    garment, body = smpl.garment(np.zeros(72), np.zeros(10), D, idx)
    np.testing.assert_allclose(garment, smpl.v_template[idx] + D, atol=1e-9)
    # A posed garment moves with the body vertex it belongs to.
    theta = np.zeros(72)
    theta[16 * 3 + 2] = 1.0
    g2, b2 = smpl.garment(theta, np.zeros(10), np.zeros_like(D), idx)
    np.testing.assert_allclose(g2, b2[idx], atol=1e-9)
    assert not np.allclose(b2, body)


def test_missing_files_are_one_line_errors(released, tmp_path):
    with pytest.raises(AssetError, match="weights folder") as e:
        tn.load_tailornet("t-shirt", "male", released["weights"], released["data"])
    assert "\n" not in str(e.value)
    with pytest.raises(PoseExaminerError, match="unknown TailorNet garment"):
        tn.load_tailornet("cape", "female", released["weights"], released["data"])
    with pytest.raises(AssetError, match="SMPL model file"):
        tn.HresSMPL(tmp_path / "nope.pkl")
