"""Region growing from the log (`RegionConfig.growth = "log"`; docs/search.md, "Regions").

The old path (growth.py, `growth = "probe"`) spends two fresh probes on every dimension
(or adaptive groups of `probe_group`) and bisects every side that passed from scratch.
`LogGrowth` keeps its verification (N fresh uniform samples, the same acceptance rate and
Wilson interval, the same shrink / re-probe rounds) and changes how the box is found:

1. Which dimensions bound the box (identify). Group testing with inference, one side at a
   time. Side +1 first: the free dimensions in groups of `probe_group`, each group moved
   to the bound in one probe. A failing group extends the box on all its dimensions; a
   passing group holds at least one bounding dimension and is searched by halving with
   ONE probe per level: probe the first half; if it fails, the second half is known to
   hold the bounding dimension (no probe); if it passes, search it and send the second
   half back to the untested pool (regrouped into groups of `probe_group` each round). A known-bounding single dimension needs no probe of
   its own: its bracket is [x0_d, bound]. Side -1 mirrors side +1: the dimensions that
   bound the box at +1 are presumed to bound it at -1 too (bracket [x0_d, -1], not probed;
   bisection that walks to the bound puts the edge there), the others are tested as one
   group first. An implausible group probe says nothing and is split; an implausible single
   probe opens a bracket (bisected, not mirrored).
2. Where each bounding side's edge lies (bisect), from the log first. Before every
   bisection round each open bracket (d, s) is tightened by the points already evaluated
   (the session's log: search proposals, other jobs' probes and samples, this job's own):
   a logged plausible point that lies inside the current box on every dimension but d,
   and on d between the bracket's ends, moves the outside end in if it passed and the
   inside end out if it failed. Fresh bisection steps go only to brackets the log left
   wider than `bisection_tol`. A finished bracket puts the edge `edge_fraction` of the
   way from its inside (failing) end to its outside (passing or implausible) end.
3. verify / shrink / re-probe: as in growth.py, on fresh samples only (verification
   never takes points from the log).

The log's evidence relies on the box model (a region is a box: a point's outcome inside
the box on every other dimension depends on d alone); verification on fresh samples
catches boxes the model got wrong.
"""

from __future__ import annotations

import math

import numpy as np

from examiner.search.config import RegionConfig
from examiner.search.growth import Query, RegionGrowth

# First galloping distance from the seed, in bisection tolerances (4: measured against 2
# on drawn layouts 0-3, benchmarks/RESULTS-search-recall.md).
GALLOP_START = 4.0


class EvaluationLog:
    """The session's evaluations so far: points, failed and usable (plausible, no model
    error; append-only).
    Rebuilt from the run store's records on resume (never pickled with the state)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return sum(len(p[0]) for p in self._parts)

    def append(self, U: np.ndarray, failed: np.ndarray, plausible: np.ndarray) -> None:
        if len(U):
            self._parts.append((np.asarray(U, float).reshape(-1, self.dim).copy(),
                                np.asarray(failed, bool).copy(), np.asarray(plausible, bool).copy()))
            self._cache = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(U (N, D), failed (N,), plausible (N,))."""
        if self._cache is None:
            if self._parts:
                self._cache = tuple(np.concatenate([p[i] for p in self._parts]) for i in range(3))  # type: ignore[assignment]
                self._parts = [self._cache]  # type: ignore[list-item]
            else:
                self._cache = (np.zeros((0, self.dim)), np.zeros(0, bool), np.zeros(0, bool))
        return self._cache  # type: ignore[return-value]

    @classmethod
    def from_records(cls, dim: int, records) -> "EvaluationLog":
        log = cls(dim)
        recs = list(records)
        if recs:
            log.append(np.array([r["u"] for r in recs], float), np.array([bool(r["failed"]) for r in recs]),
                       np.array([_usable(r) for r in recs]))
        return log


def _usable(rec: dict) -> bool:
    """A logged evaluation says something about the model: plausible, no model error
    (the session's `Scored.plausible and not Scored.model_error`)."""
    if rec.get("failed"):
        return True
    v = rec.get("value")
    return bool(rec["plausible"]) and not rec["model_error"] and v is not None and math.isfinite(float(v))


class LogGrowth(RegionGrowth):
    """One region-growing job that reads the log before probing (module docstring)."""

    def __init__(self, job: int, agent: int, seed_point: np.ndarray, cfg: RegionConfig, rng: np.random.Generator,
                 log: EvaluationLog | None = None) -> None:
        super().__init__(job, agent, seed_point, cfg, rng)
        self.log = log
        self.stage = "identify"
        # tasks: ("test", side, dims): untested group; ("pos", side, dims): holds a bounding dim.
        self.tasks: list[tuple[str, int, tuple[int, ...]]] | None = None
        self.bounding: dict[int, set[int]] = {1: set(), -1: set()}
        self.mirrored = False
        # brackets[(dim, side)] = [inside (fails), outside (passes or presumed), outside evaluated?]
        self.brackets: dict[tuple[int, int], list] = {}  # type: ignore[assignment]
        self.log_moves = 0  # bracket ends moved by logged points
        self._galloped: dict[tuple[int, int], bool] = {}  # a bisection step on the bracket passed
        self.groups = []  # the parent's probe groups: unused

    # ---- pickling: the log is the session's, re-attached every round -------------------------
    def __getstate__(self):
        s = dict(self.__dict__)
        s["log"] = None
        return s

    def attach_log(self, log: EvaluationLog | None) -> None:
        self.log = log

    # ---- cost and claims ------------------------------------------------------------------
    def estimated_cost(self) -> int:
        """Group probes of side +1, one halving search per bounding dimension (about 4),
        the mirror probe, ~5 bisection steps for 8 sides, verification."""
        g = max(1, self.cfg.probe_group)
        levels = math.ceil(math.log2(g)) if g > 1 else 0
        return math.ceil(self._dim / g) + 4 * (levels + 1) + 2 + 5 * 8 + self.cfg.verify_samples

    def may_contain(self, u: np.ndarray) -> bool:
        lo, hi = self.lo.copy(), self.hi.copy()
        if self.stage == "identify":
            if not self.mirrored:
                lo[:] = -1.0
            if self.tasks is None:
                hi[:] = 1.0
            else:
                for _kind, side, dims in self.tasks:
                    (lo if side < 0 else hi)[list(dims)] = float(side)
        for (dim, side), (_i, outside, _p) in self.brackets.items():
            (lo if side < 0 else hi)[dim] = outside
        return bool(np.all((u >= lo) & (u <= hi)))

    # ---- identify -------------------------------------------------------------------------
    def _free(self, side: int, dims) -> list[int]:
        """Dimensions among `dims` not already at the bound `side` (within the tolerance)."""
        out = []
        for d in dims:
            if abs(self.x0[d] - side) <= self.cfg.bisection_tol:
                (self.lo if side < 0 else self.hi)[d] = float(side)
            else:
                out.append(d)
        return out

    def _start_side(self, side: int, dims: list[int]) -> None:
        g = max(1, self.cfg.probe_group)
        self.tasks = [("test", side, tuple(dims[i:i + g])) for i in range(0, len(dims), g)]

    def _mirror(self) -> None:
        """Side -1: presume the dimensions that bound the box at +1 bound it at -1 (their
        brackets open unprobed); test the others as one group."""
        self.mirrored = True
        free = self._free(-1, range(self._dim))
        rest = [d for d in free if d not in self.bounding[1]]
        for d in free:
            if d in self.bounding[1]:
                self._open(d, -1, evaluated=False)
        self.tasks = [("test", -1, tuple(rest))] if rest else []

    def _open(self, dim: int, side: int, evaluated: bool, bounding: bool = True) -> None:
        if bounding:
            self.bounding[side].add(dim)
        self.brackets[(dim, side)] = [float(self.x0[dim]), float(side), evaluated]

    def _extend(self, side: int, dims) -> None:
        (self.lo if side < 0 else self.hi)[list(dims)] = float(side)
        if len(dims) > 1:
            self.group_edges.update((d, side) for d in dims)

    def _positive(self, side: int, dims: tuple[int, ...], evaluated: bool) -> None:
        if len(dims) == 1:
            self._open(dims[0], side, evaluated)
        else:
            self.tasks.append(("pos", side, dims))  # type: ignore[union-attr]

    def _identify_queries(self) -> list[Query]:
        if self.tasks is None:
            self._start_side(1, self._free(1, range(self._dim)))
        while not self.tasks and not self.mirrored:
            self._mirror()
        qs = []
        for kind, side, dims in self.tasks:  # type: ignore[union-attr]
            probe = dims if kind == "test" else dims[: (len(dims) + 1) // 2]
            u = self.x0.copy()
            u[list(probe)] = float(side)
            qs.append(Query(u, "probe", (kind, side, dims, probe)))
        return qs

    def _consume_identify(self, qs: list[Query], failed: np.ndarray, plausible: np.ndarray) -> None:
        self.tasks = []
        pool: dict[int, list[int]] = {1: [], -1: []}  # untested halves, regrouped below
        for q, f, ok in zip(qs, failed, plausible):
            kind, side, dims, probe = q.key
            rest = dims[len(probe):]
            if not ok:
                # an implausible probe says nothing: a group is split (both halves untested);
                # a single dimension's side is bisected from the seed (unknown, not presumed
                # to bound the box: it is not mirrored); the rest of a "pos" task, which
                # holds a bounding dimension only if this one does not, is tested again
                if len(probe) > 1:
                    half = (len(probe) + 1) // 2
                    self.tasks += [("test", side, probe[:half]), ("test", side, probe[half:])]
                else:
                    self._open(probe[0], side, evaluated=False, bounding=False)
                if rest:
                    self.tasks.append(("test", side, rest))
                continue
            if f:  # every probed dimension reaches the bound
                self._extend(side, probe)
                if rest:  # kind "pos": the bounding dimension is in the rest
                    self._positive(side, rest, evaluated=False)
            else:
                self._positive(side, probe, evaluated=True)
                pool[side] += rest
        g = max(1, self.cfg.probe_group)
        for side, dims in pool.items():
            dims = sorted(dims)
            self.tasks += [("test", side, tuple(dims[i:i + g])) for i in range(0, len(dims), g)]

    # ---- bisect ---------------------------------------------------------------------------
    def _tighten_from_log(self) -> None:
        """Move bracket ends with logged points (module docstring, step 2)."""
        if self.log is None or not self.brackets or len(self.log) == 0:
            return
        U, F, P = self.log.arrays()
        lo, hi = self.lo.copy(), self.hi.copy()
        for (dim, side), (inside, outside, _e) in self.brackets.items():
            (lo if side < 0 else hi)[dim] = outside
        outer = np.all((U >= lo) & (U <= hi), axis=1) & P
        if not outer.any():
            return
        U, F = U[outer], F[outer]
        ilo, ihi = self.lo.copy(), self.hi.copy()  # the box so far: brackets at their inside ends
        for (dim, side), (inside, _o, _e) in self.brackets.items():
            (ilo if side < 0 else ihi)[dim] = inside
        for key, br in self.brackets.items():
            dim, side = key
            inside, outside = br[0], br[1]
            lo_i, hi_i = ilo.copy(), ihi.copy()
            lo_i[dim], hi_i[dim] = -1.0, 1.0
            m = np.all((U >= lo_i) & (U <= hi_i), axis=1)
            t = side * (U[m, dim] - inside)  # distance beyond the inside end, outwards
            span = side * (outside - inside)
            between = (t > 0) & (t < span)
            if not between.any():
                continue
            tt, ff = t[between], F[m][between]
            if (~ff).any():
                br[1], br[2] = inside + side * tt[~ff].min(), True
                self._galloped[key] = True
                self.log_moves += 1

    def _close_brackets(self) -> None:
        tol = self.cfg.bisection_tol
        for key in [k for k, (i, o, _e) in self.brackets.items() if abs(o - i) <= tol]:
            dim, side = key
            inside, outside, evaluated = self.brackets.pop(key)
            if not evaluated and abs(outside - side) < 1e-12:
                edge = float(side)  # a presumed bound the box reaches after all
            else:
                edge = inside + self.cfg.edge_fraction * (outside - inside)
            (self.lo if side < 0 else self.hi)[dim] = edge

    def _step(self, dim: int, side: int) -> float:
        """The next point of bracket (dim, side): while no evaluation has passed on it, a
        galloping step (distances 4 tol, 8 tol, 16 tol, ... from x0: an edge near the seed
        is bracketed in one or two steps instead of halving [x0, bound] from the bound);
        then the bracket's midpoint."""
        inside, outside, evaluated = self.brackets[(dim, side)]
        x0, tol = self.x0[dim], self.cfg.bisection_tol
        if not self._galloped.get((dim, side), False):
            g = GALLOP_START * tol
            while g <= side * (inside - x0) + 1e-12:
                g *= 2.0
            if side * (outside - x0) - g > 0.5 * tol:
                return float(x0 + side * g)
        return 0.5 * (inside + outside)

    def _bisect_queries(self) -> list[Query]:
        qs = []
        for dim, side in self.brackets:
            u = self.x0.copy()
            u[dim] = self._step(dim, side)
            qs.append(Query(u, "bisect", (dim, side)))
        return qs

    # ---- the state machine ----------------------------------------------------------------
    def next_queries(self) -> list[Query]:
        if self.done:
            return []
        if self.stage == "identify":
            qs = self._identify_queries()
            if qs:
                self._pending = qs
                return qs
            self.stage = "bisect"
        if self.stage == "bisect":
            self._tighten_from_log()
            self._close_brackets()
            qs = self._bisect_queries()
            if qs:
                self._pending = qs
                return qs
            self.stage = "verify"
            self._widen_to_resolution()
        return super().next_queries()

    def consume(self, failed: np.ndarray, values: np.ndarray, plausible: np.ndarray | None = None) -> None:
        if self.stage == "verify":
            super().consume(failed, values, plausible)
            return
        qs, self._pending = self._pending, []
        self.cost += len(qs)
        failed = np.asarray(failed, bool)
        plausible = np.ones(len(failed), bool) if plausible is None else np.asarray(plausible, bool)
        if self.stage == "identify":
            self._consume_identify(qs, failed, plausible)
            return
        # bisect: an implausible step closes the bracket from outside like a passing one
        # (conservative: the box stops where the seed's scene stops being plausible; as a
        # failing one it walked to the bound past the region, benchmarks/RESULTS-search-recall.md)
        for q, f, ok in zip(qs, failed, plausible):
            br = self.brackets[q.key]
            if f and ok:
                br[0] = q.u[q.key[0]]
            else:
                br[1], br[2] = q.u[q.key[0]], True
                self._galloped[q.key] = True
        self._close_brackets()

    def _reprobe_group_edges(self) -> bool:
        """After a failed verification: probe alone every side a group probe put at its
        bound (the group may have landed in another failure region)."""
        if not self.group_edges:
            return False
        self.reprobes += 1
        self.tasks = []
        for dim, side in sorted(self.group_edges):
            (self.lo if side < 0 else self.hi)[dim] = self.x0[dim]
            self.tasks.append(("test", side, (dim,)))
        self.group_edges.clear()
        self.mirrored = True
        self.stage = "identify"
        return True


def make_growth(job: int, agent: int, seed_point: np.ndarray, cfg: RegionConfig, rng: np.random.Generator,
                log: EvaluationLog | None = None) -> RegionGrowth:
    """The job class `cfg.growth` names ("log": LogGrowth, "probe": RegionGrowth)."""
    if cfg.growth == "log":
        return LogGrowth(job, agent, seed_point, cfg, rng, log)
    return RegionGrowth(job, agent, seed_point, cfg, rng)
