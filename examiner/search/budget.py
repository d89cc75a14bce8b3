"""Budget accounting: every evaluation of every phase (search proposals, probes,
bisection steps, verification samples) spends one unit of the same budget."""

from __future__ import annotations


class Budget:
    """`total` evaluations; `spent` so far. A round of proposals may only start when it
    fits next to what the running region-growing jobs still need (`committed`)."""

    def __init__(self, total: int, spent: int = 0) -> None:
        self.total = int(total)
        self.spent = int(spent)

    @property
    def remaining(self) -> int:
        return self.total - self.spent

    def can_afford(self, n: int, committed: int) -> bool:
        """Whether n more evaluations fit next to `committed` reserved ones."""
        return self.remaining - committed >= n

    def spend(self, n: int) -> None:
        self.spent += int(n)
