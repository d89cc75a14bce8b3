"""Simulator throughput, side by side in one run (not a timed test).

(a) naive: a fresh pyrender scene and OffscreenRenderer per sample, body model at
    batch 1, default MSAA colour pass + SEG pass for exact parts, keypoints projected;
(b) ours, one process: `simulator.render_batch` (persistent GL context and scene,
    in-place vertex-buffer updates, batched body model);
(c) ours, `RenderPool` with one worker per core.
Every path produces 256x256 RGB + mask + depth + DensePose parts + keypoints.

    .venv/bin/python benchmarks/bench_simulator.py [--n 96]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def _scenes(n: int, seed: int = 0):
    from simulator.params import ParamSpace

    space = ParamSpace.from_groups("pose,shape,camera")
    return [space.to_params(u) for u in space.sample(np.random.default_rng(seed), n)]


def naive(params_list):
    """What one writes first with pyrender: everything rebuilt per sample."""
    import pyrender

    from simulator import camera as cm
    from simulator.render import get_renderer, pose_vector, shape_vector

    body = get_renderer().body  # same body model instance; called at batch 1 below
    for p in params_list:
        out = body.forward(pose_vector(p)[None], shape_vector(p)[None])
        v = out.vertices[0]
        scene = pyrender.Scene(bg_color=[0, 0, 0, 0], ambient_light=[0.3] * 3)
        mat = pyrender.MetallicRoughnessMaterial(baseColorFactor=[0.8, 0.6, 0.5, 1.0])
        import trimesh

        tm = trimesh.Trimesh(v, body.faces, process=False)
        scene.add(pyrender.Mesh.from_trimesh(tm, material=mat))
        nodes = []
        for part in range(1, 25):
            sub = trimesh.Trimesh(v, body.faces[body.face_parts == part], process=False)
            nodes.append(scene.add(pyrender.Mesh.from_trimesh(sub, material=mat)))
        target = 0.5 * (v.min(0) + v.max(0))
        pose = cm.camera_to_world_gl(p.camera, target)
        K = cm.intrinsics(p.camera)
        scene.add(pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], znear=0.05, zfar=20), pose=pose)
        scene.add(pyrender.DirectionalLight(intensity=3.0), pose=pose)
        r = pyrender.OffscreenRenderer(256, 256)
        color, _ = r.render(scene, flags=pyrender.RenderFlags.RGBA)
        seg, depth = r.render(scene, flags=pyrender.RenderFlags.SEG, seg_node_map={n: (i + 1,) * 3 for i, n in enumerate(nodes)})
        r.delete()
        for kps in out.keypoints.values():
            cm.project(kps[0], K, cm.world_to_camera_cv(pose))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    from simulator.render import render_batch

    scenes = _scenes(args.n)
    render_batch(scenes[:4])  # warm-up: body model, GL context, shaders

    t = time.perf_counter()
    for i in range(0, args.n, 16):
        render_batch(scenes[i:i + 16])
    own_rate = args.n / (time.perf_counter() - t)
    rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Last: pyrender's EGL OffscreenRenderer.delete() terminates the process-wide EGL
    # display, which invalidates every other GL context in this process.
    t = time.perf_counter()
    naive(scenes[: max(8, args.n // 4)])
    naive_rate = max(8, args.n // 4) / (time.perf_counter() - t)

    from simulator.pool import RenderPool

    with RenderPool(workers=args.workers) as pool:
        pool.render_batch(scenes[: 2 * args.workers])  # warm-up
        t = time.perf_counter()
        pool.render_batch(scenes)
        pool_rate = args.n / (time.perf_counter() - t)
        rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"{'path':<40} {'samples/s':>10} {'vs naive':>9}")
    print(f"{'(a) naive (fresh scene, batch 1)':<40} {naive_rate:>10.1f} {1.0:>8.2f}x")
    print(f"{'(b) simulator, 1 process':<40} {own_rate:>10.1f} {own_rate / naive_rate:>8.2f}x")
    print(f"{f'(c) simulator, RenderPool({args.workers})':<40} {pool_rate:>10.1f} {pool_rate / naive_rate:>8.2f}x")
    print(f"peak RSS: main {rss_main:.0f} MB, largest worker {rss_children:.0f} MB, "
          f"total for (c) about {rss_children * args.workers:.0f} MB")


if __name__ == "__main__":
    main()
