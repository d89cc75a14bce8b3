"""Simulator throughput, side by side in one run (not a timed test).

(a) naive: a fresh pyrender scene and OffscreenRenderer per sample, body model at
    batch 1, default MSAA colour pass + SEG pass for exact parts, keypoints projected;
(b) ours, one process: `simulator.render_batch` (persistent GL context and scene,
    in-place vertex-buffer updates, batched body model), at full mesh detail and with
    the default `detail="auto"` (the decimated body mesh wherever its deviation projects
    to at most 1 px, see simulator/lod.py);
(c) ours, `RenderPool` with one worker per core, both details.
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
    from simulator.renderer import get_renderer, pose_vector, shape_vector

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


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    from simulator.renderer import RenderConfig, render_batch

    scenes = _scenes(args.n)
    own, low_share = {}, 0.0
    for detail in ("full", "auto"):
        cfg = RenderConfig(detail=detail)
        render_batch(scenes[:4], cfg)  # warm-up: body model, GL context, shaders, LOD cache
        t = time.perf_counter()
        out = []
        for i in range(0, args.n, 16):
            out += render_batch(scenes[i:i + 16], cfg)
        own[detail] = args.n / (time.perf_counter() - t)
        if detail == "auto":
            low_share = sum(s.mesh_detail == "low" for s in out) / len(out)
    rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Last: pyrender's EGL OffscreenRenderer.delete() terminates the process-wide EGL
    # display, which invalidates every other GL context in this process.
    t = time.perf_counter()
    naive(scenes[: max(8, args.n // 4)])
    naive_rate = max(8, args.n // 4) / (time.perf_counter() - t)

    from simulator.pool import RenderPool

    pool_rate, worker_peak = {}, 0.0
    for detail in ("full", "auto"):
        with RenderPool(workers=args.workers, config=RenderConfig(detail=detail)) as pool:
            pool.render_batch(scenes[: 2 * args.workers])  # warm-up
            t = time.perf_counter()
            pool.render_batch(scenes)
            pool_rate[detail] = args.n / (time.perf_counter() - t)
            # Peak RSS of each worker since its exec (VmHWM); getrusage's children maxrss
            # would count the pre-exec fork of this (large) process instead.
            worker_peak = max(worker_peak, sum(_peak_rss_mb(p.pid) for p in pool._pool._pool))

    rows = [("(a) naive (fresh scene, batch 1)", naive_rate)]
    rows += [(f"(b) simulator, 1 process, detail={d}", own[d]) for d in own]
    rows += [(f"(c) simulator, RenderPool({args.workers}), detail={d}", pool_rate[d]) for d in pool_rate]
    print(f"{'path':<46} {'samples/s':>10} {'vs naive':>9}")
    for name, rate in rows:
        print(f"{name:<46} {rate:>10.1f} {rate / naive_rate:>8.2f}x")
    print(f"detail=auto drew the decimated mesh for {100 * low_share:.0f}% of the scenes")
    print(f"peak RSS: this process {rss_main:.0f} MB (it also ran (a) and (b)); "
          f"the {args.workers} RenderPool workers together {worker_peak:.0f} MB")


if __name__ == "__main__":
    main()
