"""The Blender (Cycles) renderer against pyrender (issue 19; a benchmark, not a timed test).

Subcommands (results go to benchmarks/RESULTS-blender.md by hand; JSON with --json):

- ``samples``: Cycles samples (adaptive, OpenImageDenoise) against a 128-sample
  reference at 256x256: PSNR and seconds, to choose the default sample count;
- ``speed``: seconds per image at 256x256 and 512x512 (wall, and CPU seconds of the
  Blender worker and of this process), and scenes/s with a 2-worker `RenderPool`;
- ``models``: MediaPipe and the bundled baseline on the same N scenes rendered by both
  renderers (each scene rendered once per renderer): PA-MPJPE, PCK@0.1, no-detection rate;
- ``sheets``: contact sheets, pyrender beside Blender, under benchmarks/blender_sheets/;
- ``install``: `examiner renderers install blender` cold (fresh environment, pip's
  wheel cache as this machine has it) and cached (environment present);
- ``runs PYRENDER_RUN BLENDER_RUN``: two `examiner run --strategy random` runs of the same
  seed, one per `--renderer`: failure rates and per-scene agreement;
- ``recheck RUN [RUN ...]``: each run's verified modes rechecked under both renderers on
  the same fresh scenes (the scenes `examiner recheck RUN --samples N --seed S` draws, with
  and without `--renderer blender`): failure rate per mode and renderer, per-scene
  agreement;
- ``modes RUN RUN [...]``: box overlap between the modes of independent runs.

    nice -n 10 .venv/bin/python benchmarks/bench_blender.py speed|samples|models|sheets|install [--n N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPACE = "pose,shape,camera,light,ground,clothing"
HERE = Path(__file__).resolve().parent


def scenes(n: int, seed: int = 0, size: int = 256):
    from simulator.params import ParamSpace, SceneParams

    base = SceneParams().with_values({"camera.width": size, "camera.height": size})
    space = ParamSpace.from_groups(SPACE, base=base)
    return space, space.to_params_batch(space.sample(np.random.default_rng(seed), n))


def blender(samples: int = 16, threads: int = 0):
    from simulator.blender.client import BlenderRenderer
    from simulator.renderer import RenderConfig, Renderer

    return BlenderRenderer(RenderConfig(renderer="blender", blender_samples=samples, blender_threads=threads), Renderer)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / mse) if mse > 0 else float("inf")


def cmd_samples(args) -> dict:
    _, ps = scenes(args.n or 3, seed=1)
    out: dict = {}
    ref = [img.rgb for img in blender(128).render_batch(ps)]
    for spp in (4, 8, 16, 32):
        r = blender(spp)
        r.render(ps[0])  # warm
        t = time.perf_counter()
        imgs = [s.rgb for s in r.render_batch(ps)]
        dt = (time.perf_counter() - t) / len(ps)
        out[spp] = {"s_per_image": round(dt, 2), "psnr_vs_128": round(float(np.mean([psnr(a, b) for a, b in zip(imgs, ref)])), 2)}
        print(spp, out[spp], flush=True)
        r.close()
    return out


def cmd_speed(args) -> dict:
    out: dict = {}
    for size in (256, 512):
        _, ps = scenes(args.n or 6, seed=2, size=size)
        r = blender(args.samples)
        r.render(ps[0])  # warm: kernels, meshes, textures
        pid = r.client.pid
        c0, p0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
        r.render_batch(ps)
        wall = (time.perf_counter() - t0) / len(ps)
        out[size] = {"wall_s": round(wall, 2), "worker_cpu_s": round((cpu_seconds(pid) - c0) / len(ps), 2),
                     "main_cpu_s": round((time.process_time() - p0) / len(ps), 2), "threads": r.client.spec.command[-1]}
        print(size, out[size], flush=True)
        r.close()
    from simulator.pool import RenderPool
    from simulator.renderer import RenderConfig

    _, ps = scenes(2 * (args.n or 6), seed=3)
    with RenderPool(workers=2, config=RenderConfig(renderer="blender", blender_samples=args.samples), chunk=1) as pool:
        pool.render_batch(ps[:2])  # warm both workers
        t0 = time.perf_counter()
        pool.render_batch(ps)
        out["pool2_scenes_per_s"] = round(len(ps) / (time.perf_counter() - t0), 3)
    print("pool", out["pool2_scenes_per_s"], flush=True)
    return out


class Cached:
    """A render function that renders each scene once (the two models share it)."""

    def __init__(self, render):
        self.render, self.cache = render, {}

    def __call__(self, params_list):
        keys = [p.to_json(sort_keys=True) for p in params_list]
        todo = [(k, p) for k, p in zip(keys, params_list) if k not in self.cache]
        if todo:
            for (k, _), s in zip(todo, self.render([p for _, p in todo])):
                self.cache[k] = s
        return [self.cache[k] for k in keys]


def cmd_models(args) -> dict:
    from examiner.evaluate import evaluate
    from simulator.params import ParamSpace, SceneParams
    from simulator.renderer import RenderConfig, get_renderer

    n = args.n or 200
    base = SceneParams().with_values({"camera.width": 256, "camera.height": 256})
    space = ParamSpace.from_groups(SPACE, base=base)
    renders = {"pyrender": Cached(get_renderer(RenderConfig()).render_batch),
               "blender": Cached(blender(args.samples).render_batch)}
    out: dict = {"n": n, "space": SPACE, "samples": args.samples}
    for rname, fn in renders.items():
        t0 = time.perf_counter()
        fn(space.to_params_batch(space.sample(np.random.default_rng(0), n)))  # the scenes evaluate() draws
        out[f"{rname}_render_s"] = round(time.perf_counter() - t0, 1)
        print(rname, "rendered", out[f"{rname}_render_s"], "s", flush=True)
        for model in ("mediapipe", "baseline"):
            s = evaluate(model, n=n, seed=0, space=space, render_fn=fn, batch_size=16)
            m = s["metrics"]
            out[f"{model}/{rname}"] = {
                "pa_mpjpe_mm": m["pa_mpjpe_mm"]["mean"], "mpjpe_mm": m["mpjpe_mm"]["mean"],
                "pck@0.1": m["pck@0.1"]["mean"],
                "no_detection": round(s["failures"]["by_kind"].get("no_detection", 0) / n, 4),
                "failures": s["failures"]["by_kind"],
            }
            print(model, rname, out[f"{model}/{rname}"], flush=True)
    if args.sheets:
        write_sheets([renders["pyrender"].cache[p.to_json(sort_keys=True)] for p in
                      space.to_params_batch(space.sample(np.random.default_rng(0), n))][:args.sheets],
                     [renders["blender"].cache[p.to_json(sort_keys=True)] for p in
                      space.to_params_batch(space.sample(np.random.default_rng(0), n))][:args.sheets])
    return out


def write_sheets(pyr, bl, per_sheet: int = 8) -> list[str]:
    from PIL import Image, ImageDraw

    folder = HERE / "blender_sheets"
    folder.mkdir(exist_ok=True)
    paths = []
    for k in range(0, len(pyr), per_sheet):
        rows = []
        for a, b in zip(pyr[k:k + per_sheet], bl[k:k + per_sheet]):
            rows.append(np.hstack([a.rgb, np.full((a.rgb.shape[0], 4, 3), 255, np.uint8), b.rgb]))
        img = Image.fromarray(np.vstack([np.vstack([r, np.full((4, r.shape[1], 3), 255, np.uint8)]) for r in rows]))
        ImageDraw.Draw(img).text((4, 2), "pyrender", fill=(255, 255, 0))
        ImageDraw.Draw(img).text((pyr[0].rgb.shape[1] + 8, 2), "blender", fill=(255, 255, 0))
        path = folder / f"sheet_{k // per_sheet:02d}.png"
        img.save(path)
        paths.append(str(path))
    return paths


def cmd_sheets(args) -> dict:
    from simulator.renderer import RenderConfig, get_renderer

    _, ps = scenes(args.n or 16, seed=0)
    pyr = get_renderer(RenderConfig()).render_batch(ps)
    bl = blender(args.samples).render_batch(ps)
    return {"sheets": write_sheets(pyr, bl)}


def cmd_install(args) -> dict:
    home = tempfile.mkdtemp(prefix="pe-home-")
    env = {**os.environ, "POSEEXAMINER_HOME": home}
    cli = [sys.executable, "-m", "examiner.cli", "-q", "renderers", "install", "blender"]
    out = {}
    try:
        for label in ("cold", "cached"):
            t0 = time.perf_counter()
            subprocess.run(cli, env=env, check=True)
            out[f"{label}_s"] = round(time.perf_counter() - t0, 1)
            print(label, out[f"{label}_s"], flush=True)
        rec = json.loads((Path(home) / "envs" / "blender" / "poseexaminer-target.json").read_text())
        out["size_mb"] = rec["size_mb"]
    finally:
        subprocess.run(["rm", "-rf", home], check=False)
    return out


def cmd_runs(args) -> dict:
    """Compare two `examiner run` runs of the same seed, budget and space, one per
    renderer, on the search-phase scenes both drew (all of them for --strategy random): failure rates at each run's own
    calibrated threshold and at the pyrender run's, and per-scene agreement."""
    runs = {}
    for label, d in zip(("pyrender", "blender"), args.runs):
        recs = [json.loads(line) for line in (Path(d) / "evaluations.jsonl").read_text().splitlines() if line.strip()]
        meta = json.loads((Path(d) / "meta.json").read_text())
        runs[label] = ({(r["agent"], r["round"], r["i"]): r for r in recs if r["phase"] == "search"},
                       meta["config"]["threshold"])
    (pa, tp), (bl, tb) = runs["pyrender"], runs["blender"]
    # Random search draws the same scenes throughout; a learning strategy (marl) only
    # until its agents first learn from outcomes: keep the scenes both runs drew.
    common = [i for i in sorted(set(pa) & set(bl)) if np.allclose(pa[i]["u"], bl[i]["u"])]
    assert common, "the runs drew no scene in common (different seeds or spaces?)"

    def failed(r, t):
        return r["missed"] or r["model_error"] or r["value"] is None or r["value"] > t

    out = {"n": len(common), "threshold_pyrender": tp, "threshold_blender": tb}
    for label, recs, t in (("pyrender", pa, tp), ("blender", bl, tb)):
        out[f"{label}_failure_rate_own_threshold"] = round(np.mean([failed(recs[i], t) for i in common]), 4)
        out[f"{label}_failure_rate_pyrender_threshold"] = round(np.mean([failed(recs[i], tp) for i in common]), 4)
        out[f"{label}_missed"] = int(sum(bool(recs[i]["missed"]) for i in common))
        vals = [recs[i]["value"] for i in common if recs[i]["value"] is not None and not recs[i]["missed"]]
        out[f"{label}_median_pa_mpjpe_mm"] = round(float(np.median(vals)), 1)
    fp = np.array([failed(pa[i], tp) for i in common])
    fb = np.array([failed(bl[i], tp) for i in common])
    out["both_fail"] = int((fp & fb).sum())
    out["only_pyrender_fails"] = int((fp & ~fb).sum())
    out["only_blender_fails"] = int((~fp & fb).sum())
    out["agreement"] = round(float((fp == fb).mean()), 4)
    return out


def cmd_recheck(args) -> dict:
    """Per run and mode: `--samples` fresh uniform scenes in the mode's box, drawn as
    `examiner.recheck.recheck_modes` draws them (same seed, same scenes), judged with the
    run's threshold and metric under pyrender and under Blender (`--background hdri`: the
    Blender scenes show the environment map instead of the run's background)."""
    from examiner.recheck import evaluate_failures
    from examiner.search.boxes import wilson_interval
    from examiner.search.factory import build_evaluator
    from reports.rundata import load_run

    out = {"per_mode": args.per_mode, "seed": args.seed, "runs": []}
    for root in args.runs:
        run = load_run(root)
        spec = run.meta.get("model_spec", "mediapipe")
        space = run.space
        if args.background:  # e.g. hdri: the Blender side shows the environment map
            from simulator.params import ParamSpace

            hdri_space = ParamSpace(space.dimensions, base=space.base.with_values({"background.kind": args.background}),
                                    clamp=space.clamp)
        rng = np.random.default_rng(np.random.SeedSequence([args.seed, 0xEC4E]))  # recheck_modes' stream
        U = {m["id"]: rng.uniform(np.asarray(m["lo"]), np.asarray(m["hi"]), size=(args.per_mode, run.space.dim))
             for m in run.modes}
        res = {"run": str(root), "model": spec, "threshold": run.threshold, "metric": run.metric,
               "blender_background": args.background or "the run's (held fixed)", "modes": []}
        per = {}
        for label, renderer in (("pyrender", "pyrender"), ("blender", "blender")):
            from examiner.search.sim_evaluator import with_renderer

            own = hdri_space if args.background and renderer == "blender" else space
            ev = build_evaluator(with_renderer(spec, renderer), own, run.threshold, args.seed)
            t0 = time.perf_counter()
            try:
                per[label] = {i: evaluate_failures(ev, u, run.metric, run.threshold) for i, u in U.items()}
            finally:
                getattr(ev, "close", lambda: None)()
            res[f"{label}_seconds"] = round(time.perf_counter() - t0, 1)
        for m in run.modes:
            i = m["id"]
            row = {"mode": i, "verified_in_run": m.get("verified", {}).get("rate"), "n": args.per_mode}
            fails = {}
            for label in ("pyrender", "blender"):
                failed, values = per[label][i]
                fails[label] = failed
                k = int(failed.sum())
                row[label] = {"k": k, "rate": round(k / len(failed), 4),
                              "interval": [round(x, 3) for x in wilson_interval(k, len(failed))],
                              "no_answer": int(np.isnan(values).sum()),
                              "median": (round(float(np.nanmedian(values)), 1) if np.isfinite(values).any() else None)}
            fp, fb = fails["pyrender"], fails["blender"]
            row.update(both_fail=int((fp & fb).sum()), only_pyrender=int((fp & ~fb).sum()),
                       only_blender=int((~fp & fb).sum()), neither=int((~fp & ~fb).sum()),
                       agreement=round(float((fp == fb).mean()), 4))
            res["modes"].append(row)
        out["runs"].append(res)
    return out


def cmd_modes(args) -> dict:
    """Box overlap (vol(A & B) / min vol, `examiner.search.boxes.box_overlap`, the measure
    `examiner diff --overlap` uses) between every pair of modes of two or more runs over
    the same space; `examiner diff` itself refuses runs whose calibrated thresholds
    differ, which two runs of different renderers or seeds always have."""
    from examiner.search.boxes import box_overlap
    from reports.rundata import load_run

    runs = [load_run(r) for r in args.runs]
    out = {"runs": [{"run": str(r.root), "threshold": r.threshold, "modes": len(r.modes),
                     "verified": [m.get("verified", {}).get("rate") for m in r.modes]} for r in runs], "pairs": []}
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            for a in runs[i].modes:
                for b in runs[j].modes:
                    out["pairs"].append({"a": f"{runs[i].root}#{a['id']}", "b": f"{runs[j].root}#{b['id']}",
                                         "overlap": round(box_overlap(np.asarray(a["lo"]), np.asarray(a["hi"]),
                                                                      np.asarray(b["lo"]), np.asarray(b["hi"])), 4)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("samples", "speed", "models", "sheets", "install", "runs", "recheck", "modes"))
    ap.add_argument("runs", nargs="*", help="runs: the pyrender and the blender run directory; recheck: runs")
    ap.add_argument("--seed", type=int, default=0, help="recheck: seed of the fresh scenes")
    ap.add_argument("--per-mode", type=int, default=40, help="recheck: fresh scenes per mode")
    ap.add_argument("--background", default="", help="recheck: background.kind of the Blender scenes (e.g. hdri); "
                    "default: the run's, the same as pyrender's")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--sheets", type=int, default=0, help="models: also write contact sheets of the first N scenes")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args()
    res = {"samples": cmd_samples, "speed": cmd_speed, "models": cmd_models, "sheets": cmd_sheets,
           "install": cmd_install, "runs": cmd_runs, "recheck": cmd_recheck,
           "modes": cmd_modes}[args.what](args)
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
