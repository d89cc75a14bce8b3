"""Per-model random state without global seeding.

stable-baselines3 and `cma` draw from the process-global generators (torch's default
generator for weight init and action sampling, numpy's legacy global state for minibatch
shuffles and CMA-ES sampling). Many agents and strategies live in one process, so instead
of seeding those globals we keep one `GlobalRNGState` per model and swap it in only while
that model runs (`scoped_global_rng`), restoring the caller's state afterwards. Code that
must not touch a model's stream (the evaluator, called from inside an SB3 rollout) runs in
`isolated_global_rng`.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from simulator.pool import torch_threads  # noqa: F401  (re-exported: the one torch-thread scope)


def _torch():
    import torch

    return torch


@dataclass
class GlobalRNGState:
    """Snapshot of python's, numpy's legacy and torch's CPU global generators."""

    python: Any
    numpy: Any
    torch: Any

    @classmethod
    def from_seed(cls, seed: int) -> "GlobalRNGState":
        """A fresh state derived from `seed`, built without touching the globals."""
        seed = int(seed) % (2**32)
        torch_gen = _torch().Generator().manual_seed(seed)
        return cls(
            python=random.Random(seed).getstate(),
            numpy=np.random.RandomState(seed).get_state(),
            torch=torch_gen.get_state(),
        )

    @classmethod
    def capture(cls) -> "GlobalRNGState":
        return cls(python=random.getstate(), numpy=np.random.get_state(), torch=_torch().get_rng_state())

    def install(self) -> None:
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        _torch().set_rng_state(self.torch)


@contextlib.contextmanager
def scoped_global_rng(state: GlobalRNGState) -> Iterator[GlobalRNGState]:
    """Run the body with `state` installed as the global generators; on exit `state` is
    advanced to where the body left them and the caller's globals are restored."""
    outer = GlobalRNGState.capture()
    state.install()
    try:
        yield state
    finally:
        inner = GlobalRNGState.capture()
        state.python, state.numpy, state.torch = inner.python, inner.numpy, inner.torch
        outer.install()


@contextlib.contextmanager
def isolated_global_rng() -> Iterator[None]:
    """Whatever the body draws from the globals, the caller's streams are unaffected."""
    outer = GlobalRNGState.capture()
    try:
        yield
    finally:
        outer.install()


def child_seed_int(seq: np.random.SeedSequence) -> int:
    """A 32-bit integer seed for libraries that want an int (torch, cma)."""
    return int(seq.generate_state(1, dtype=np.uint32)[0])
