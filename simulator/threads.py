"""torch intra-op threads for a block of code (no simulator imports: the body model and the
process pool both use it)."""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with torch using n intra-op threads, then restore the caller's count.
    Small networks are fastest (and bit-reproducible) on one thread; with more, OpenMP
    synchronisation dominates on a busy 2-core machine (~1000x slower per policy layer; the
    body model at batch 1 runs 22 instead of 100 ms per body beside the GL rasteriser)."""
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)
