"""Garment prediction time against the draping simulation it replaces (not a timed test).

For each garment type, on the same random (pose, shape, style) samples:
(a) simulation: one PBD draping run (`simulator.garments.training.drape.Draper.run`, the
    training-data generator) per sample, CPU process time (the median of the samples);
(b) prediction: the body stage (`Wardrobe.body`: bone transforms and rest surface, which
    the renderer's body model evaluates anyway) and the garment stage (`Wardrobe.dress`:
    canonical rest shape, LF MLP + RBF-mixed pivot HF, skinning, push-out) at batch 1 and
    32 (styles seen before, as a batch of scenes sharing styles would), at batch 1 with a
    style never seen ("x new": anchors, face parts and blend matrices computed too, as in
    the renderer, which draws a new style per sample; timed in alternation with the
    drapes), and the learned model's forward alone at batch 32;
(c) interpenetration: share of garment vertices inside the body before and after the
    push-out (whole-body nearest-vertex test).

    /tmp/venv/bin/python benchmarks/bench_garments.py [--n 4] [--new-styles 200] [--garments t-shirt,skirt] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def bench(name: str, n: int, seed: int = 0, new_styles: int = 200) -> dict:
    from simulator.garments import get_spec, get_wardrobe
    from simulator.garments.collision import BodyCollider
    from simulator.garments.training.drape import Draper
    from simulator.garments.training.train import sample_poses, sample_shapes

    wd = get_wardrobe()
    rng = np.random.default_rng(seed)
    spec = get_spec(name)
    P, S, G = sample_poses(rng, spec.slot, 32), sample_shapes(rng, 32), rng.uniform(0, 1, (32, 4))
    draper = Draper(wd.geometry(name))
    draper.run(G[0], P[0], S[0])  # warm caches
    b1 = [wd.body(P[i:i + 1], S[i:i + 1]) for i in range(10)]
    # The renderer draws a new style for every sample: anchors, face parts and the sparse
    # blend matrices are then computed once more (they are cached per style). Each drape
    # is followed by its share of these, so that the two are timed under the same machine
    # conditions (medians of the rounds).
    G_new = rng.uniform(0, 1, (new_styles, 4))
    wd.dress(name, G[:1], P[:1], S[:1], body=b1[0])
    sims, news = [], []
    for i, chunk in enumerate(np.array_split(np.arange(new_styles), n)):
        sims.append(draper.run(G[i], P[i], S[i]).seconds)
        t0 = time.process_time()
        for j in chunk:
            wd.dress(name, G_new[j:j + 1], P[j % 10:j % 10 + 1], S[j % 10:j % 10 + 1], body=b1[j % 10])
        news.append((time.process_time() - t0) / max(len(chunk), 1))
    garment1_new = float(np.median(news))

    def per_item(fn, batch, reps):
        fn()
        t0 = time.process_time()
        for _ in range(reps):
            fn()
        return (time.process_time() - t0) / reps / batch

    body1 = per_item(lambda: wd.body(P[:1], S[:1]), 1, 10)
    garment1 = np.mean([per_item(lambda: wd.dress(name, G[i:i + 1], P[i:i + 1], S[i:i + 1], body=b1[i]), 1, 3)
                        for i in range(10)])
    b32 = wd.body(P, S)
    body32 = per_item(lambda: wd.body(P, S), 32, 2)
    garment32 = per_item(lambda: wd.dress(name, G, P, S, body=b32), 32, 2)
    out = wd.dress(name, G, P, S, body=b32)
    pred, geom = wd.predictor(name), wd.geometry(name)
    rest = np.repeat(geom.rest_shape(geom.anchors(G[0]), wd.rig.mean_rest_vertices, wd.rig.mean_rest_heads)[None], 32, 0)
    model32 = per_item(lambda: pred.displacement(P, S, G, rest), 32, 5)
    # Interpenetration after the push-out, judged on the whole posed body.
    judge = BodyCollider(wd.rig)
    full = wd.rig.pose(wd.rig.pose_deltas(P), S)
    inside = [judge.inside_fraction(out.vertices[i] + full.offset[i], full.vertices[i]) for i in range(32)]
    sim = float(np.median(sims))
    return {
        "garment": name, "vertices": geom.n_vertices, "sim_s": sim, "body_batch1_s": body1,
        "garment_batch1_s": garment1, "garment_batch1_new_style_s": garment1_new, "body_batch32_s": body32, "garment_batch32_s": garment32,
        "model_only_batch32_s": model32, "speedup_batch1": sim / garment1, "speedup_batch32": sim / garment32,
        "speedup_batch1_new_style": sim / garment1_new,
        "speedup_batch1_with_body": sim / (garment1 + body1), "speedup_model_only": sim / model32,
        "inside_before_push_pct": 100 * float(out.inside_fraction.mean()),
        "inside_after_push_pct": 100 * float(np.mean(inside)), "inside_after_push_max_pct": 100 * float(np.max(inside)),
    }


def main() -> None:
    import torch

    from simulator.garments import GARMENTS

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="simulations per garment")
    ap.add_argument("--garments", default=",".join(GARMENTS))
    ap.add_argument("--new-styles", type=int, default=200, help="styles never seen before, timed at batch 1 (x new)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    rows = [bench(g.strip(), args.n, new_styles=args.new_styles) for g in args.garments.split(",") if g.strip()]
    for r in rows:
        r["load_average_1min"] = [load0, os.getloadavg()[0]]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'garment':8s} {'verts':>5s} {'sim s':>6s} {'body b1':>8s} {'garm b1':>8s} {'garm b32':>8s} {'model':>7s} "
          f"{'x b1':>5s} {'x b32':>5s} {'x new':>5s} {'x b1+body':>9s} {'x model':>7s} {'in raw%':>7s} {'in fin%':>7s}")
    for r in rows:
        print(f"{r['garment']:8s} {r['vertices']:5d} {r['sim_s']:6.3f} {1e3 * r['body_batch1_s']:6.1f}ms "
              f"{1e3 * r['garment_batch1_s']:6.1f}ms {1e3 * r['garment_batch32_s']:6.1f}ms {1e3 * r['model_only_batch32_s']:5.2f}ms "
              f"{r['speedup_batch1']:5.0f} {r['speedup_batch32']:5.0f} {r['speedup_batch1_new_style']:5.0f} "
              f"{r['speedup_batch1_with_body']:9.0f} "
              f"{r['speedup_model_only']:7.0f} {r['inside_before_push_pct']:7.2f} {r['inside_after_push_pct']:7.2f}")
    print(f"1-minute load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (2 cores)")


if __name__ == "__main__":
    main()
