"""Load TailorNet's own released weights and data (Patel et al., CVPR 2020) for users
who hold them and the SMPL model files (both licence-gated, never downloaded here).

Expected layout, exactly as TailorNet's `global_var.py` / `models/tailornet_model.py`
use it:

    weights_root/<garment>_<gender>_weights/tn_orig_lf/<garment>_<gender>/{params.json, lin.pth.tar}
    weights_root/<garment>_<gender>_weights/tn_orig_hf/<garment>_<gender>/<shape>_<style>/{params.json, lin.pth.tar}
    weights_root/<garment>_<gender>_weights/tn_orig_ss2g/<garment>_<gender>/{params.json, lin.pth.tar}
    data_dir/garment_class_info.pkl        {garment: {"vert_indices": (Ng,), "f": (Fg, 3)}}
    data_dir/<garment>_<gender>/pivots.txt  lines "<shape>_<style>", e.g. "000_001"
    data_dir/<garment>_<gender>/shape/betas.npy   (S, >=10)
    data_dir/<garment>_<gender>/style/gammas.npy  (T, 4)
    data_dir/<garment>_<gender>/style_shape/beta<shape>_gamma<style>.npy  (Ng, 3)
    smpl_path: SMPL .pkl (chumpy pickles read without chumpy) or .npz

`lin.pth.tar` is a torch state dict of TailorNet's `FullyConnected` MLP (`net.0`,
`net.3`, ... Linear layers with ReLU between, dropout after the first). Inputs: LF
(72 pose + 10 betas + 4 gammas, masked like TailorNet's `ops.mask_inputs`), HF (72 pose,
masked to the garment's joints), SS2G (10 betas + 4 gammas). The garment's displacement
is LF + RBF(sigma = 0.01)-weighted HF as in `TailorNetModel.forward`; it is applied to
TailorNet's high-resolution SMPL (one Loop subdivision of the SMPL mesh, vertex order as
opendr's `loop_subdivider`) in the unposed space and skinned with SMPL's LBS, like
`SMPL4Garment.run`.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import AssetError
from simulator.rotations import rotvec_matrices

VALID_THETA = {
    "t-shirt": [0, 1, 2, 3, 6, 9, 12, 13, 14, 16, 17, 18, 19],
    "old-t-shirt": [0, 1, 2, 3, 6, 9, 12, 13, 14, 16, 17, 18, 19],
    "shirt": [0, 1, 2, 3, 6, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21],
    "pant": [0, 1, 2, 4, 5, 7, 8],
    "short-pant": [0, 1, 2, 4, 5],
    "skirt": [0, 1, 2],
}
GENDERS = ("female", "male", "neutral")
TAILORNET_SIGMA = 0.01


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise AssetError(f"TailorNet {what} not found at {path}; check the weights / data folders (docs/clothing.md)")
    return path


# --------------------------------------------------------------------------------------
# FullyConnected MLPs from lin.pth.tar
# --------------------------------------------------------------------------------------


@dataclass
class FullyConnected:
    """TailorNet's MLP as numpy arrays: Linear layers [(W (out, in), b (out,))]."""

    layers: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def load(cls, log_dir: Path) -> "FullyConnected":
        import torch

        _require(log_dir / "params.json", "params.json")
        params = json.loads((log_dir / "params.json").read_text())
        if params.get("model_name", "FullyConnected") != "FullyConnected":
            raise AssetError(f"{log_dir}: model_name {params['model_name']!r} is not FullyConnected")
        ckpt = _require(log_dir / "lin.pth.tar", "checkpoint lin.pth.tar")
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for corrupt files
            raise AssetError(f"{ckpt} is not a readable torch state dict ({e})") from None
        idx = sorted({int(k.split(".")[1]) for k in state if k.startswith("net.") and k.endswith(".weight")})
        if not idx:
            raise AssetError(f"{ckpt} has no net.<i>.weight entries (not a TailorNet FullyConnected)")
        layers = [(state[f"net.{i}.weight"].double().numpy(), state[f"net.{i}.bias"].double().numpy()) for i in idx]
        n_layers = int(params.get("num_layers", len(layers)))
        if n_layers != len(layers):
            raise AssetError(f"{ckpt}: {len(layers)} Linear layers but params.json says num_layers={n_layers}")
        return cls(layers)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for i, (W, b) in enumerate(self.layers):
            x = x @ W.T + b
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        return x


def mask_inputs(thetas, betas, gammas, garment_class: str, valid_theta=None):
    """TailorNet's `ops.mask_inputs`: pose to the garment's joints, betas and gammas to
    their first two components (plus the old-t-shirt's style offset)."""
    vt = (valid_theta or VALID_THETA)[garment_class]
    m = np.zeros((24, 3))
    m[vt] = 1.0
    thetas = thetas * m.reshape(1, 72)
    if betas is not None:
        betas = betas * np.array([1.0, 1.0] + [0.0] * (betas.shape[1] - 2))
    if gammas is not None:
        gammas = gammas * np.array([1.0, 1.0, 0.0, 0.0])
        if garment_class == "old-t-shirt":
            gammas = gammas + np.array([0.0, 0.0, 1.5, 0.0])
    return thetas, betas, gammas


# --------------------------------------------------------------------------------------
# The TailorNet model
# --------------------------------------------------------------------------------------


class TailorNetModel:
    """LF + pivot HF mixture, weighted by the RBF over SS2G-predicted canonical garments."""

    def __init__(self, lf: FullyConnected, hf: list[FullyConnected], ss2g: FullyConnected, basis: np.ndarray,
                 pivots: list[tuple[str, str]], garment_class: str, gender: str, valid_theta=None) -> None:
        self.lf, self.hf, self.ss2g = lf, hf, ss2g
        self.basis = basis  # (J, Ng, 3) pivots' canonical garments
        self.pivots = pivots
        self.garment_class, self.gender = garment_class, gender
        self.valid_theta = valid_theta

    def rbf_weights(self, betas: np.ndarray, gammas: np.ndarray, sigma: float = TAILORNET_SIGMA) -> np.ndarray:
        B = len(betas)
        rest = self.ss2g(np.concatenate([betas, gammas], 1)).reshape(B, -1, 3)
        dist = ((rest[:, None] - self.basis[None]) ** 2).sum(-1).mean(-1) * 1000.0
        logits = -dist / sigma
        logits -= logits.max(1, keepdims=True)
        w = np.exp(logits)
        return w / w.sum(1, keepdims=True)

    def forward(self, thetas, betas, gammas, separate: bool = False):
        """thetas (B, 72) SMPL axis-angle, betas (B, 10), gammas (B, 4) -> (B, Ng, 3)
        unposed garment displacements."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))[:, :10]
        gammas = np.atleast_2d(np.asarray(gammas, dtype=np.float64))
        B = len(thetas)
        th_hf, _, _ = mask_inputs(thetas, None, None, self.garment_class, self.valid_theta)
        hf = np.stack([net(th_hf).reshape(B, -1, 3) for net in self.hf], 1)
        w = self.rbf_weights(betas, gammas)
        hf = np.einsum("bj,bjnd->bnd", w, hf)
        th, be, ga = mask_inputs(thetas, betas, gammas, self.garment_class, self.valid_theta)
        lf = self.lf(np.concatenate([th, be, ga], 1)).reshape(B, -1, 3)
        return (lf, hf) if separate else lf + hf


def load_tailornet(garment_class: str, gender: str, weights_root: str | Path, data_dir: str | Path,
                   valid_theta=None) -> TailorNetModel:
    """TailorNet's `get_best_runner` for the released folder layout (see module docstring)."""
    if garment_class not in (valid_theta or VALID_THETA):
        raise AssetError(f"unknown TailorNet garment class {garment_class!r}; known: {', '.join(valid_theta or VALID_THETA)}")
    if gender not in GENDERS:
        raise AssetError(f"TailorNet gender must be one of {GENDERS}, got {gender!r}")
    tag = f"{garment_class}_{gender}"
    root = _require(Path(weights_root) / f"{tag}_weights", "weights folder")
    data = _require(Path(data_dir) / tag, "data folder")
    pivots = [tuple(line.strip().split("_")) for line in _require(data / "pivots.txt", "pivots.txt").read_text().splitlines() if line.strip()]
    if not pivots or any(len(p) != 2 for p in pivots):
        raise AssetError(f"{data / 'pivots.txt'} must list pivots as <shape>_<style> lines")
    basis = np.stack([
        np.load(_require(data / "style_shape" / f"beta{s}_gamma{g}.npy", "pivot canonical garment")) for s, g in pivots
    ]).astype(np.float64)
    lf = FullyConnected.load(root / "tn_orig_lf" / tag)
    ss2g = FullyConnected.load(root / "tn_orig_ss2g" / tag)
    hf = [FullyConnected.load(root / "tn_orig_hf" / tag / f"{s}_{g}") for s, g in pivots]
    return TailorNetModel(lf, hf, ss2g, basis, pivots, garment_class, gender, valid_theta)


def load_style_shape(data_dir: str | Path, garment_class: str, gender: str) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's betas (S, 10) and gammas (T, 4)."""
    d = Path(data_dir) / f"{garment_class}_{gender}"
    betas = np.load(_require(d / "shape" / "betas.npy", "betas.npy"))[:, :10]
    gammas = np.load(_require(d / "style" / "gammas.npy", "gammas.npy"))
    return betas, gammas


def load_garment_class_info(data_dir: str | Path) -> dict:
    path = _require(Path(data_dir) / "garment_class_info.pkl", "garment_class_info.pkl")
    try:
        with open(path, "rb") as f:
            info = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise AssetError(f"{path} is not a readable pickle ({e})") from None
    return info


# --------------------------------------------------------------------------------------
# High-resolution SMPL (TailorNet's SMPL4Garment)
# --------------------------------------------------------------------------------------


def loop_subdivision(v: np.ndarray, f: np.ndarray):
    """One Loop subdivision step as a sparse (V + E, V) matrix and the new faces, with
    opendr's `loop_subdivider` vertex order (TailorNet's `vert_indices` index into it):
    original vertices first, then one per edge in column-major order of the vertex
    adjacency matrix (sorted by the larger, then the smaller endpoint)."""
    from scipy.sparse import coo_matrix, csr_matrix

    V = len(v)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = np.sort(e, axis=1)
    edges = np.unique(e, axis=0)
    edges = edges[np.lexsort((edges[:, 0], edges[:, 1]))]
    # Opposite vertices per edge.
    opp = np.concatenate([f[:, 2], f[:, 0], f[:, 1]])
    order = np.lexsort((e[:, 1], e[:, 0]))
    adj = csr_matrix((np.ones(2 * len(edges)), (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])), shape=(V, V))
    nn = np.diff(adj.indptr)
    wt = np.where(nn < 3, 0.0, np.where(nn == 3, 3.0 / 16.0, 3.0 / (8.0 * np.maximum(nn, 1))))
    rows, cols, vals = [], [], []
    a = adj.tocoo()
    rows.append(a.row); cols.append(a.col); vals.append(wt[a.row])
    rows.append(np.arange(V)); cols.append(np.arange(V)); vals.append(1.0 - wt * nn)
    E = len(edges)
    eid = {tuple(x): i for i, x in enumerate(edges)}
    rows.append(V + np.arange(E)); cols.append(edges[:, 0]); vals.append(np.full(E, 3.0 / 8.0))
    rows.append(V + np.arange(E)); cols.append(edges[:, 1]); vals.append(np.full(E, 3.0 / 8.0))
    es, os_ = e[order], opp[order]
    keys = [tuple(x) for x in es]
    ids = np.array([eid[k] for k in keys])
    counts = np.bincount(ids, minlength=E)
    rows.append(V + ids); cols.append(os_); vals.append(2.0 / 8.0 / counts[ids])
    M = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(V + E, V)).tocsr()
    mid = lambda i, j: V + eid[(min(i, j), max(i, j))]  # noqa: E731
    nf = []
    for a0, a1, a2 in f:
        ff = (a0, a1, a2, a0, a1)
        for i in range(3):
            nf.append((mid(ff[i], ff[i + 1]), ff[i + 1], mid(ff[i + 1], ff[i + 2])))
        nf.append((mid(a0, a1), mid(a1, a2), mid(a2, a0)))
    return M, np.array(nf, dtype=np.int64)


class HresSMPL:
    """SMPL upsampled once with Loop subdivision (TailorNet's `get_hres_smpl_model_data`)."""

    def __init__(self, smpl_path: str | Path) -> None:
        from simulator.smpl_files import read_model_file

        path = _require(Path(smpl_path), "SMPL model file")
        d = read_model_file(path)
        try:
            v, f = np.asarray(d["v_template"], np.float64), np.asarray(d["f"], np.int64)
            weights = np.asarray(d["weights"], np.float64)
            posedirs = np.asarray(d["posedirs"], np.float64)
            shapedirs = np.asarray(d["shapedirs"], np.float64)[:, :, :10]
            J_reg = d["J_regressor"]
            kintree = np.asarray(d["kintree_table"], np.int64)
        except KeyError as e:
            raise AssetError(f"{path} lacks SMPL entry {e}; is it an SMPL model file?") from None
        J_reg = J_reg.toarray() if hasattr(J_reg, "toarray") else np.asarray(J_reg)
        M, hf = loop_subdivision(v, f)
        self.M = M
        self.v_template = M @ v
        self.faces = hf
        self.weights = M @ weights
        nv = len(self.v_template)
        self.posedirs = (M @ posedirs.reshape(len(v), -1)).reshape(nv, 3, -1)
        self.shapedirs = (M @ shapedirs.reshape(len(v), -1)).reshape(nv, 3, -1)
        self.J_regressor = np.zeros((J_reg.shape[0], nv))
        self.J_regressor[:, : len(v)] = J_reg
        self.parents = kintree[0].copy()
        self.parents[0] = -1

    def transforms(self, theta: np.ndarray, beta: np.ndarray):
        """theta (72,), beta (10,) -> per-vertex skinning transforms (Vh, 4, 4), shaped
        rest vertices (Vh, 3) with pose blend shapes added, joints (24, 3)."""
        b = np.zeros(self.shapedirs.shape[-1])
        b[: len(beta)] = beta[: len(b)]
        v_shaped = self.v_template + self.shapedirs @ b
        J = self.J_regressor @ v_shaped
        R = rotvec_matrices(np.asarray(theta, np.float64).reshape(-1, 3))
        feat = (R[1:] - np.eye(3)).reshape(-1)
        v_posed = v_shaped + self.posedirs @ feat
        G = np.zeros((len(J), 4, 4))
        for i in range(len(J)):
            L = np.eye(4)
            L[:3, :3] = R[i]
            L[:3, 3] = J[i] - (J[self.parents[i]] if i else 0.0)
            G[i] = L if i == 0 else G[self.parents[i]] @ L
        rest = np.zeros_like(G)
        rest[:, :3, 3] = np.einsum("jab,jb->ja", G[:, :3, :3], J)
        A = G - rest
        T = np.einsum("vj,jab->vab", self.weights, A)
        return T, v_posed, J

    def garment(self, theta, beta, displacement: np.ndarray, vert_indices: np.ndarray):
        """Posed garment (Ng, 3) and body (Vh, 3): each garment vertex is its SMPL vertex
        (pose-and-shape blended, unposed) plus the displacement, skinned like that vertex."""
        T, v_posed, _ = self.transforms(np.asarray(theta), np.asarray(beta))
        idx = np.asarray(vert_indices, np.int64)
        g = v_posed[idx] + displacement
        garment = np.einsum("nab,nb->na", T[idx, :3, :3], g) + T[idx, :3, 3]
        body = np.einsum("nab,nb->na", T[:, :3, :3], v_posed) + T[:, :3, 3]
        return garment, body
