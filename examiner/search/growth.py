"""Region growing: the state machine that grows a failure box around a failing seed.
Everything here works in the normalised space [-1, 1]^D.

Region growing (phase 2 of an agent, PoseExaminer-style) for a failing seed x0:
  1. probe   - does x0 still fail with dimension d moved to its bound (-1 or +1)? With
               `probe_group` 1 (the default) every axis point is one probe (2D in one
               batch); a failing probe extends the box to that bound. With G > 1, groups
               of up to G dimensions move to the same side's bound at once (adaptive group
               testing): a failing group probe extends the box on all its dimensions, a
               passing or implausible one is split in halves probed next round, down to
               single dimensions: about half of 2D probes for boxes on few dimensions. A
               group probe can land in another failure region (e.g. one touching a
               bound) and extend a constrained dimension by mistake; when verification
               then fails, every side a group probe put at its bound is probed again
               alone before any shrinking (docs/search.md).
  2. bisect  - for each side whose single-dimension probe passed, bisection on the axis
               between x0_d (fails) and the probe (passes) until the bracket is below
               `bisection_tol`; all open brackets advance together, one evaluation each per
               round, in the same rounds as the remaining probes.
  3. verify  - N fresh uniform samples in the box. If at least `min_failure_rate` of the
               plausible ones fail the box is accepted (rate + Wilson interval reported).
               Otherwise the box is pulled in and verified again with N fresh samples,
               up to `max_verify_rounds`: by default ("peel") slabs of the job's pooled
               verification samples in the box are peeled off where that raises their
               failure rate most (several sides can move); with shrink="band" the one
               side whose outer band holds the most passing samples moves in. Every
               side is at least `bisection_tol` wide before verification (a failure
               narrower than the search resolves is verified at that resolution, not
               as a zero-width box around the seed).
Implausible scenes (e.g. a body penetrating itself at extreme joint angles) say nothing
about the model: a probe or bisection step that lands on one does not bound the box (it
counts like a failing one), and verification rates are over the plausible samples only
(the implausible ones are counted and reported; with fewer than a quarter of the samples
plausible the round fails).
A job is a state machine that hands out one batch of queries per round, so the search
can evaluate every job's queries together with the agents' proposals in one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from examiner.search.boxes import wilson_interval
from examiner.search.config import RegionConfig

# The "peel" shrink stops once it would keep fewer than this share of the pooled samples
# (or 8): a box is never cut to a corner that a handful of samples happened to fail in.
PEEL_KEEP = 0.5


@dataclass
class Query:
    """A point a job wants evaluated, with what it is for."""

    u: np.ndarray
    phase: str  # "probe" | "bisect" | "verify"
    key: Any = None


@dataclass
class GrownRegion:
    """The result of one region-growing job."""

    job: int
    agent: int
    seed_point: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    accepted: bool
    n: int
    k: int
    rate: float
    interval: tuple[float, float]
    samples: np.ndarray  # (N, D) verification samples of the final round
    values: np.ndarray  # (N,) their metric values (NaN for model errors)
    failed: np.ndarray  # (N,) bool
    cost: int  # evaluations spent by the job
    reason: str = ""
    plausible: np.ndarray | None = None  # (N,) bool; None: all plausible
    n_implausible: int = 0  # verification samples left out of n (implausible scenes)

    @property
    def usable(self) -> np.ndarray:
        """(N,) the verification samples the rate is over (the plausible ones)."""
        return np.ones(len(self.failed), bool) if self.plausible is None else np.asarray(self.plausible, bool)


def verification_decided(failed: np.ndarray, plausible: np.ndarray, n_round: int, cfg: RegionConfig) -> bool:
    """After the first part of a verification round of `n_round` samples: whether its
    outcome is already clear. Accept early only when the Wilson interval's lower end is at
    or above `min_failure_rate` (a stricter test than the rate over all N); reject early
    when no answers to the rest could lift the rate over all N to it (curtailment: the
    same decision the full round would take)."""
    n, k = int(plausible.sum()), int((failed & plausible).sum())
    rest = n_round - len(failed)
    if n >= max(1, n_round // 4) and wilson_interval(k, n, cfg.confidence)[0] >= cfg.min_failure_rate:
        return True
    best = max(k / n if n else 0.0, (k + rest) / (n + rest))
    return best < cfg.min_failure_rate


class RegionGrowth:
    """One region-growing job around a failing seed point (see module docstring)."""

    def __init__(self, job: int, agent: int, seed_point: np.ndarray, cfg: RegionConfig, rng: np.random.Generator) -> None:
        self.job = job
        self.agent = agent
        self.x0 = np.asarray(seed_point, dtype=np.float64).copy()
        self.cfg = cfg
        self.rng = rng
        d = len(self.x0)
        self.lo = self.x0.copy()
        self.hi = self.x0.copy()
        # brackets[(dim, side)] = [inside (fails), outside (passes)] along the axis
        self.brackets: dict[tuple[int, int], list[float]] = {}
        self.stage = "probe"  # probe (+ bisect) -> verify
        # Probe groups still to ask: (side, dims); built on the first call.
        self.groups: list[tuple[int, tuple[int, ...]]] | None = None
        # Edges (dim, side) put at the bound by a multi-dimension group probe, not yet
        # confirmed by a probe of their own (verification failures re-probe them).
        self.group_edges: set[tuple[int, int]] = set()
        self.reprobes = 0
        self.verify_round = 0
        self._verify_U: np.ndarray | None = None  # the current verification round's samples
        self._verify_seen: list = []  # (query, failed, value, plausible) answered so far
        self.cost = 0
        self.result: GrownRegion | None = None
        self._pending: list[Query] = []
        self._dim = d
        # Every verification sample this job has had answered (U, failed, plausible): the
        # "peel" shrink pools those still inside the box across rounds.
        self._pool = self._empty_pool()

    @property
    def done(self) -> bool:
        return self.result is not None

    def estimated_cost(self) -> int:
        """Upper-bound-ish cost of a job in evaluations, used to reserve budget: the
        initial probe groups, splitting down to single dimensions for about 4 constrained
        sides (2 probes per level), ~6 bisection steps for each of them, verification."""
        g = max(1, self.cfg.probe_group)
        levels = math.ceil(math.log2(g)) if g > 1 else 0
        return 2 * math.ceil(self._dim / g) + 4 * 2 * levels + 6 * 4 + self.cfg.verify_samples

    def remaining_cost(self) -> int:
        return max(self.estimated_cost() - self.cost, 0)

    def may_contain(self, u: np.ndarray) -> bool:
        """Whether `u` may lie in the box this job will grow (before probing: anywhere;
        open bisection brackets count up to their passing end)."""
        if self.groups is None:
            return True
        lo, hi = self.lo.copy(), self.hi.copy()
        for (dim, side), (_inside, outside) in self.brackets.items():
            if side < 0:
                lo[dim] = outside
            else:
                hi[dim] = outside
        for side, dims in self.groups:
            (lo if side < 0 else hi)[list(dims)] = float(side)
        return bool(np.all((u >= lo) & (u <= hi)))

    def _make_groups(self) -> None:
        tol, g = self.cfg.bisection_tol, max(1, self.cfg.probe_group)
        self.groups = []
        for side in (-1, 1):
            dims = []
            for dim in range(self._dim):
                if abs(self.x0[dim] - side) <= tol:
                    (self.lo if side < 0 else self.hi)[dim] = float(side)
                else:
                    dims.append(dim)
            self.groups += [(side, tuple(dims[i:i + g])) for i in range(0, len(dims), g)]

    def next_queries(self) -> list[Query]:
        """The batch this job wants evaluated this round (empty when done)."""
        if self.done:
            return []
        if self.stage in ("probe", "bisect"):
            if self.groups is None:
                self._make_groups()
            qs = []
            for side, dims in self.groups:
                u = self.x0.copy()
                u[list(dims)] = float(side)
                qs.append(Query(u, "probe", (side, dims)))
            for (dim, side), (inside, outside) in self.brackets.items():
                u = self.x0.copy()
                u[dim] = 0.5 * (inside + outside)
                qs.append(Query(u, "bisect", (dim, side)))
            self._pending = qs
        else:
            if self._verify_U is None:
                # The round's N samples are drawn at once (the same generator calls with
                # or without early decisions); the first half is asked first.
                n = self.cfg.verify_samples
                self._verify_U = self.rng.uniform(self.lo, self.hi, size=(n, self._dim))
                self._verify_seen = []
            done = len(self._verify_seen)
            n_ask = len(self._verify_U) - done
            if self.cfg.early_verify and done == 0:
                n_ask = len(self._verify_U) // 2
            self._pending = [Query(u, "verify", done + i) for i, u in enumerate(self._verify_U[done:done + n_ask])]
        if not self._pending:
            self._advance_from_probe_or_bisect()
            return self.next_queries()
        return self._pending

    def consume(self, failed: np.ndarray, values: np.ndarray, plausible: np.ndarray | None = None) -> None:
        """Answers (in query order) to the batch from `next_queries`: failed, metric
        values and (optionally) whether each scene was plausible."""
        qs, self._pending = self._pending, []
        self.cost += len(qs)
        failed = np.asarray(failed, bool)
        plausible = np.ones(len(failed), bool) if plausible is None else np.asarray(plausible, bool)
        if self.stage in ("probe", "bisect"):
            self.groups = []
            # An implausible scene says nothing about the model: a bisection step that lands
            # on one closes the bracket from outside like a passing one (the box stops where
            # the seed's scene stops being plausible; counted as failing, the edge walked to
            # the bound past the region); a single dimension's probe that lands on one is
            # bisected like a passing one; an implausible group probe is split.
            for q, f, ok in zip(qs, failed & plausible, plausible):
                if q.phase == "bisect":
                    dim, side = q.key
                    self.brackets[(dim, side)][0 if f else 1] = q.u[dim]
                    continue
                side, dims = q.key
                if f:  # every dimension of the group reaches the bound
                    (self.lo if side < 0 else self.hi)[list(dims)] = float(side)
                    if len(dims) > 1:
                        self.group_edges.update((dim, side) for dim in dims)
                elif len(dims) == 1:
                    self.brackets[(dims[0], side)] = [self.x0[dims[0]], float(side)]
                else:
                    half = (len(dims) + 1) // 2
                    self.groups += [(side, dims[:half]), (side, dims[half:])]
            self._advance_from_probe_or_bisect()
        else:
            self._verify_seen += list(zip(qs, failed, np.asarray(values, float), plausible))
            qs_all, f_all, v_all, p_all = zip(*self._verify_seen)
            f_all, v_all, p_all = np.array(f_all, bool), np.array(v_all, float), np.array(p_all, bool)
            if len(self._verify_seen) < len(self._verify_U) and not self._verify_decided(f_all, p_all):
                return  # ask the second half
            self._verify_U, self._verify_seen = None, []
            self._consume_verify(np.array([q.u for q in qs_all]), f_all, v_all, p_all)

    def _advance_from_probe_or_bisect(self) -> None:
        tol = self.cfg.bisection_tol
        for key in [k for k, (i, o) in self.brackets.items() if abs(o - i) <= tol]:
            dim, side = key
            inside = self.brackets.pop(key)[0]
            (self.lo if side < 0 else self.hi)[dim] = inside
        if self.groups:
            self.stage = "probe"
        else:
            self.stage = "bisect" if self.brackets else "verify"
            if self.stage == "verify":
                self._widen_to_resolution()

    def _widen_to_resolution(self) -> None:
        """Give every dimension at least the bisection tolerance of width (centred on the
        box, inside [-1, 1]). Where both edges bisected back to the seed, the region is
        narrower than the search can resolve; a box of zero width there would be a point,
        not a region, and would "verify" on samples that all share the seed's value.
        Verification then decides whether the failure holds at that resolution."""
        tol = self.cfg.bisection_tol
        narrow = self.hi - self.lo < tol
        if narrow.any():
            lo = np.clip(0.5 * (self.lo + self.hi)[narrow] - tol / 2, -1.0, 1.0 - tol)
            self.lo[narrow], self.hi[narrow] = lo, lo + tol

    def _verify_decided(self, failed: np.ndarray, plausible: np.ndarray) -> bool:
        return verification_decided(failed, plausible, len(self._verify_U), self.cfg)

    def _consume_verify(self, U: np.ndarray, failed: np.ndarray, values: np.ndarray, plausible: np.ndarray) -> None:
        cfg = self.cfg
        n, k = int(plausible.sum()), int((failed & plausible).sum())
        enough = n >= max(1, len(failed) // 4)
        rate = k / n if n else float("nan")
        accepted = enough and rate >= cfg.min_failure_rate
        self.verify_round += 1
        if accepted or self.verify_round >= cfg.max_verify_rounds:
            if accepted:
                reason = ""
            elif not enough:
                reason = f"only {n} of {len(failed)} verification scenes plausible"
            else:
                reason = f"verified rate {rate:.2f} below target"
            self.result = GrownRegion(
                job=self.job, agent=self.agent, seed_point=self.x0, lo=self.lo.copy(), hi=self.hi.copy(),
                accepted=accepted, n=n, k=k, rate=rate,
                interval=wilson_interval(k, n, cfg.confidence), samples=U, values=values, failed=failed,
                cost=self.cost, reason=reason, plausible=plausible, n_implausible=len(failed) - n,
            )
            return
        self._pool = tuple(np.concatenate([a, b]) for a, b in zip(self._pool, (U, failed, plausible)))
        if enough and self._reprobe_group_edges():
            self._pool = self._empty_pool()  # the box may grow again
        elif self.cfg.shrink == "peel":
            self._peel(U, failed, plausible)
        else:
            self._shrink(U, failed, plausible)

    def _reprobe_group_edges(self) -> bool:
        """After a failed verification: if some sides were put at their bound by a group
        probe (which may have landed in another failure region: the group moved other
        dimensions too), probe each of them alone (bisecting those that pass) instead of
        shrinking. Returns whether it did."""
        if not self.group_edges:
            return False
        self.reprobes += 1
        self.groups = []
        for dim, side in sorted(self.group_edges):
            (self.lo if side < 0 else self.hi)[dim] = self.x0[dim]
            self.groups.append((side, (dim,)))
        self.group_edges.clear()
        self.stage = "probe"
        return True

    def _shrink(self, U: np.ndarray, failed: np.ndarray, plausible: np.ndarray) -> None:
        """Pull in the side whose outer quarter holds the largest share of passing
        (plausible, not failing) samples."""
        width = np.maximum(self.hi - self.lo, 1e-12)
        rel = (U - self.lo) / width  # 0 at lo, 1 at hi
        passing = plausible & ~failed
        best, best_score = None, -1.0
        for dim in range(self._dim):
            if width[dim] <= self.cfg.bisection_tol:
                continue
            for side, band in ((-1, rel[:, dim] < 0.25), (1, rel[:, dim] > 0.75)):
                m = int(band.sum())
                if m < 2:
                    continue
                score = float(passing[band].mean()) - float(passing.mean())
                if score > best_score:
                    best, best_score = (dim, side), score
        if best is None:
            return
        dim, side = best
        step = min(0.3 * width[dim], width[dim] - self.cfg.bisection_tol)  # never below the resolution
        if side < 0:
            self.lo[dim] = min(self.lo[dim] + step, max(self.x0[dim], self.lo[dim]))
        else:
            self.hi[dim] = max(self.hi[dim] - step, min(self.x0[dim], self.hi[dim]))

    def _empty_pool(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.zeros((0, self._dim)), np.zeros(0, bool), np.zeros(0, bool)

    def _peel(self, U_round: np.ndarray, failed_round: np.ndarray, plausible_round: np.ndarray,
              slab: float = 0.1) -> None:
        """PRIM-style peeling (Friedman and Fisher 1999) of the pooled verification samples
        inside the box: cut the slab of `slab` of the samples, on the side and dimension
        whose removal raises the failure rate of those left the most, until they fail at
        `min_failure_rate` + half the rest or half of them are gone. An edge never passes
        the seed and no side goes below `bisection_tol`. Falls back to `_shrink` on this
        round's samples (`*_round`, all inside the box) when no cut raises the rate (e.g.
        too few samples)."""
        cfg, tol = self.cfg, self.cfg.bisection_tol
        U, failed, plausible = self._pool
        inside = np.all((U >= self.lo - 1e-12) & (U <= self.hi + 1e-12), axis=1) & plausible
        U, failed = U[inside], failed[inside].astype(float)
        target = cfg.min_failure_rate + 0.5 * (1.0 - cfg.min_failure_rate)
        keep_min = max(8, math.ceil(PEEL_KEEP * len(U)))
        lo, hi = self.lo.copy(), self.hi.copy()
        idx = np.arange(len(U))
        moved = False
        while len(idx) > keep_min and failed[idx].mean() < target:
            rate = failed[idx].mean()
            k = max(1, int(round(slab * len(idx))))
            best, best_gain = None, 0.0
            for dim in range(self._dim):
                if hi[dim] - lo[dim] <= tol:
                    continue
                vals = np.sort(U[idx, dim])
                for side in (-1, 1):
                    if side < 0:
                        edge = 0.5 * (vals[k - 1] + vals[k]) if k < len(vals) else vals[-1]
                        edge = min(edge, self.x0[dim], hi[dim] - tol)
                        if edge <= lo[dim]:
                            continue
                        keep = U[idx, dim] >= edge
                    else:
                        edge = 0.5 * (vals[-k] + vals[-k - 1]) if k < len(vals) else vals[0]
                        edge = max(edge, self.x0[dim], lo[dim] + tol)
                        if edge >= hi[dim]:
                            continue
                        keep = U[idx, dim] <= edge
                    if keep.all() or keep.sum() < keep_min:
                        continue
                    gain = failed[idx[keep]].mean() - rate
                    if gain > best_gain + 1e-12:
                        best, best_gain = (dim, side, edge, keep), gain
            if best is None:
                break
            dim, side, edge, keep = best
            (lo if side < 0 else hi)[dim] = edge
            idx = idx[keep]
            moved = True
        if moved:
            self.lo, self.hi = lo, hi
        else:
            self._shrink(U_round, failed_round, plausible_round)

    def abort(self, reason: str) -> None:
        self._pending = []
        self.result = GrownRegion(
            job=self.job, agent=self.agent, seed_point=self.x0, lo=self.lo.copy(), hi=self.hi.copy(),
            accepted=False, n=0, k=0, rate=float("nan"), interval=(0.0, 1.0),
            samples=np.zeros((0, self._dim)), values=np.zeros(0), failed=np.zeros(0, bool),
            cost=self.cost, reason=reason,
        )
