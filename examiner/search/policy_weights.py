"""Pretrained MARL policy weights: saved as a plain .npz (one array per tensor of the
stable-baselines3 policy's state dict, plus a JSON metadata string), loaded with
`numpy.load(allow_pickle=False)`, so a weights file a user received can never run code.
(SB3's own .zip format goes through `torch.load`, which unpickles.)

    save_policy(path, policy, meta)       # scripts/train_policy.py
    arrays, meta = load_policy(path, dim=35, agents=8, net_arch=(64, 64))
    apply_policy(policy, arrays)          # MARLStrategy, with ppo.pretrained

The metadata records the observation layout version (`env.OBS_VERSION`), the space's
dimension count, the number of agents and the network; a file that does not match the
run is refused with a one-line SearchConfigError naming the fix.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from examiner.search.errors import SearchConfigError

FORMAT = "poseexaminer-marl-policy"
FORMAT_VERSION = 1
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "assets" / "policy" / "marl-35d.npz"
_META = "__meta__"


def resolve(spec: str) -> Path:
    """The file that `ppo.pretrained` names ("default" = the shipped policy)."""
    return DEFAULT_POLICY if spec == "default" else Path(spec).expanduser()


def save_policy(path: str | Path, policy: Any, meta: Mapping[str, Any]) -> Path:
    """Write `policy.state_dict()` (torch tensors) and `meta` to `path` (.npz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in policy.state_dict().items()}
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays, **{_META: np.array(json.dumps(full, sort_keys=True))})
    tmp.replace(path)
    return path


def load_policy(path: str | Path, *, dim: int, agents: int, net_arch: tuple[int, ...]):
    """(arrays, meta) of the policy file at `path`, checked against the run."""
    from examiner.search.env import OBS_VERSION

    path = Path(path)
    hint = 'retrain it with scripts/train_policy.py or run with ppo.pretrained: "none"'
    if not path.is_file():
        raise SearchConfigError(f'pretrained policy {path} does not exist; fix the ppo.pretrained path or use "none"')
    if not zipfile.is_zipfile(path):  # np.load would take any other file for a pickle or a bare .npy
        raise SearchConfigError(f"pretrained policy {path} cannot be read (it is not a policy .npz); {hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.array(z[k]) for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        reason = "it holds pickled objects" if "pickle" in str(e).lower() else "it is not a policy .npz"
        raise SearchConfigError(f"pretrained policy {path} cannot be read ({reason}); {hint}") from None
    raw = arrays.pop(_META, None)
    try:
        meta = json.loads(str(raw)) if raw is not None and raw.dtype.kind == "U" and raw.ndim == 0 else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SearchConfigError(f"pretrained policy {path} has no {FORMAT} metadata; {hint}")
    if meta.get("format_version") != FORMAT_VERSION or meta.get("obs_version") != OBS_VERSION:
        raise SearchConfigError(
            f"pretrained policy {path} was written for observation version {meta.get('obs_version')} "
            f"(this code uses {OBS_VERSION}); {hint}")
    want = {"dim": int(dim), "agents": int(agents), "net_arch": [int(x) for x in net_arch]}
    got = {k: meta.get(k) for k in want}
    if got != want:
        raise SearchConfigError(
            f"pretrained policy {path} is for {got['dim']} dimensions, {got['agents']} agents and net_arch "
            f"{got['net_arch']}; this run has {want['dim']}, {want['agents']} and {want['net_arch']}; {hint}")
    for k, v in arrays.items():
        if v.dtype.kind != "f" or not np.all(np.isfinite(v)):
            raise SearchConfigError(f"pretrained policy {path}: tensor {k!r} is not finite floating point; {hint}")
    return arrays, meta


def apply_policy(policy: Any, arrays: Mapping[str, np.ndarray], source: str | Path = "pretrained policy") -> None:
    """Copy `arrays` into `policy` (an SB3 policy) after checking names and shapes."""
    import torch

    state = policy.state_dict()
    missing, extra = sorted(set(state) - set(arrays)), sorted(set(arrays) - set(state))
    if missing or extra:
        raise SearchConfigError(
            f"{source} does not match the policy network (missing {missing[:3]}, unexpected {extra[:3]}); "
            "retrain it with scripts/train_policy.py")
    for k, t in state.items():
        if tuple(arrays[k].shape) != tuple(t.shape):
            raise SearchConfigError(
                f"{source}: tensor {k!r} has shape {tuple(arrays[k].shape)}, the network needs {tuple(t.shape)}; "
                "retrain it with scripts/train_policy.py")
    policy.load_state_dict({k: torch.as_tensor(np.asarray(v), dtype=state[k].dtype) for k, v in arrays.items()})
