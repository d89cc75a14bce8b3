"""TailorNet-style garment predictor (Patel et al., CVPR 2020), one per garment type.

The unposed displacement of every garment vertex from its canonical rest shape is

    D(pose, shape, style) = LF(pose, shape, style) + sum_j w_j(shape, style) HF_j(pose)

* LF: an MLP on the garment's relevant pose angles, the 6 phenotypes and the 4 style
  values, predicting the low-frequency (Laplacian-smoothed) displacement;
* HF_j: one small MLP per *pivot* (a fixed shape + style), trained only on that pivot's
  simulations, predicting the high-frequency residual (displacement minus its smoothed
  version) from the pose alone;
* w_j: a narrow RBF kernel, softmax(-d_j / sigma), over d_j = 1000 * mean squared
  distance between the query's canonical garment and pivot j's (TailorNet measures the
  same distance with its SS2G network; our canonical garment is an exact function of
  style and shape, so no network is needed for it).

Both heads predict coefficients of linear (PCA) bases of the displacement field, which
keeps the shipped weights small (TailorNet's full-resolution output layers weigh GBs).
Inference is numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import AssetError
from simulator.garments.spec import GarmentError
from simulator.joints import POSE_DOFS

UPPER_POSE = (
    "spine_flexion", "spine_lateral", "spine_rotation",
    "l_shoulder_flexion", "l_shoulder_abduction", "l_shoulder_rotation", "l_elbow_flexion",
    "r_shoulder_flexion", "r_shoulder_abduction", "r_shoulder_rotation", "r_elbow_flexion",
)
LOWER_POSE = (
    "spine_flexion", "spine_lateral", "spine_rotation",
    "l_hip_flexion", "l_hip_abduction", "l_hip_rotation", "l_knee_flexion",
    "r_hip_flexion", "r_hip_abduction", "r_hip_rotation", "r_knee_flexion",
)


def pose_inputs(slot: str) -> tuple[str, ...]:
    return UPPER_POSE if slot == "upper" else LOWER_POSE


def mlp_forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """layers [(W (out, in), b (out,)), ...]; ReLU between layers."""
    for i, (W, b) in enumerate(layers):
        x = x @ W.T + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x


@dataclass
class PredictorWeights:
    """Everything a trained predictor needs (float32 / float16 arrays; see `save`)."""

    garment: str
    n_vertices: int
    pose_names: tuple[str, ...]
    in_mean: np.ndarray  # (P + 6 + 4,)
    in_scale: np.ndarray
    lf: list[tuple[np.ndarray, np.ndarray]]
    lf_basis: np.ndarray  # (K_lf, N * 3)
    lf_mean: np.ndarray  # (N * 3,)
    hf: list[list[tuple[np.ndarray, np.ndarray]]]  # one MLP per pivot, pose inputs only
    hf_basis: np.ndarray  # (K_hf, N * 3)
    pivot_style: np.ndarray  # (J, 4)
    pivot_shape: np.ndarray  # (J, 6)
    pivot_rest: np.ndarray  # (J, N, 3) canonical garments of the pivots
    sigma: float
    meta: dict

    def save(self, path: str | Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "in_mean": self.in_mean.astype(np.float32),
            "in_scale": self.in_scale.astype(np.float32),
            "lf_basis": self.lf_basis.astype(np.float16),
            "lf_mean": self.lf_mean.astype(np.float32),
            "hf_basis": self.hf_basis.astype(np.float16),
            "pivot_style": self.pivot_style.astype(np.float32),
            "pivot_shape": self.pivot_shape.astype(np.float32),
            "pivot_rest": self.pivot_rest.astype(np.float32),
        }
        for i, (W, b) in enumerate(self.lf):
            arrays[f"lf.{i}.W"], arrays[f"lf.{i}.b"] = W.astype(np.float32), b.astype(np.float32)
        for j, net in enumerate(self.hf):
            for i, (W, b) in enumerate(net):
                arrays[f"hf.{j}.{i}.W"], arrays[f"hf.{j}.{i}.b"] = W.astype(np.float32), b.astype(np.float32)
        import json

        header = {
            "garment": self.garment, "n_vertices": self.n_vertices, "pose_names": list(self.pose_names),
            "n_lf": len(self.lf), "n_pivots": len(self.hf), "n_hf": len(self.hf[0]) if self.hf else 0,
            "sigma": self.sigma, "meta": self.meta,
        }
        np.savez_compressed(path, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "PredictorWeights":
        import json

        path = Path(path)
        if not path.is_file():
            raise AssetError(f"garment weights {path} are missing; run `python scripts/train_garments.py` to make them")
        try:
            with np.load(path, allow_pickle=False) as f:
                header = json.loads(str(f["header"]))
                a = {k: f[k] for k in f.files if k != "header"}
        except (OSError, ValueError, KeyError) as e:
            raise AssetError(f"garment weights {path} are unreadable ({e}); retrain with scripts/train_garments.py") from None
        f32 = lambda k: a[k].astype(np.float32)  # noqa: E731
        lf = [(f32(f"lf.{i}.W"), f32(f"lf.{i}.b")) for i in range(header["n_lf"])]
        hf = [[(f32(f"hf.{j}.{i}.W"), f32(f"hf.{j}.{i}.b")) for i in range(header["n_hf"])] for j in range(header["n_pivots"])]
        return cls(
            garment=header["garment"], n_vertices=header["n_vertices"], pose_names=tuple(header["pose_names"]),
            in_mean=f32("in_mean"), in_scale=f32("in_scale"), lf=lf, lf_basis=f32("lf_basis"), lf_mean=f32("lf_mean"),
            hf=hf, hf_basis=f32("hf_basis"), pivot_style=f32("pivot_style"), pivot_shape=f32("pivot_shape"),
            pivot_rest=f32("pivot_rest"), sigma=float(header["sigma"]), meta=header["meta"],
        )


class GarmentPredictor:
    """Runs trained `PredictorWeights` (numpy, batched)."""

    def __init__(self, weights: PredictorWeights) -> None:
        self.w = weights
        self._pose_idx = np.array([POSE_DOFS.index(n) for n in weights.pose_names])
        # The pivot MLPs share one architecture: stack them, (J, out, in) per layer.
        self._hf = [(np.stack([net[i][0] for net in weights.hf]), np.stack([net[i][1] for net in weights.hf]))
                    for i in range(len(weights.hf[0]))] if weights.hf else []

    def _hf_coeffs(self, xp: np.ndarray) -> np.ndarray:
        """Every pivot MLP on the pose inputs xp (B, P) -> (B, J, K)."""
        h = np.einsum("bi,joi->bjo", xp, self._hf[0][0]) + self._hf[0][1]
        for W, b in self._hf[1:]:
            h = np.einsum("bji,joi->bjo", np.maximum(h, 0.0), W) + b
        return h

    def features(self, pose: np.ndarray, shape: np.ndarray, style: np.ndarray) -> np.ndarray:
        """pose (B, 34), shape (B, 6) phenotypes (further columns, the body's local changes,
        reach the garment through its rest shape only), style (B, 4) -> inputs (B, P + 10)."""
        x = np.concatenate([pose[:, self._pose_idx], shape[:, :6], style], axis=1)
        return ((x - self.w.in_mean) / self.w.in_scale).astype(np.float32)

    def rbf_weights(self, rest: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """rest (B, N, 3) canonical garments -> (B, J) pivot weights (rows sum to 1)."""
        sigma = self.w.sigma if sigma is None else sigma
        # mean_n |r_n - p_jn|^2 as |r - c|^2 + |p_j - c|^2 - 2 (r - c).(p_j - c), c the pivots'
        # mean (float64: one matrix product instead of a (B, J, N, 3) difference).
        if not hasattr(self, "_piv"):
            c = self.w.pivot_rest.astype(np.float64).mean(0)
            piv = (self.w.pivot_rest - c).reshape(len(self.w.pivot_rest), -1).astype(np.float64)
            self._piv = (c.reshape(-1), piv, np.einsum("jk,jk->j", piv, piv))
        c, piv, piv_sq = self._piv
        r = rest.reshape(len(rest), -1) - c
        d = (np.einsum("bk,bk->b", r, r)[:, None] + piv_sq - 2.0 * (r @ piv.T)) * (1000.0 / rest.shape[1])
        logits = -d / sigma
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    def displacement(self, pose, shape, style, rest, separate: bool = False, sigma: float | None = None):
        """(B, N, 3) unposed displacement from the canonical rest garment `rest` (B, N, 3)."""
        B, N = rest.shape[0], self.w.n_vertices
        if rest.shape[1] != N:
            raise GarmentError(f"{self.w.garment} weights expect {N} vertices, the template has {rest.shape[1]}")
        x = self.features(np.asarray(pose), np.asarray(shape), np.asarray(style))
        lf = mlp_forward(self.w.lf, x) @ self.w.lf_basis + self.w.lf_mean
        xp = x[:, : len(self._pose_idx)]
        coeffs = self._hf_coeffs(xp)  # (B, J, K)
        wts = self.rbf_weights(rest, sigma)
        hf = np.einsum("bj,bjk->bk", wts, coeffs) @ self.w.hf_basis
        lf, hf = lf.reshape(B, N, 3), hf.reshape(B, N, 3)
        return (lf, hf) if separate else lf + hf


__all__ = ["GarmentPredictor", "PredictorWeights", "pose_inputs", "mlp_forward"]
