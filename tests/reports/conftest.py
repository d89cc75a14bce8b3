"""Runs for the report tests: a real search on the analytic planted target, and
hand-written runs (hostile names, predictions and per-joint errors, 5k evaluations)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from examiner.search.config import SearchConfig
from examiner.search.factory import build_evaluator
from examiner.search.boxes import wilson_interval
from examiner.search.runner import run_search
from examiner.store import RunStore
from simulator.body import COCO17
from simulator.params import ParamSpace

HOSTILE_MODEL = "<script>alert(1)</script>"
HOSTILE_MESSAGE = "<img src=x onerror=alert(2)>"
HOSTILE_DESCRIPTION = "<b>bold</b> & <i>co</i>"


class CoinFlip:
    """Fails with probability `p` everywhere (a hash of the row decides), so every box's
    true failure rate is `p`; `p` may also be a function of the row."""

    def __init__(self, p):
        self.p = p

    def evaluate(self, U):
        from examiner.search import Outcome

        out = []
        for u in np.atleast_2d(U):
            key = hashlib.blake2b(np.round(u, 12).tobytes(), digest_size=8).digest()
            r = np.random.default_rng(int.from_bytes(key, "little")).random()
            v = 150.0 if r < (self.p(u) if callable(self.p) else self.p) else 40.0
            out.append(Outcome(v, {"pa_mpjpe": v}))
        return out


@pytest.fixture(scope="session")
def planted_run(tmp_path_factory) -> Path:
    """A random-strategy search of the planted analytic target over pose and camera."""
    out = tmp_path_factory.mktemp("runs") / "planted"
    cfg = SearchConfig(strategy="random", budget=500, agents=4, seed=0, space="joints,camera").validate()
    space = ParamSpace.from_groups(cfg.space)
    ev = build_evaluator("analytic:planted", space, cfg.failure_threshold, cfg.seed)
    run_search(cfg, ev, space, out, model_spec="analytic:planted")
    return out


def write_synthetic_run(
    root: Path,
    n: int = 300,
    n_modes: int = 1,
    model: str = HOSTILE_MODEL,
    groups: str = "pose.l_knee_flexion,pose.root_pitch,camera.azimuth,camera.elevation",
    with_predictions: bool = True,
    seed: int = 0,
) -> Path:
    """A run written straight into the store: failure wherever u[0] > 0.5 (the first
    dimension), model errors where u[1] < -0.95 with a hostile message, per-joint errors
    and predicted 2D skeletons in every record, `n_modes` modes as boxes on dimension 0
    (split along dimension 1), and a hostile description on dimension 0."""
    rng = np.random.default_rng(seed)
    space = ParamSpace.from_groups(groups)
    sd = space.to_dict()
    sd["dimensions"][0]["description"] = HOSTILE_DESCRIPTION
    meta = {
        "created": "2026-01-01T00:00:00+00:00", "strategy": "random",
        "config": {**SearchConfig(strategy="random", budget=n, agents=2, seed=seed).to_dict(), "space": groups},
        "metric": "pa_mpjpe", "threshold": 90.0, "space": sd, "dimension_names": space.names,
        "model_spec": model, "seeds": {"root": seed}, "versions": {"python": "3.11", "poseexaminer": "test"},
    }
    store = RunStore.create(root, meta)
    U = rng.uniform(-1, 1, size=(n, space.dim))
    records = []
    for i, u in enumerate(U):
        crash = bool(u[1] < -0.95)
        err = float("nan") if crash else 40.0 + (70.0 if u[0] > 0.5 else 0.0) + 5 * rng.normal()
        failed = (not crash) and err > 90.0
        rec = {
            "i": i, "round": i // 8, "agent": i % 2, "phase": "search", "job": None, "strategy": "random", "seed": seed,
            "u": u.tolist(), "params": space.to_params(u).to_dict(), "error": None if crash else err,
            "value": None if crash else err, "failed": failed,
            "metrics": {"pa_mpjpe": None if crash else err, "mpjpe": None if crash else 1.2 * err},
            "model_error": crash, "model_error_message": HOSTILE_MESSAGE if crash else None,
            "plausible": True, "timings": {"model": 0.001},
        }
        if with_predictions and not crash:
            base = np.linspace(60, 200, len(COCO17))
            rec["prediction"] = {"coco17_xy": [[float(128 + 20 * math.sin(k)), float(y)] for k, y in enumerate(base)]}
            je = np.abs(rng.normal(err, 10.0, size=len(COCO17)))
            rec["joint_errors"] = {"joints": list(COCO17), "mm": je.tolist()}
        records.append(rec)
    store.append(records)
    modes = []
    splits = np.linspace(-1, 1, n_modes + 1)
    for k in range(n_modes):
        lo = -np.ones(space.dim)
        hi = np.ones(space.dim)
        lo[0], hi[0] = 0.5, 1.0
        lo[1], hi[1] = splits[k], splits[k + 1]
        inside = [r for r in records if r["failed"] and np.all((np.array(r["u"]) >= lo) & (np.array(r["u"]) <= hi))]
        vals = [r["value"] for r in inside]
        kk, nn = len(inside), max(len(inside), 1)
        modes.append({
            "id": k, "lo": lo.tolist(), "hi": hi.tolist(), "volume_fraction": float(np.prod((hi - lo) / 2)),
            "verified": {"n": nn, "k": kk, "rate": kk / nn, "interval": list(wilson_interval(kk, nn))},
            "members": [k], "agents": [0],
            "errors": {"n": len(vals), "mean": float(np.mean(vals)) if vals else None,
                       "quantiles": {q: float(np.quantile(vals, float(q))) for q in ("0.1", "0.5", "0.9")} if vals else {},
                       "values": vals},
            "examples": [{"u": r["u"], "value": r["value"], "failed": True} for r in inside[:4]],
            "constrained": {space.names[0]: [0.5, 1.0], space.names[1]: [float(splits[k]), float(splits[k + 1])]},
        })
    store.write_modes(modes)
    store.write_summary({"status": "complete", "evaluations": n, "budget": n, "failures": sum(r["failed"] for r in records),
                         "modes": n_modes, "jobs": [], "elapsed_s": 12.5})
    store.close()
    return root


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> Path:
    return write_synthetic_run(tmp_path_factory.mktemp("runs") / "synthetic")
