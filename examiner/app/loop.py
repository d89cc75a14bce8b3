"""`examiner loop`: examine, fine-tune, re-examine, for R rounds.

Round k: search model_k for failure modes (round-k/run, a normal run directory), build
the fine-tuning set from them (round-k/set), fine-tune model_k on the pool of every
round's sets so far plus everyday scenes (round-k/model -> model_k+1; the built-in
trainer or a hook), then recheck: round k's modes on model_k and model_k+1 with the same
fresh samples, every earlier round's modes on model_k+1 (do they stay fixed?), and
held-out everyday error. Round k+1's search of model_k+1 is the re-examination: the
modes it finds are the new ones. The failure threshold is decided once, on the starting
model, so that the rounds judge failure alike.

Resumable like `run`: every stage's result is written atomically to OUT/loop.json; after
a kill (even kill -9) the same command continues with the first unfinished stage (a
search resumes from its checkpoint, a set from its complete shards, a fine-tune starts
over: it is seeded). At the end OUT/loop.html tells the story (`reports.loop`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

import typer

from examiner import console
from examiner.training.finetune import FinetuneConfig as _FTConfig
from examiner.training.hooks import BUILTIN
from simulator.errors import PoseExaminerError

_FT = _FTConfig()  # the built-in trainer's defaults (the CLI options show them)

STATE = "loop.json"


class LoopError(PoseExaminerError):
    """A loop option is wrong or the loop folder belongs to another loop."""


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (render / evaluation workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# Recipe options added after a loop folder may have been written, with the default that
# trains exactly as before they existed: a loop saved without them resumes.
_NEUTRAL_RECIPE_OPTIONS = {"mode_weight": 1.0, "everyday_share_end": None, "flip_aug": 0.0}


def with_new_recipe_defaults(finetune: dict | None) -> dict | None:
    """A saved loop's fine-tuning options with the neutral value of every option it predates."""
    if not isinstance(finetune, dict):
        return finetune
    return {**{k: v for k, v in _NEUTRAL_RECIPE_OPTIONS.items() if k not in finetune}, **finetune}


def _recipe_identity(finetune: dict | None) -> dict | None:
    """The fine-tuning options that make a loop what it is: all but `threads`, which (like
    --workers) says how to run, so a loop saved with another thread count resumes (and its
    later rounds train with today's)."""
    if not isinstance(finetune, dict):
        return finetune
    return {k: v for k, v in finetune.items() if k != "threads"}


def _write_state(out: Path, state: dict, name: str = STATE) -> None:
    tmp = out / f".{name}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(state, indent=1))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(out / name)


def _search(model: str, space_groups: str, cfg_kw: dict, threshold: float, run_dir: Path, quiet: bool,
            evaluator=None, threshold_rule: dict | None = None) -> dict:
    """One search into run_dir (resumed when it has evaluations) and its report.
    evaluator: replaces the one built from the model spec (examiner peel's tests).
    threshold_rule: how `threshold` was decided (recorded in the run's meta.json, so its
    report does not call a calibrated threshold "set for this run")."""
    from examiner.search import EvaluatorFactory, SearchConfig, run_search
    from examiner.search.backends import make_evaluator
    from examiner.search.progress import RichProgress
    from examiner.store import RunStore, StoreError
    from simulator.params import ParamSpace

    space = ParamSpace.from_groups(space_groups)
    config = SearchConfig(space=space_groups, threshold=threshold, **cfg_kw).validate()
    resume = (run_dir / "meta.json").is_file()
    if resume:
        try:
            store = RunStore.open(run_dir, repair=True)
            resume = store.n_evaluations > 0 or store.summary() is not None
        except StoreError:
            resume = False
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # killed before its first evaluation: start it again
    if evaluator is None:
        factory = EvaluatorFactory(model, space.to_dict(), config.failure_threshold, config.seed, config.metric)
        evaluator = make_evaluator(factory, config.backend, config.workers)
    with RichProgress(config.budget, disable=quiet) as show:
        result = run_search(config, evaluator, space, run_dir, resume=resume, progress=show, model_spec=model,
                            threshold_rule=threshold_rule)
    from reports import write_report
    from reports.report import load_results
    from simulator.errors import PoseExaminerError

    report, words = None, {}
    try:  # the round's run report (gallery, words, whole-run views); the loop goes on without one
        paths = write_report(run_dir, seed=config.seed)
        report = str(paths.html)
        words = {int(m["id"]): m.get("description") for m in load_results(paths.results)["modes"]}
    except (PoseExaminerError, OSError) as e:
        console.info(f"no report for {run_dir}: {e}")
    return {"run": str(run_dir), "report": report, "evaluations": result.evaluations, "failures": result.failures,
            "modes": [{"id": m["id"], "rank": m.get("rank"), "rate": m["verified"]["rate"],
                       "constrained": m.get("constrained"), "description": words.get(int(m["id"]))}
                      for m in result.modes],
            "search_failure_rate": result.search_failure_rate}


def _rates_on(run_dir: str, spec: str, samples: int, seed: int) -> list[dict]:
    from examiner.recheck import recheck_modes
    from reports.rundata import load_run

    run = load_run(run_dir)
    res = recheck_modes(run, spec, samples=samples, probe=0, seed=seed)
    return [{"rank": m["rank"], "id": s.id, "n": s.n, "k": s.k, "rate": s.rate, "median": s.median,
             "excluded": s.excluded}
            for m, s in zip(run.modes, res.modes)]


def _need_rates_on(run_dir: str, before: str, after: str, samples: int, seed: int) -> list[dict]:
    """Each mode with a need (a constraint that matters alone) rechecked in its need region
    on both models (examiner.app.finetune._need_rates), as a list with the mode's id."""
    from examiner.app.finetune import _need_rates
    from reports.rundata import load_run

    return [{"id": i, **row} for i, row in _need_rates(load_run(run_dir), before, after, samples, seed).items()]


def _counted_all_samples(recheck: dict) -> bool:
    """Whether a saved recheck predates fair counting (662d0c4): its rows have no
    "excluded", and their rates divided by every sample, unscored ones included."""
    rows = [*recheck.get("before", []), *recheck.get("after", []),
            *(x for rs in (recheck.get("earlier_rounds_after") or {}).values() for x in rs)]
    return any("excluded" not in x for x in rows)


def decided_rule(rule: dict | None, by: str) -> dict | None:
    """The threshold rule a loop or peel decided once, for each of its runs' meta.json,
    saying so (`decided`); None when the threshold was given."""
    return {**rule, "decided": by} if isinstance(rule, dict) else None


def _calibrate(model: str, space_groups: str, cfg_kw: dict) -> tuple[float, dict | None]:
    from examiner.search import EvaluatorFactory, SearchConfig
    from examiner.search.reference import resolve_threshold
    from simulator.params import ParamSpace

    space = ParamSpace.from_groups(space_groups)
    config = SearchConfig(space=space_groups, **cfg_kw).validate()
    probe = EvaluatorFactory(model, space.to_dict(), config.failure_threshold, config.seed, config.metric)()
    try:
        config, rule = resolve_threshold(config, model, space, probe)
    finally:
        close = getattr(probe, "close", None)
        if callable(close):
            close()
    return float(config.failure_threshold), rule


def run_loop(out: str | Path, *, model: str = "baseline", rounds: int = 2, space: str = "pose,camera,occluder",
             budget: int = 1500, agents: int = 4, strategy: str = "marl", n: int = 6000, base_share: float = 0.2,
             samples: int = 40, seed: int = 0, workers: int = 2, trainer: str = BUILTIN, finetune: dict | None = None,
             threshold: float | None = None, everyday_n: int = 200, quiet: bool = False,
             log=console.info, mode_scenes: int | None = None, mode_region: str = "box") -> dict:
    """Run (or continue) the loop in `out`; returns the state (also OUT/loop.json)."""
    from examiner.app.finetune import build_set, everyday_error, mode_scenes_share, train_model
    from examiner.training.finetune import FinetuneConfig

    out = Path(out)
    ft_config = FinetuneConfig(seed=seed, **(finetune or {})).check()
    config = {"model": model, "rounds": rounds, "space": space, "budget": budget, "agents": agents,
              "strategy": strategy, "n": n, "base_share": base_share, "samples": samples, "seed": seed,
              "trainer": trainer, "finetune": dataclasses.asdict(ft_config), "threshold": threshold,
              "everyday_n": everyday_n, "mode_scenes": mode_scenes, "mode_region": mode_region}
    cfg_kw = {"strategy": strategy, "budget": budget, "agents": agents, "seed": seed, "workers": workers,
              "metric": "pa_mpjpe"}
    if (out / STATE).is_file():
        state = json.loads((out / STATE).read_text())
        old = {k: v for k, v in state["config"].items() if k != "rounds"}
        old.setdefault("mode_scenes", None)  # loops saved before --mode-scenes
        old.setdefault("mode_region", "box")  # ... and before --mode-region
        old["finetune"] = _recipe_identity(with_new_recipe_defaults(old.get("finetune")))
        new = {k: v for k, v in config.items() if k != "rounds"}
        new["finetune"] = _recipe_identity(new["finetune"])
        if old != new:
            diff = sorted(k for k in new if old.get(k) != new.get(k))
            raise LoopError(f"{out} holds a loop with other options ({', '.join(diff)}); resume it with the same "
                            "options or choose another --out")
        state["config"]["rounds"] = rounds  # more rounds may be asked for on resume
        log(f"resuming the loop in {out}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        state = {"schema": "poseexaminer-loop", "schema_version": 1, "config": config, "rounds": [],
                 "status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_state(out, state)

    def save() -> None:
        _write_state(out, state)

    if "threshold" not in state:
        if threshold is None:
            log("calibrating the failure threshold on the starting model ...")
            state["threshold"], state["threshold_rule"] = _calibrate(model, space, cfg_kw)
        else:
            state["threshold"], state["threshold_rule"] = float(threshold), None
        save()
    thr = state["threshold"]
    rule = decided_rule(state.get("threshold_rule"), "decided once by examiner loop on the starting model, "
                        "before round 1")
    current = model if not state["rounds"] else state["rounds"][-1].get("model_after", model)
    for k in range(1, rounds + 1):
        if len(state["rounds"]) < k:
            state["rounds"].append({"round": k, "model_before": current, "cpu": {}, "wall": {}})
            save()
        r = state["rounds"][k - 1]
        rdir = out / f"round-{k}"
        rdir.mkdir(exist_ok=True)
        current = r["model_before"]
        if r.get("stopped"):
            break

        def timed(stage: str, fn):
            t, c = time.perf_counter(), cpu_seconds()
            value = fn()
            r["wall"][stage] = round(time.perf_counter() - t, 1)
            r["cpu"][stage] = round(cpu_seconds() - c, 1)
            return value

        if "examine" not in r:
            log(f"round {k}: examining {current}")
            r["examine"] = timed("examine", lambda: _search(current, space, cfg_kw, thr, rdir / "run", quiet,
                                                            threshold_rule=rule))
            save()
        if not r["examine"]["modes"]:
            r["stopped"] = "the search found no failure mode; nothing to fine-tune on"
            save()
            log(f"round {k}: no failure modes found; the loop stops")
            break
        if "set" not in r:
            share = mode_scenes_share(rdir / "run", n, mode_scenes) if mode_scenes else base_share
            log(f"round {k}: building the fine-tuning set ({n} scenes, {1 - share:.0%} of them in the modes)")
            r["base_share"] = share
            timed("set", lambda: build_set(rdir / "run", rdir / "set", n, seed + 1000 * k, share, workers,
                                           mode_region=mode_region))
            r["set"] = str(rdir / "set")
            save()
        if "model_after" not in r:
            pool = [Path(x["set"]) for x in state["rounds"][:k] if x.get("set")]
            log(f"round {k}: fine-tuning {current} on {len(pool)} set(s)")
            if (rdir / "model").exists():
                shutil.rmtree(rdir / "model")  # a fine-tune killed midway starts over (it is seeded)
            spec, card = timed("finetune", lambda: train_model(trainer, current, pool, rdir / "model", ft_config,
                                                               log=log, extra={"run": str(rdir / "run"), "round": k}))
            r["model_after"] = spec
            r["everyday"] = card["everyday"] if card else None
            r["kept_epoch"] = card["kept_epoch"] if card else None
            save()
        after = r["model_after"]
        if "recheck" in r and _counted_all_samples(r["recheck"]):
            log(f"round {k}: recounting the recheck over fair samples only (saved by a version that counted "
                "unscored samples as passes)")
            del r["recheck"]
        if "recheck" not in r:
            log(f"round {k}: rechecking {len(r['examine']['modes'])} mode(s) before and after")

            def recheck():
                before = _rates_on(str(rdir / "run"), current, samples, seed)
                aft = _rates_on(str(rdir / "run"), after, samples, seed)
                earlier = {}
                for j in range(1, k):
                    prev = state["rounds"][j - 1]
                    if prev.get("examine", {}).get("modes"):
                        earlier[str(j)] = _rates_on(prev["examine"]["run"], after, samples, seed)
                return {"before": before, "after": aft, "earlier_rounds_after": earlier,
                        "need": _need_rates_on(str(rdir / "run"), current, after, samples, seed)}

            r["recheck"] = timed("recheck", recheck)
            save()
        if r.get("everyday") is None and everyday_n > 0:
            r["everyday"] = timed("everyday", lambda: {"n": everyday_n,
                                                       "before": everyday_error(current, everyday_n, seed),
                                                       "after": everyday_error(after, everyday_n, seed)})
            save()
        current = after
    state["status"] = "complete"
    state["final_model"] = current
    save()
    return state


def write_loop_report(out: str | Path) -> Path:
    from reports.loop import write_loop_html

    out = Path(out)
    state = json.loads((out / STATE).read_text())
    return write_loop_html(state, out / "loop.html")


def loop_command(
    model: str = typer.Option("baseline", "--model", help="The model to improve (baseline with the built-in trainer)."),
    rounds: int = typer.Option(2, "--rounds", help="Rounds of examine, fine-tune, re-examine."),
    out: Path = typer.Option(..., "--out", help="Loop folder (an existing loop there is resumed)."),
    space: str = typer.Option("pose,camera,occluder", "--space", help="Parameter groups to search; name=LOW:HIGH narrows one."),
    budget: int = typer.Option(1500, "--budget", help="Search evaluations per round."),
    agents: int = typer.Option(4, "--agents"),
    strategy: str = typer.Option("marl", "--strategy"),
    n: int = typer.Option(6000, "--n", help="Scenes per round's fine-tuning set (the mode failure rates fall "
                                   "with it: benchmarks/RESULTS-finetune.md)."),
    base_share: float = typer.Option(
        0.2, "--base-share", help="Fraction of each set drawn uniformly from the whole space (0.2 puts most scenes "
        "into the modes; a larger share with a larger --n keeps accuracy off the modes: docs/finetune.md)."),
    mode_scenes: int = typer.Option(
        None, "--mode-scenes", help="Scenes per failure mode in each set instead of a base share: each mode gets "
        "about this many, the rest of --n is drawn uniformly from the whole space (one mode needed about 4800 to "
        "be fixed: docs/finetune.md)."),
    mode_region: str = typer.Option(
        "box", "--mode-region", help="Where a mode's scenes are drawn: box, need (the box with the constraints "
        "that do not matter alone released: what the failure needs, everything else varied), or failures (near every "
        "failing scene the round's search logged)."),
    samples: int = typer.Option(40, "--samples", help="Fresh samples per mode for the rechecks."),
    epochs: int = typer.Option(_FT.epochs, "--epochs"),
    lr: float = typer.Option(_FT.lr, "--lr"),
    everyday_share: float = typer.Option(_FT.everyday_share, "--everyday-share"),
    threshold: float = typer.Option(None, "--threshold", help="Failure threshold (default: calibrated on the starting model)."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers"),
    trainer: str = typer.Option(BUILTIN, "--trainer", help="builtin or a training hook python:pkg.module:train."),
    everyday_n: int = typer.Option(200, "--everyday-n", help="Everyday scenes for the in-distribution error of a "
                                   "hook's model (0: skip; the built-in trainer measures its own)."),
    joints: str = typer.Option("all", "--joints", help="Joints the metric counts in every search and recheck: all, "
                               "in_frame (inside the image) or visible (inside it and not hidden); stored in the "
                               "model spec as sim.joints and carried to every fine-tuned model."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display."),
    json_out: bool = typer.Option(False, "--json", help="Print the loop state as JSON."),
) -> None:
    """Examine, fine-tune, re-examine for R rounds; resumable; writes OUT/loop.html."""
    if everyday_n < 0:
        raise LoopError(f"--everyday-n must be 0 (skip) or more, got {everyday_n}")
    if rounds < 1 or budget < 1 or n < 1 or samples < 1:
        raise LoopError("--rounds, --budget, --n and --samples must be at least 1")
    if not 0.0 <= base_share <= 1.0:
        raise LoopError(f"--base-share must be in [0, 1], got {base_share}")
    from examiner.app.finetune import check_mode_region, check_mode_scenes

    check_mode_scenes(mode_scenes)
    check_mode_region(mode_region)
    if trainer != BUILTIN:
        from examiner.training.hooks import load_hook

        load_hook(trainer)
    if joints != "all":
        from examiner.scoring import SEEN_JOINTS
        from examiner.search.sim_evaluator import with_sim_option

        if joints not in SEEN_JOINTS:
            raise LoopError(f"--joints must be all, {' or '.join(SEEN_JOINTS)}; got {joints!r}")
        model = with_sim_option(model, "joints", joints, "--joints")
    if out.exists() and not (out / STATE).is_file() and any(out.iterdir()):
        raise LoopError(f"{out} is not empty and holds no loop; choose an empty or new --out")
    state = run_loop(out, model=model, rounds=rounds, space=space, budget=budget, agents=agents, strategy=strategy,
                     n=n, base_share=base_share, samples=samples, seed=seed, workers=workers, trainer=trainer,
                     finetune={"epochs": epochs, "lr": lr, "everyday_share": everyday_share}, threshold=threshold,
                     everyday_n=everyday_n, quiet=quiet or console._state["quiet"], mode_scenes=mode_scenes,
                     mode_region=mode_region)
    html = write_loop_report(out)
    if json_out:
        console.emit_json(state)
    else:
        console.info(f"{len(state['rounds'])} round(s); final model {state['final_model']}; open {html}")


app = typer.Typer(add_completion=False, no_args_is_help=True, help="PoseExaminer fine-tuning loop.")
app.command("loop")(loop_command)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m examiner.app.loop --out DIR ...`; the kill -9 resume test)."""
    return console.run_app(app, argv)


if __name__ == "__main__":
    sys.exit(main())
