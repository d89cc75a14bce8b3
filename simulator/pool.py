"""Render scenes in worker processes (one GL context and body model each).

Rendering on llvmpipe plus the Python around it keeps about one core busy per process,
so W processes on W cores render close to W times faster than one. Results come back
in input order; each worker renders whole chunks so the body model still runs batched.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Sequence

from simulator.params import SceneParams

_worker_renderer = None


def _init(config, threads: int) -> None:
    global _worker_renderer
    os.environ["LP_NUM_THREADS"] = str(threads)  # llvmpipe threads per process
    import torch

    torch.set_num_threads(threads)  # W workers x default threads would oversubscribe the cores
    from simulator.renderer import Renderer

    _worker_renderer = Renderer(config)


def _render_chunk(params_dicts: list[dict]):
    params = [SceneParams.from_dict(d) for d in params_dicts]
    return _worker_renderer.render_batch(params)


class RenderPool:
    """`with RenderPool(workers=2) as pool: samples = pool.render_batch(params)`."""

    def __init__(self, workers: int = 2, config=None, chunk: int = 16) -> None:
        if workers < 1:
            from simulator.errors import ParamError

            raise ParamError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.chunk = chunk
        ctx = mp.get_context("spawn")  # GL contexts and torch do not survive fork
        self._pool = ctx.Pool(workers, initializer=_init, initargs=(config, 1))

    def render_batch(self, params_list: Sequence[SceneParams]):
        dicts = [p.to_dict() for p in params_list]
        chunks = [dicts[i:i + self.chunk] for i in range(0, len(dicts), self.chunk)]
        out = []
        for part in self._pool.imap(_render_chunk, chunks):
            out.extend(part)
        return out

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> "RenderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
