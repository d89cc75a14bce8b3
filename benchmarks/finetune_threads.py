"""Fine-tuning speed with one or two torch threads (the FinetuneConfig.threads default).

Runs the training loop (`examiner.training.finetune.finetune`) on a saved set and prints
its own time (the loop only); farm-bench times the whole process (start-up included) of
the two settings side by side:

    farm-bench --vs 'python benchmarks/finetune_threads.py SET --threads 1' -- \
        python benchmarks/finetune_threads.py SET --threads 2

Prints examples per second and the weights' hash (the same seed and thread count give the
same hash).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("set", help="a fine-tuning set folder (examiner generate finetune)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    from examiner.training import finetune as ft

    config = ft.FinetuneConfig(epochs=args.epochs, threads=args.threads, everyday_share=0.5).check()
    train = ft.load_examples(args.set)
    pool, stop, _ = ft.everyday_splits(config)
    net = ft.load_network("baseline")
    seen = [0]
    t = time.perf_counter()
    net, info = ft.finetune(net, train, pool, stop, config, on_progress=lambda k: seen.__setitem__(0, seen[0] + k))
    dt = time.perf_counter() - t
    print(f"threads {args.threads}: {seen[0]} examples in {dt:.1f} s = {seen[0] / dt:.0f}/s; weights {ft.state_hash(net)[:12]}")


if __name__ == "__main__":
    main()
