"""The failure archive the agents share: claimed, provisional and tabu boxes, and the
claim-distance penalty's shape (`FailureArchive.proximity`)."""

from __future__ import annotations

import numpy as np

from examiner.search.boxes import distance_to_boxes


class FailureArchive:
    """Regions the agents share: claimed boxes (accepted regions), provisional claims
    around seeds being grown, and small tabu boxes around seeds whose region was
    rejected (`kind` is "claimed", "provisional" or "tabu"). `proximity(U)` is the
    claim-distance penalty's shape: 1 inside any box, falling linearly to 0 at `radius`
    (L2, normalised units)."""

    def __init__(self, dim: int, radius: float, margin: float) -> None:
        self.dim = dim
        self.radius = float(radius)
        self.margin = float(margin)
        self.lo = np.zeros((0, dim))
        self.hi = np.zeros((0, dim))
        self.kind: list[str] = []
        self.owner: list[int] = []  # job id

    def add(self, lo: np.ndarray, hi: np.ndarray, kind: str, owner: int) -> None:
        self.lo = np.vstack([self.lo, lo[None]])
        self.hi = np.vstack([self.hi, hi[None]])
        self.kind.append(kind)
        self.owner.append(owner)

    def update_owner(self, owner: int, kind: str, lo: np.ndarray, hi: np.ndarray) -> None:
        """Replace the box(es) of `owner` and `kind` (e.g. a provisional claim that grows
        with its job)."""
        for i, (o, k) in enumerate(zip(self.owner, self.kind)):
            if o == owner and k == kind:
                self.lo[i], self.hi[i] = lo, hi

    def remove_owner(self, owner: int, kind: str) -> None:
        keep = [i for i, (o, k) in enumerate(zip(self.owner, self.kind)) if not (o == owner and k == kind)]
        self.lo, self.hi = self.lo[keep], self.hi[keep]
        self.kind = [self.kind[i] for i in keep]
        self.owner = [self.owner[i] for i in keep]

    def proximity(self, U: np.ndarray) -> np.ndarray:
        """(N,) in [0, 1]."""
        U = np.atleast_2d(U)
        if len(self.lo) == 0:
            return np.zeros(len(U))
        return np.clip(1.0 - self.distance(U) / self.radius, 0.0, 1.0)

    def distance(self, U: np.ndarray) -> np.ndarray:
        """(N,) L2 distance to the nearest box of any kind (inf without boxes)."""
        U = np.atleast_2d(U)
        if len(self.lo) == 0:
            return np.full(len(U), np.inf)
        return distance_to_boxes(U, self.lo, self.hi).min(axis=1)

    def claimed(self, U: np.ndarray) -> np.ndarray:
        """(N,) bool: inside any box of the archive grown by `margin`: accepted claims, but
        also the provisional claims of jobs still growing and the tabu boxes of rejected
        seeds (all three kinds stop a failure there from seeding a new job)."""
        U = np.atleast_2d(U)
        if len(self.lo) == 0:
            return np.zeros(len(U), dtype=bool)
        return distance_to_boxes(U, self.lo - self.margin, self.hi + self.margin).min(axis=1) <= 0.0


def far_start(archive: "FailureArchive", rng: np.random.Generator, n: int, dim: int,
              low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """A restart point: of n uniform draws in [low, high]^dim, the one farthest from the
    archive's boxes (n <= 1: a plain uniform draw)."""
    C = rng.uniform(low, high, size=(max(n, 1), dim))
    if n <= 1:
        return C[0]
    return C[int(np.argmax(archive.distance(C)))]
