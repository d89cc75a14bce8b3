"""`examiner finetune`: close the loop once on a finished run.

Builds the fine-tuning set from the run's verified failure modes (+ a share of scenes from
the run's whole space; `generators.finetune`), fine-tunes the model (the bundled baseline
with the built-in trainer `examiner.training.finetune`, any model with a training hook
`--trainer python:pkg.module:train`), exports it, then rechecks: every mode of the run
re-verified on the old and the new model with the same fresh samples
(`examiner.recheck.recheck_modes`), and held-out everyday (in-distribution) error before
and after. OUT/ holds set/ (the dataset), model/ (baseline.onnx, baseline.yaml,
training.json, MODEL_CARD.md) and finetune.json (the numbers).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import typer

from examiner import console
from examiner.training.finetune import FinetuneConfig as _FTConfig
from examiner.training.hooks import BUILTIN, call_hook
from simulator.errors import PoseExaminerError

_FT = _FTConfig()  # the built-in trainer's defaults (the CLI options show them)


def check_mode_scenes(mode_scenes: int | None) -> None:
    """The one-line error for a bad --mode-scenes (None: not given)."""
    if mode_scenes is not None and mode_scenes < 1:
        raise PoseExaminerError(f"--mode-scenes must be at least 1 (scenes per failure mode), got {mode_scenes}")


def check_mode_region(mode_region: str) -> None:
    """One-line error for a bad --mode-region (before any rendering)."""
    from generators.scenes import MODE_REGIONS

    if mode_region not in MODE_REGIONS:
        raise PoseExaminerError(f"--mode-region must be one of {', '.join(MODE_REGIONS)}, got {mode_region!r}")


def mode_scenes_share(run_dir: str | Path, n: int, mode_scenes: int) -> float:
    """The base share that gives each of the run's modes about `mode_scenes` of the set's
    `n` scenes (each mode sample picks a mode uniformly), the rest drawn uniformly from
    the whole space; 0 when the modes ask for all n or more."""
    modes = json.loads((Path(run_dir) / "modes.json").read_text())
    modes = modes["modes"] if isinstance(modes, dict) else modes
    return max(0.0, 1.0 - mode_scenes * len(modes) / n) if modes else 1.0


def build_set(run_dir: str | Path, out: str | Path, n: int, seed: int, base_share: float = 0.2,
              workers: int = 1, on_progress: Callable[[int], None] | None = None,
              mode_scenes: int | None = None, mode_region: str = "box") -> dict:
    """The fine-tuning set of `run_dir` in `out` (resumes a partial one). With
    `mode_scenes`, the base share is whatever gives each mode about that many scenes
    (`mode_scenes_share`), not `base_share`; `mode_region` "need" draws a mode's scenes in
    its need region (the constraints that matter alone; generators.scenes.SceneSource)."""
    from generators.engine import run_dataset
    from generators.finetune import FinetuneConfig as SetConfig

    if mode_scenes:
        base_share = mode_scenes_share(run_dir, n, mode_scenes)

    config = SetConfig(n=n, seed=seed, from_run=str(Path(run_dir).resolve()), base_share=base_share,
                       image_format="png", mode_region=mode_region)
    out = Path(out)
    done = out / "labels.npz"
    if done.is_file() and (out / "manifest.json").is_file() and \
            json.loads((out / "manifest.json").read_text()).get("status") == "complete":
        return {"out": str(out), "resumed": True}
    return run_dataset("finetune", config, out, workers=workers, resume=(out / "manifest.json").exists(),
                       on_progress=on_progress)


def build_uniform_set(run_dir: str | Path, out: str | Path, n: int, seed: int, workers: int = 1) -> dict:
    """The control: n scenes drawn uniformly from the run's whole space (same generator)."""
    return build_set(run_dir, out, n, seed, base_share=1.0, workers=workers)


def mode_table(run_dir: str | Path, before: str, after: str, samples: int, seed: int,
               progress: Callable[[str], None] | None = None, modes_of: str | Path | None = None) -> list[dict]:
    """Every mode of `run_dir`, re-verified on `before` and `after` with the same fresh
    samples (`recheck_modes` with the same seed draws the same samples): k/n failing and
    the median error on each model."""
    from examiner.recheck import recheck_modes
    from reports.rundata import load_run

    run = load_run(run_dir)
    a = recheck_modes(run, before, samples=samples, probe=0, seed=seed, progress=progress)
    b = recheck_modes(run, after, samples=samples, probe=0, seed=seed, progress=progress)
    need = _need_rates(run, before, after, samples, seed, progress)
    rows = []
    for m, sa, sb in zip(run.modes, a.modes, b.modes):
        rows.append({"rank": m["rank"], "id": m["id"], "n": sa.n, "k_before": sa.k, "k_after": sb.k,
                     "rate_before": sa.rate, "rate_after": sb.rate,
                     "median_before": sa.median, "median_after": sb.median,
                     "run_rate": m["verified"]["rate"], "run": str(run_dir), "need": need.get(m["id"])})
    return rows


def _need_rates(run, before: str, after: str, samples: int, seed: int, progress=None) -> dict[int, dict]:
    """Per mode id with a constraint test that found something mattering alone, the same
    recheck in its need region (examiner.search.importance.need_box: the constraints that
    do not matter alone released): whether a fine-tune fixed the condition or only the box
    (benchmarks/RESULTS-finetune.md, "The box or what the failure needs?")."""
    import dataclasses

    from examiner.recheck import recheck_modes
    from examiner.search.importance import need_box, needs

    modes = [m for m in run.modes if needs(m, run.space.names)]
    if not modes:
        return {}
    boxed = [dict(m, lo=lo.tolist(), hi=hi.tolist()) for m in modes for lo, hi in [need_box(m, run.space.names)]]
    need_run = dataclasses.replace(run, modes=boxed)
    a = recheck_modes(need_run, before, samples=samples, probe=0, seed=seed, progress=progress)
    b = recheck_modes(need_run, after, samples=samples, probe=0, seed=seed, progress=progress)
    return {m["id"]: {"n": sa.n, "k_before": sa.k, "k_after": sb.k, "rate_before": sa.rate, "rate_after": sb.rate,
                      "dimensions": [run.space.names[d] for d in needs(m, run.space.names)]}
            for m, sa, sb in zip(modes, a.modes, b.modes)}


def everyday_error(model_spec: str, n: int, seed: int, metric: str = "mpjpe") -> dict:
    """Held-out everyday (in-distribution) error of any model spec: n everyday scenes
    (the baseline's training distribution, a seed disjoint from its training and
    validation seeds), rendered and evaluated like a search evaluation."""
    import numpy as np

    from examiner.recheck import evaluate_failures
    from examiner.search.factory import build_evaluator
    from examiner.training.baseline import everyday_space, sample_everyday

    space = everyday_space()
    U, _ = sample_everyday(space, np.random.default_rng(np.random.SeedSequence([seed, 0xE7E7])), n)
    ev = build_evaluator(model_spec, space, 1e9, seed)
    try:
        _, values = evaluate_failures(ev, U, metric, 1e9)
        _, pa = evaluate_failures(ev, U, "pa_mpjpe", 1e9)
    finally:
        close = getattr(ev, "close", None)
        if callable(close):
            close()
    ok = np.isfinite(values)
    return {"n": int(n), "answered": int(ok.sum()), "mpjpe_mm": float(np.mean(values[ok])) if ok.any() else None,
            "pa_mpjpe_mm": float(np.nanmean(pa)) if np.isfinite(pa).any() else None}


def train_model(trainer: str, model: str, datasets: list[Path], out: Path, config,
                on_progress=None, log=None, extra: dict | None = None) -> tuple[str, dict | None]:
    """(new model spec, the built-in trainer's card or None).

    The evaluator's ``sim.*`` options of `model` (e.g. ``baseline?sim.joints=in_frame``) are
    not the model's: the trainer (built-in or hook) gets the model spec without them, and
    the new model's spec carries them again, so that it is examined and rechecked as the
    old one was."""
    from examiner.search.sim_evaluator import split_evaluator_options, with_sim_options

    target, sim_options = split_evaluator_options(model)
    if not sim_options:
        target = model  # unchanged, to the letter
    if trainer == BUILTIN:
        from examiner.training.finetune import finetune_baseline

        card = finetune_baseline(target, datasets, out, config, on_progress=on_progress, log=log, extra=extra)
        return with_sim_options(card["model_spec"], sim_options), card
    return with_sim_options(call_hook(trainer, datasets[-1], target), sim_options), None


def _progress_bar(total: int, what: str):
    return console.progress(what, total=total)


def run_finetune(run_dir: str | Path, model: str, out: str | Path, *, n: int = 6000, base_share: float = 0.2,
                 samples: int = 40, seed: int = 0, workers: int = 1, trainer: str = BUILTIN, config=None,
                 everyday_n: int = 200, log: Callable[[str], None] = console.info,
                 mode_scenes: int | None = None, mode_region: str = "box") -> dict:
    """The whole of `examiner finetune`; returns (and writes to OUT/finetune.json) the numbers."""
    from examiner.training.finetune import FinetuneConfig

    config = (config or FinetuneConfig(seed=seed)).check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    with _progress_bar(n, "fine-tuning set") as advance:
        build_set(run_dir, out / "set", n, seed, base_share, workers, on_progress=advance, mode_scenes=mode_scenes,
                  mode_region=mode_region)
    set_s = time.perf_counter() - t0
    # examples seen: the set (less its hold-out) plus the everyday share, every epoch
    total_steps = int(config.epochs * n * (1 - config.holdout) / (1 - config.everyday_share)) + 1
    with _progress_bar(total_steps, "fine-tuning") as advance:
        spec, card = train_model(trainer, model, [out / "set"], out / "model", config, on_progress=advance, log=log,
                                 extra={"run": str(run_dir)})
    train_s = time.perf_counter() - t0 - set_s
    log(f"new model: {spec}")
    if card is not None and card["kept_epoch"] == 0:
        log("no epoch improved the held-out part of the set within the everyday limit: the exported weights are "
            "the starting ones (more scenes, --epochs or --lr may help)")
    rows = mode_table(run_dir, model, spec, samples, seed)
    if card is not None:
        every = card["everyday"]
    else:
        every = {"before": everyday_error(model, everyday_n, seed), "after": everyday_error(spec, everyday_n, seed)}
        every["n"] = everyday_n
    result = {
        "schema": "poseexaminer-finetune-result", "schema_version": 1, "run": str(run_dir), "model": model,
        "new_model": spec, "trainer": trainer, "set": str(out / "set"), "mode_region": mode_region,
        "modes": rows, "everyday": every,
        "seconds": {"set": round(set_s, 1), "train": round(train_s, 1), "total": round(time.perf_counter() - t0, 1)},
        "cpu_seconds_main_process": round(time.process_time() - c0, 1),
    }
    if card is not None:  # the before/after numbers go into the model card too
        from examiner.training.finetune import write_card

        card["modes"] = rows
        write_card(out / "model", card)
    tmp = out / ".finetune.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out / "finetune.json")
    return result


def print_result(result: dict) -> None:
    from rich.table import Table

    table = Table("mode", "samples", "failing before", "failing after", "median before", "median after",
                  "need region: before -> after")
    for r in result["modes"]:
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        nd = r.get("need")
        table.add_row(str(r["rank"]), str(r["n"]), f"{r['rate_before']:.0%}", f"{r['rate_after']:.0%}",
                      fmt(r["median_before"]), fmt(r["median_after"]),
                      "-" if not nd else f"{nd['rate_before']:.0%} -> {nd['rate_after']:.0%} of {nd['n']}")
    console.console.print(table)
    e = result["everyday"]
    b, a = e["before"].get("mpjpe_mm"), e["after"].get("mpjpe_mm")
    if b is not None and a is not None:
        console.info(f"held-out everyday MPJPE ({e['n']} scenes): {b:.1f} -> {a:.1f} mm ({100 * (a - b) / b:+.1f}%)")
    console.info(f"new model: {result['new_model']}")


def finetune_command(
    run: Path = typer.Option(..., "--run", help="Finished search run whose failure modes to fine-tune on."),
    model: str = typer.Option("baseline", "--model", help="The model to fine-tune (baseline, or onnx:PATH of an earlier fine-tune)."),
    out: Path = typer.Option(..., "--out", help="New folder: set/, model/, finetune.json."),
    n: int = typer.Option(6000, "--n", help="Scenes in the fine-tuning set (the mode failure rates fall with it: "
                          "benchmarks/RESULTS-finetune.md)."),
    base_share: float = typer.Option(0.2, "--base-share", help="Fraction of the set drawn uniformly from the run's whole space (docs/finetune.md: what the share trades)."),
    mode_scenes: int = typer.Option(None, "--mode-scenes", help="Scenes per failure mode instead of a base share: each mode gets about this many, the rest of --n is drawn uniformly from the whole space (one mode needed about 4800 to be fixed: docs/finetune.md)."),
    mode_region: str = typer.Option("box", "--mode-region", help="Where a mode's scenes are drawn: box (the verified box), need (the box with the constraints that do not matter alone released: what the failure needs, everything else varied) or failures (near every failing scene the run logged)."),
    everyday_share: float = typer.Option(_FT.everyday_share, "--everyday-share", help="Fraction of each epoch drawn from everyday scenes."),
    epochs: int = typer.Option(_FT.epochs, "--epochs", help="Epochs at most (early stopping keeps the best admissible one)."),
    lr: float = typer.Option(_FT.lr, "--lr", help="AdamW learning rate."),
    samples: int = typer.Option(40, "--samples", help="Fresh samples per mode for the recheck."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(1, "--workers", help="Render processes for the set."),
    trainer: str = typer.Option(BUILTIN, "--trainer", help="builtin (the baseline) or a hook python:pkg.module:train."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fine-tune a model on a run's failure modes, export it, recheck the modes."""
    from examiner.training.finetune import FinetuneConfig

    if not (Path(run) / "meta.json").is_file():
        raise PoseExaminerError(f"--run {run} is not a search run (no meta.json); pass the folder of `examiner run --out`")
    if n < 1 or samples < 1:
        raise PoseExaminerError("--n and --samples must be at least 1")
    if not 0.0 <= base_share <= 1.0:
        raise PoseExaminerError(f"--base-share must be in [0, 1], got {base_share}")
    check_mode_scenes(mode_scenes)
    check_mode_region(mode_region)
    config = FinetuneConfig(epochs=epochs, lr=lr, everyday_share=everyday_share, seed=seed).check()
    if trainer != BUILTIN:
        from examiner.training.hooks import load_hook

        load_hook(trainer)  # a bad hook fails before any rendering
    console.check_out_dir(out, overwrite=None)
    with console.removed_if_failed(out):
        result = run_finetune(run, model, out, n=n, base_share=base_share, samples=samples, seed=seed,
                              workers=workers, trainer=trainer, config=config, mode_scenes=mode_scenes,
                              mode_region=mode_region)
    if json_out:
        console.emit_json(result)
    else:
        print_result(result)

