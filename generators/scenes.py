"""Where a generator's scenes come from: a parameter space, or a search run's failure
modes plus a share of the run's base distribution.

A sample's scene depends only on (source, its own rng), so it can be regenerated alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generators.errors import GeneratorError
from simulator.params import ParamSpace, SceneParams


MODE_REGIONS = ("box", "need", "failures")
FAILURE_SIGMA = 0.1  # jitter around a logged failing scene, in normalised units ([-1, 1] per dimension)
NEAR_FAILURE = -2  # the "mode" of a scene drawn near a logged failure that lies in no mode's box


@dataclass(frozen=True)
class SceneSource:
    """space: parameter groups / dimension names sampled uniformly (ignored with from_run);
    bounds: ((dimension, low, high), ...) overriding default bounds; from_run: a search run
    directory whose failure-mode boxes are sampled; mode_share: fraction of samples drawn
    inside the modes (the rest uniformly from the run's whole space); size: image side;
    mode_region: "box" (a mode's samples uniform in its box), "need" (in its need region:
    the box with the constraints that do not matter alone released,
    examiner.search.importance.need_box) or "failures" (near the failing scenes the run
    evaluated, all of them, inside a mode or not: one drawn at random, each normalised
    coordinate moved by a normal step of FAILURE_SIGMA and clipped to the space)."""

    space: str = "pose,shape,camera,light,background"
    bounds: tuple = ()
    from_run: str | None = None
    mode_share: float = 1.0
    size: int = 256
    mode_region: str = "box"


class SceneSampler:
    """`sample(rng, index) -> (SceneParams, info)`; info: {"source": "base" | "mode" | "failure",
    "mode": id (for "failure": the mode whose box holds the anchor, else NEAR_FAILURE),
    "u": normalised vector in the space; "failure": the anchor's index in the run's log}."""

    def __init__(self, source: SceneSource) -> None:
        self.source = source
        size = {"camera.width": source.size, "camera.height": source.size}
        self.modes: list[dict] = []
        self.anchors = np.zeros((0, 0))
        if source.from_run:
            space, self.modes = _load_run(source.from_run)
            self.space = ParamSpace(space.dimensions, base=space.base.with_values(size))
        else:
            overrides = {name: (lo, hi) for name, lo, hi in source.bounds}
            try:
                self.space = ParamSpace.from_groups(source.space, base=SceneParams().with_values(size),
                                                    overrides=overrides or None)
            except GeneratorError:
                raise
            except Exception as e:  # ParamError: already one line
                raise GeneratorError(f"--space {source.space!r}: {e}") from None
        if not 0.0 <= source.mode_share <= 1.0:
            raise GeneratorError(f"the share of failure-mode samples must be in [0, 1], got {source.mode_share}")
        if source.mode_region not in MODE_REGIONS:
            raise GeneratorError(f"--mode-region must be one of {', '.join(MODE_REGIONS)}, got {source.mode_region!r}")
        if source.mode_region == "need":
            from examiner.search.importance import need_box

            self.modes = [dict(m, lo=lo.tolist(), hi=hi.tolist())
                          for m in self.modes for lo, hi in [need_box(m, self.space.names)]]
        if source.mode_region == "failures" and source.from_run:
            self.anchor_index, self.anchors = _failing_scenes(source.from_run, self.space.dim)
            inside = [(np.all((self.anchors >= np.asarray(m["lo"])) & (self.anchors <= np.asarray(m["hi"])), axis=1), int(m["id"]))
                      for m in self.modes]
            self.anchor_mode = np.full(len(self.anchors), NEAR_FAILURE, dtype=np.int64)
            for hit, mid in reversed(inside):
                self.anchor_mode[hit] = mid

    def from_modes(self, index: int) -> bool:
        """Whether sample `index` is drawn inside a failure mode: exactly a `mode_share`
        of every run of consecutive indices (a low-discrepancy split, not a coin)."""
        if not self.modes:
            return False
        b = 1.0 - self.source.mode_share
        return int(np.floor((index + 1) * b + 1e-9)) == int(np.floor(index * b + 1e-9))

    def sample(self, rng: np.random.Generator, index: int = 0) -> tuple[SceneParams, dict[str, Any]]:
        D = self.space.dim
        if not self.from_modes(index):
            u = rng.uniform(-1.0, 1.0, D)
            info = {"source": "base", "mode": None}
        elif self.source.mode_region == "failures":
            k = int(rng.integers(len(self.anchors)))
            u = np.clip(self.anchors[k] + FAILURE_SIGMA * rng.standard_normal(D), -1.0, 1.0)
            info = {"source": "failure", "mode": int(self.anchor_mode[k]), "failure": int(self.anchor_index[k])}
        else:
            m = self.modes[int(rng.integers(len(self.modes)))]
            lo, hi = np.asarray(m["lo"], dtype=np.float64), np.asarray(m["hi"], dtype=np.float64)
            u = lo + rng.random(D) * (hi - lo)
            info = {"source": "mode", "mode": int(m["id"])}
        info["u"] = [float(x) for x in u]
        return self.space.to_params(u), info


def _load_run(run_dir: str):
    """(ParamSpace of the run, its failure modes) from a run store directory."""
    from examiner.store import RunStore, StoreError

    if not Path(run_dir).is_dir():
        raise GeneratorError(f"--from-run {run_dir} does not exist; pass a search run directory (examiner run --out DIR)")
    try:
        store = RunStore.open(run_dir)
    except StoreError as e:
        raise GeneratorError(f"--from-run: {e}") from None
    space = ParamSpace.from_dict(store.metadata["space"])
    modes = [m for m in store.modes() if "lo" in m and "hi" in m]
    if not modes:
        raise GeneratorError(
            f"run {run_dir} has no failure modes to sample; let the search run longer or lower its threshold"
        )
    for m in modes:
        if len(m["lo"]) != space.dim or len(m["hi"]) != space.dim:
            raise GeneratorError(f"failure mode {m.get('id')} of {run_dir} does not match the run's space")
    return space, modes


def _failing_scenes(run_dir: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices in the run's log, (N, dim) normalised vectors) of every plausible scene the
    run evaluated that failed: the search's proposals, probes, bisection steps and
    verification samples alike."""
    from examiner.store import RunStore, StoreError

    try:
        table = RunStore.open(run_dir).evaluations()
    except StoreError as e:
        raise GeneratorError(f"--from-run: {e}") from None
    keep = np.flatnonzero(table.failed & table.plausible)
    if not keep.size:
        raise GeneratorError(f"run {run_dir} logged no failing scene to draw near; use --mode-region box")
    return keep, table.u[keep].reshape(-1, dim)


def run_summary(run_dir: str) -> dict:
    """The run's identity for a manifest: path, its meta's seeds and strategy, mode ids."""
    from examiner.store import RunStore

    store = RunStore.open(run_dir)
    meta = store.metadata
    return {
        "path": str(Path(run_dir).resolve()),
        "created": meta.get("created"),
        "strategy": meta.get("strategy"),
        "metric": meta.get("metric"),
        "threshold": meta.get("threshold"),
        "modes": [{"id": m.get("id"), "lo": m.get("lo"), "hi": m.get("hi"), "verified": m.get("verified")}
                  for m in store.modes()],
    }
