"""What the realistic world costs per sample, side by side in one run (not a timed test).

The same renderer, the same 256x256 ground truth, two ways to make the scenes:

(a) flat world (what the simulator sampled before the realistic world): 34 joint angles
    drawn uniformly (`joints` group), camera at a sampled distance, no floor;
(b0) flat world framed like the realistic one: as (a) but with the realistic camera
    (framing, truncation): people are larger in the image, which costs fragments and
    selects the full-detail mesh more often;
(b) realistic world: the `pose` group (the motion-capture prior's latent, decoded in one
    batch per chunk), camera framing and truncation, the floor with the body's shadow;
(c) as (b) with a body-relative occluder (box or pole) in every scene (one more
    segmentation pass per scene, to measure what it hides).

Scene construction (parameter mapping, prior decoding) is timed with the rendering. Both
wall time and this process's CPU time are reported; on a shared machine compare the CPU
ratios.

    .venv/bin/python benchmarks/bench_world.py [--n 192] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np


def _flat(space, U):
    out = []
    for p in (space.to_params(u) for u in U):
        out.append(p.replace(ground=dataclasses.replace(p.ground, kind="none")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    args = ap.parse_args()
    from simulator.params import Dimension, ParamSpace, SceneParams
    from simulator.renderer import render_batch

    base = SceneParams()
    # The old camera group: distance instead of framing and truncation.
    old_camera = [d for d in ParamSpace.from_groups("camera").dimensions
                  if d.name not in ("camera.framing", "camera.truncation", "camera.truncation_side")]
    old_camera.append(Dimension("camera.distance", 2.2, 5.5, "m"))
    flat_space = ParamSpace(list(ParamSpace.from_groups("joints,shape").dimensions) + old_camera, base=base)
    world = ParamSpace.from_groups("pose,shape,camera,ground")
    occluded = ParamSpace.from_groups("pose,shape,camera,ground,occluder.part,occluder.coverage",
                                      base=base.with_values({"occluder.kind": "box"}))
    rng = np.random.default_rng(0)
    U_flat, U_world, U_occ = (s.sample(rng, args.n) for s in (flat_space, world, occluded))

    def run_flat():
        for i in range(0, args.n, 16):
            render_batch(_flat(flat_space, U_flat[i:i + 16]))

    def run_world(space, U):
        def go():
            for i in range(0, args.n, 16):
                render_batch(space.to_params_batch(U[i:i + 16]))
        return go

    framed = ParamSpace.from_groups("joints,shape,camera")
    U_framed = framed.sample(rng, args.n)

    def run_framed():
        for i in range(0, args.n, 16):
            render_batch(_flat(framed, U_framed[i:i + 16]))

    paths = {"(a) flat world": run_flat, "(b0) flat world, framed": run_framed,
             "(b) realistic world": run_world(world, U_world),
             "(c) realistic + occluder": run_world(occluded, U_occ)}
    # Warm-up: body model, GL context, shaders, the prior, floor textures.
    render_batch(_flat(flat_space, U_flat[:4]))
    render_batch(world.to_params_batch(U_world[:4]))
    render_batch(occluded.to_params_batch(U_occ[:4]))
    times = {k: [] for k in paths}
    cpu = {k: [] for k in paths}
    for _ in range(args.rounds):
        for name, go in paths.items():
            t, c = time.perf_counter(), time.process_time()
            go()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    # CPU time of this process (all its threads, the GL rasteriser's included) barely moves
    # when other jobs share the machine; wall time does.
    ref, ref_cpu = np.median(times["(a) flat world"]), np.median(cpu["(a) flat world"])
    print(f"{'path (1 process, 256x256)':<30} {'samples/s':>10} {'vs (a)':>8} {'CPU ms/scene':>13} {'vs (a)':>8}")
    for name, ts in times.items():
        med, med_cpu = float(np.median(ts)), float(np.median(cpu[name]))
        print(f"{name:<30} {args.n / med:>10.1f} {ref / med:>7.2f}x {1000 * med_cpu / args.n:>13.1f} {ref_cpu / med_cpu:>7.2f}x")
    from simulator.prior import load_pose_prior

    prior = load_pose_prior()
    z = np.random.default_rng(1).normal(size=(256, prior.latent_dim))
    t = time.perf_counter()
    for _ in range(20):
        prior.decode(z)
    per = (time.perf_counter() - t) / (20 * 256)
    t = time.perf_counter()
    for k in range(200):
        prior.decode(z[k % 256:k % 256 + 1])
    one = (time.perf_counter() - t) / 200
    print(f"prior decode: {per * 1e6:.1f} us per pose at batch 256, {one * 1e6:.0f} us at batch 1")


if __name__ == "__main__":
    main()
