"""Generator throughput: images/s of each generator at 256x256 and 512x512, and the
dense generator with 1 vs 2 local worker processes (not a timed test).

Each run writes a real dataset (images, annotations, shards) into a temporary directory
through `generators.engine.run_dataset`. "steady" is images/s between the first and the
last completed batch (start-up excluded: model load, GL context, UV charts, worker
spawn); "wall" includes everything. The machine's load average is printed next to each
row: on shared cores, other processes' load changes the numbers.

    /tmp/venv/bin/python benchmarks/bench_generators.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _run_dir(root: Path) -> str:
    """A minimal search run with one failure mode (for the fine-tune generator)."""
    from examiner.store import RunStore
    from simulator.params import ParamSpace

    space = ParamSpace.from_groups("pose,camera")
    store = RunStore.create(root / "run", {"space": space.to_dict(), "dimension_names": space.names})
    lo = [-0.5] * space.dim
    hi = [0.5] * space.dim
    store.write_modes([{"id": 0, "lo": lo, "hi": hi}])
    store.close()
    return str(root / "run")


def measure(kind: str, config, workers: int = 1) -> dict:
    from generators.engine import run_dataset

    ticks: list[tuple[float, int]] = []
    done = [0]

    def on_progress(n: int) -> None:
        done[0] += n
        ticks.append((time.perf_counter(), done[0]))

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        run_dataset(kind, config, Path(d) / "out", workers=workers, on_progress=on_progress)
        wall = time.perf_counter() - t0
    (t_a, n_a), (t_b, n_b) = ticks[0], ticks[-1]
    steady = (n_b - n_a) / (t_b - t_a) if t_b > t_a else float("nan")
    return {"generator": kind, "size": config.size, "workers": workers, "n": config.n,
            "steady_images_per_s": round(steady, 2), "wall_images_per_s": round(config.n / wall, 2),
            "wall_s": round(wall, 1), "load_average": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Fewer images per row.")
    ap.add_argument("--json", action="store_true", help="Print the rows as JSON.")
    args = ap.parse_args()
    from generators.anomaly import AnomalyConfig
    from generators.dense import DenseConfig
    from generators.finetune import FinetuneConfig

    scale = 0.5 if args.quick else 1.0
    n = lambda k: max(16, int(k * scale))  # noqa: E731
    rows = []
    with tempfile.TemporaryDirectory() as d:
        run = _run_dir(Path(d))
        plan = [
            ("dense", DenseConfig(n=n(128), size=256, shard_size=32), 1),
            ("dense", DenseConfig(n=n(128), size=256, shard_size=32), 2),
            ("dense", DenseConfig(n=n(64), size=512, shard_size=32), 1),
            ("anomaly", AnomalyConfig(n=n(64), size=256, shard_size=32), 1),
            ("anomaly", AnomalyConfig(n=n(32), size=512, shard_size=16), 1),
            ("finetune", FinetuneConfig(n=n(128), size=256, shard_size=32, from_run=run), 1),
            ("finetune", FinetuneConfig(n=n(64), size=512, shard_size=32, from_run=run), 1),
        ]
        for kind, config, workers in plan:
            row = measure(kind, config, workers)
            rows.append(row)
            if not args.json:
                print(f"{kind:9s} {config.size:4d}px workers={workers}  steady {row['steady_images_per_s']:6.2f} img/s  "
                      f"wall {row['wall_images_per_s']:6.2f} img/s ({row['wall_s']} s, n={config.n})  "
                      f"load {row['load_average']}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
