"""Failure modes: accepted regions merged when they overlap (`ModeSet`), each a
`FailureMode` with its verification, errors and representative examples."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from examiner.search.boxes import box_log_volume, box_overlap
from examiner.search.config import RegionConfig
from examiner.search.growth import GrownRegion


def error_summary(values) -> dict[str, Any]:
    """A mode's metric values (finite ones): n, mean, 10/50/90% quantiles and the values."""
    errs = np.array([e for e in values if e is not None and math.isfinite(e)])
    return {
        "n": int(len(errs)),
        "mean": float(errs.mean()) if len(errs) else None,
        "quantiles": {q: float(np.quantile(errs, float(q))) for q in ("0.1", "0.5", "0.9")} if len(errs) else {},
        "values": errs.tolist(),
    }


@dataclass
class FailureMode:
    """A distinct failure mode: overlapping accepted regions merged.

    box: the largest member box (lo, hi) with its own verification (rate, interval over
    its n plausible samples; n_implausible left out);
    errors: metric values of every plausible verification sample of every member;
    examples: representative samples (highest error first, then the one nearest the
    box centre)."""

    id: int
    lo: np.ndarray
    hi: np.ndarray
    n: int
    k: int
    rate: float
    interval: tuple[float, float]
    n_implausible: int = 0
    members: list[int] = field(default_factory=list)  # job ids
    agents: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)

    @property
    def log_volume(self) -> float:
        return box_log_volume(self.lo, self.hi)

    def to_dict(self, names: list[str] | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "lo": self.lo.tolist(),
            "hi": self.hi.tolist(),
            "volume_fraction": math.exp(self.log_volume),
            "verified": {"n": self.n, "k": self.k, "rate": self.rate, "interval": list(self.interval),
                         "implausible": self.n_implausible},
            "members": self.members,
            "agents": sorted(set(self.agents)),
            "errors": error_summary(self.errors),
            "examples": self.examples,
        }
        if names is not None:
            d["constrained"] = {
                names[i]: [float(self.lo[i]), float(self.hi[i])]
                for i in range(len(names))
                if self.lo[i] > -1.0 + 1e-9 or self.hi[i] < 1.0 - 1e-9
            }
        return d


class ModeSet:
    """Accepted regions merged into distinct failure modes (see FailureMode)."""

    def __init__(self, cfg: RegionConfig, n_examples: int = 4) -> None:
        self.cfg = cfg
        self.modes: list[FailureMode] = []
        self.n_examples = n_examples
        self._next_id = 0

    def add(self, region: GrownRegion) -> FailureMode:
        overlapping = [m for m in self.modes if box_overlap(m.lo, m.hi, region.lo, region.hi) >= self.cfg.merge_overlap]
        ok = region.usable
        new = FailureMode(
            id=self._next_id, lo=region.lo.copy(), hi=region.hi.copy(), n=region.n, k=region.k,
            rate=region.rate, interval=region.interval, n_implausible=region.n_implausible,
            members=[region.job], agents=[region.agent],
            errors=[float(v) for v in region.values[ok]],
            examples=self._examples(region.samples[ok], region.values[ok], region.failed[ok], region.lo, region.hi),
        )
        if not overlapping:
            self._next_id += 1
            self.modes.append(new)
            return new
        target = overlapping[0]
        for other in overlapping[1:] + [new]:
            target.members += other.members
            target.agents += other.agents
            target.errors += other.errors
            if other.log_volume > target.log_volume:
                target.lo, target.hi = other.lo, other.hi
                target.n, target.k, target.rate, target.interval = other.n, other.k, other.rate, other.interval
                target.n_implausible = other.n_implausible
                target.examples = other.examples
        dropped = {id(m) for m in overlapping[1:]}
        self.modes = [m for m in self.modes if id(m) not in dropped]
        return target

    def _examples(self, U, values, failed, lo, hi) -> list[dict]:
        if len(U) == 0:
            return []
        vals = np.where(np.isfinite(values), values, -np.inf)
        order = [int(i) for i in np.argsort(-vals, kind="stable") if failed[i]][: self.n_examples - 1]
        centre = 0.5 * (lo + hi)
        near = int(np.argmin(np.sum((U - centre) ** 2, axis=1)))
        if near not in order:
            order.append(near)
        return [{"u": U[i].tolist(), "value": float(values[i]), "failed": bool(failed[i])} for i in order]

    def __len__(self) -> int:
        return len(self.modes)
