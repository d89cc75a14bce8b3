"""SMPL-family model files: where to find them and how to read them without chumpy.

Users download the licence-gated files themselves and name them with the ``model_path``
body option or the ``POSEEXAMINER_SMPL_DIR`` environment variable (``ENV_VAR``);
`read_model_file` reads the official .pkl (including chumpy pickles, through a stub) and
.npz files into plain numpy arrays.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Mapping

import numpy as np

from simulator.errors import AssetError

ENV_VAR = "POSEEXAMINER_SMPL_DIR"
MODEL_SPECS = {
    # model type: (file prefix, extensions in the order tried, where users get the files, smplx layer)
    "smpl": ("SMPL", ("pkl", "npz"), "https://smpl.is.tue.mpg.de", "SMPLLayer"),
    "smplh": ("SMPLH", ("pkl", "npz"), "https://mano.is.tue.mpg.de (extended SMPL+H model)", "SMPLHLayer"),
    "smplx": ("SMPLX", ("npz", "pkl"), "https://smpl-x.is.tue.mpg.de", "SMPLXLayer"),
}




def _missing(model_type: str, expected: str) -> AssetError:
    prefix, _, url, _ = MODEL_SPECS[model_type]
    return AssetError(
        f"{prefix} model file not found: expected {expected}; set {ENV_VAR} to the folder holding it "
        f"(or pass the model_path body option); the files are licence-gated, download them from {url}"
    )


def resolve_model_file(
    model_type: str, model_path: str | os.PathLike | None = None, gender: str = "neutral"
) -> Path:
    """The model file for `model_type`: `model_path` (a file, or a folder holding
    ``<PREFIX>_<GENDER>.<ext>`` directly or in a ``<model_type>/`` subfolder as
    ``smplx.create`` lays them out), else $POSEEXAMINER_SMPL_DIR."""
    prefix, exts, _, _ = MODEL_SPECS[model_type]
    root = model_path if model_path not in (None, "") else os.environ.get(ENV_VAR)
    stem = f"{prefix}_{gender.upper()}"
    if not root:
        raise _missing(model_type, f"{stem}.{exts[0]} in the folder named by {ENV_VAR} (unset)")
    root = Path(root).expanduser()
    if root.is_file():
        return root
    if not root.is_dir():
        raise _missing(model_type, str(root))
    for folder in (root, root / model_type):
        for ext in exts:
            if (folder / f"{stem}.{ext}").is_file():
                return folder / f"{stem}.{ext}"
    expected = root / f"{stem}.{exts[0]}"
    raise _missing(model_type, f"{expected} (or .{exts[1]}, or under {root / model_type}/)")


class _ChumpyStub:
    """Stands in for a chumpy array while unpickling official .pkl files without chumpy."""

    def __init__(self, *args, **kwargs) -> None:
        self.state = None

    def __setstate__(self, state) -> None:
        self.state = state

    def to_array(self) -> np.ndarray:
        # A leaf ``chumpy.Ch`` pickles its __dict__, the value under "x".
        state = getattr(self, "state", None)
        if isinstance(state, dict) and "x" in state:
            x = state["x"]
            return x.to_array() if isinstance(x, _ChumpyStub) else np.asarray(x)
        raise TypeError("chumpy object without a stored value")


class _NoChumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        if module.startswith("scipy.sparse.") and name.endswith("_matrix"):
            import scipy.sparse  # old pickles name the private modules (scipy.sparse.csc)

            return getattr(scipy.sparse, name)
        return super().find_class(module, name)


def read_model_file(path: Path) -> dict:
    """The arrays of a SMPL-family file: .npz, or a .pkl of numpy arrays (the official
    chumpy-pickled .pkl files load too, without chumpy: their leaf arrays are unwrapped)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=True) as f:
            return {k: f[k] for k in f.files}
    with open(path, "rb") as fh:
        try:
            data = pickle.load(fh, encoding="latin1")
        except ModuleNotFoundError as e:
            if "chumpy" not in str(e):
                raise
            fh.seek(0)
            data = _NoChumpyUnpickler(fh, encoding="latin1").load()
    out = {}
    for k, v in data.items():
        if isinstance(v, _ChumpyStub):
            try:
                v = v.to_array()
            except TypeError:
                raise AssetError(
                    f"{path}: entry {k!r} is a chumpy expression that cannot be read without chumpy; "
                    "convert the file to .npz (docs/body_models.md)"
                ) from None
        out[k] = v
    return out


def model_texcoords(data: Mapping, faces: np.ndarray, n_vertices: int) -> np.ndarray | None:
    """Per-vertex UVs from ``vt`` / ``ft`` when the file has them (seams: last face wins)."""
    if "vt" not in data or "ft" not in data:
        return None
    vt, ft = np.asarray(data["vt"], dtype=np.float32), np.asarray(data["ft"], dtype=np.int64)
    if ft.shape != faces.shape:
        return None
    out = np.zeros((n_vertices, 2), dtype=np.float32)
    out[faces.reshape(-1)] = vt[ft.reshape(-1)]
    return out
