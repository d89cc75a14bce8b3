"""`examiner peel`: a model's failures one after another.

A search finds the strongest failure of a space many times over: MediaPipe's four
seed-0 modes in the default space all need the truncation (benchmarks/RESULTS-world.md).
Peeling asks what else fails. Stage 1 examines the space; each mode's constraints are
tested alone after the search (`region.importance`), and the failures that need one
constraint alone are cut away (`reports.report.rest_of_space`: truncation 0.19 to 0.35
leaves the space with truncation 0 to 0.19). Stage 2 examines what is left, and so on.
Each stage also cuts its confirmed failure factors (a condition on one dimension, tested
on fresh samples against the stage's uniform scenes: elevation 38° to 50° leaves -10° to
38°), so a failure whose rate rises gradually, with no box at the 80% standard or only
boxes needing several constraints together, is cut too. The peel ends when nothing can be
cut, or at --stages.

Every stage is a normal run folder (OUT/stage-K) with its own report; the failure
threshold is decided once, before stage 1, so that every stage judges failure alike.
Resumable like `loop`: OUT/peel.json is written atomically after each stage; the same
command continues with the first unfinished stage (its search resumes from its
checkpoint), and a larger --stages goes on from where a finished peel stopped.
OUT/peel.html lists the stages (`reports.peel`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import typer

from examiner import console
from simulator.errors import PoseExaminerError

STATE = "peel.json"
MAX_STAGES = 10
# Fresh samples per failure factor in every stage (the reference draws twice as many):
# more than a run's 80, because after stage 1 the failures are weaker. A factor that
# raises a 20% rate to 30% is confirmed (4 candidates, Holm) about 27% of the time with 80,
# 67% with 200 (simulated; docs/search.md). MediaPipe's seed-0 stage 2 (truncation cut to
# 0.14) had two such candidates at 80 (1.5x each, adjusted p 0.24) and the peel ended.
FACTOR_SAMPLES = 200
# What a peel started before --factor-samples existed ran with (a run's default then).
_OLD_FACTOR_SAMPLES = 80
# Which slices may be failure-factor candidates: only those a peel can cut (the ends of a
# continuous dimension, every choice; RegionConfig.factor_slices). MediaPipe's seed-0
# stage 3 spent 3 of its 4 candidates on inner slices of pose latents (pose.z06 and z08
# around 0, z11 -0.83σ to -0.25σ), which no stage can cut. A peel started before this
# resumes with "any", what its stages used.
FACTOR_SLICES = "ends"
_OLD_FACTOR_SLICES = "any"
_OLD = {"factor_samples": _OLD_FACTOR_SAMPLES, "factor_slices": _OLD_FACTOR_SLICES}


class PeelError(PoseExaminerError):
    """A peel option is wrong or the folder belongs to another peel."""


def _stage_record(k: int, spec: str, examined: dict) -> dict:
    """What peel.json keeps of a stage: the run's modes with their confirmed rates and
    words, the uniform failure rate after the search, what the failures need and the rest
    of the space."""
    results = Path(examined["run"]) / "results.json"
    data = json.loads(results.read_text()) if results.is_file() else {}
    reference = (data.get("factors") or {}).get("reference")
    modes = [{"rank": m["rank"], "description": m.get("description"),
              "rate": (m.get("confirmed") or m.get("verified") or {}).get("rate"),
              "n": (m.get("confirmed") or m.get("verified") or {}).get("n"),
              "volume_fraction": m.get("volume_fraction")} for m in data.get("modes", [])]
    needs = data.get("needs") or {}
    factors = [{"label": f.get("label"), "dimension": f.get("dimension"), "rate": (f.get("fresh") or {}).get("rate"),
                "n": (f.get("fresh") or {}).get("n"), "ratio": f.get("rate_ratio"), "p_adjusted": f.get("p_adjusted"),
                "confirmed": bool(f.get("confirmed")),
                "reaches": (f.get("extended") or {}).get("label") if (f.get("extended") or {}).get("steps") else None,
                "words": f.get("words") or (f"the poses: {f['pose']}" if f.get("pose") else None)}
               for f in (data.get("factors") or {}).get("factors") or []]
    rest = None
    if results.is_file():
        # What the modes need alone and the confirmed failure factors (conditions on one
        # dimension, tested on fresh samples), cut together (`reports.report.rest_of_space`).
        from examiner.search.importance import group_by_need
        from reports.report import rest_of_space
        from reports.rundata import load_run

        run = load_run(examined["run"])
        tested = [m for m in run.modes if (m.get("importance") or {}).get("constraints")]
        rest = rest_of_space(run, group_by_need(tested, run.space.names) if tested else [],
                             (data.get("factors") or {}).get("factors") or [])
    return {"stage": k, "space": spec, "run": examined["run"], "report": examined.get("report"), "factors": factors,
            "evaluations": examined["evaluations"], "failures": examined["failures"],
            "uniform": None if not reference else {x: reference.get(x) for x in ("n", "k", "rate", "interval")},
            "modes": modes, "needs": {"failures": needs.get("failures") or [],
                                      "nothing_alone": needs.get("nothing_alone") or []},
            "rest": rest}


def _load_state(out: Path) -> dict:
    """OUT/peel.json, checked enough to resume from (JSON only: nothing in it is run)."""
    try:
        state = json.loads((out / STATE).read_text())
        ok = (isinstance(state, dict) and isinstance(state.get("config"), dict)
              and isinstance(state.get("stages"), list) and isinstance(state.get("threshold"), (int, float))
              and all(isinstance(s, dict) and {"stage", "space", "modes", "rest", "needs"} <= set(s)
                      for s in state["stages"]))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        ok = False
    if not ok:
        raise PeelError(f"{out / STATE} is damaged (not the state `examiner peel` writes); choose another --out, or "
                        "remove the folder to start that peel over")
    return state


def _ended(stage: dict) -> str | None:
    """Why the peel stops after this stage (None: it goes on)."""
    if stage["rest"]:
        return None
    if not stage["modes"]:
        return ("no failure mode in this space and no confirmed failure factor at the end of a dimension: what "
                "still fails has no condition in common that a box holds")
    return ("nothing left to cut: the failures here need several constraints together, a range inside a "
            "dimension, or nothing alone, and no confirmed failure factor can be cut instead")


def run_peel(out: str | Path, *, model: str, space: str = "pose,shape,camera", stages: int = 3, budget: int = 3000,
             agents: int = 8, strategy: str = "marl", seed: int = 0, metric: str = "pa_mpjpe",
             threshold: float | None = None, workers: int | None = None, quiet: bool = False,
             log: Callable[[str], None] = console.info, evaluator_for: Callable[[str], Any] | None = None,
             factor_samples: int | None = None) -> dict:
    """Run (or continue) the peel in `out`; returns the state (also OUT/peel.json).
    evaluator_for(space_spec) -> evaluator replaces the model's own (tests).
    factor_samples: fresh samples per failure factor in every stage (None: FACTOR_SAMPLES,
    or what the peel being resumed used)."""
    from examiner.app.loop import _calibrate, _search, _write_state, decided_rule
    from examiner.search import SearchConfig
    from examiner.search.config import RegionConfig
    from simulator.params import ParamSpace

    if not 1 <= stages <= MAX_STAGES:
        raise PeelError(f"--stages must be 1 to {MAX_STAGES}, got {stages}")
    if factor_samples is not None and not (isinstance(factor_samples, int) and factor_samples >= 20):
        raise PeelError(f"--factor-samples must be at least 20, got {factor_samples}")
    if model.startswith("analytic:") and evaluator_for is None:
        raise PeelError(f"{model} is defined on the normalised space, which each stage narrows, so it would be "
                        "another target in every stage; peel a model that sees rendered scenes")
    ParamSpace.from_groups(space)  # a bad --space fails before the folder is written
    out = Path(out)
    resuming = (out / STATE).is_file()
    state = _load_state(out) if resuming else None
    if factor_samples is None:
        factor_samples = (state["config"].get("factor_samples", _OLD_FACTOR_SAMPLES) if state else FACTOR_SAMPLES)
    factor_slices = state["config"].get("factor_slices", _OLD_FACTOR_SLICES) if state else FACTOR_SLICES
    config = {"model": model, "space": space, "budget": budget, "agents": agents, "strategy": strategy,
              "seed": seed, "metric": metric, "threshold": threshold, "factor_samples": factor_samples,
              "factor_slices": factor_slices}
    cfg_kw = {"strategy": strategy, "budget": budget, "agents": agents, "seed": seed, "metric": metric,
              "region": RegionConfig(factor_samples=factor_samples, factor_slices=factor_slices),
              **({"workers": workers} if workers else {})}
    if state is not None:
        old = {**_OLD, **state["config"]}
        if {k: old.get(k) for k in config} != config:
            diff = sorted(k for k in config if old.get(k) != config[k])
            raise PeelError(f"{out} holds a peel with other options ({', '.join(diff)}); resume it with the same "
                            "options or choose another --out")
        log(f"resuming the peel in {out}")
    else:
        if out.exists() and any(out.iterdir()):
            raise PeelError(f"{out} is not empty and holds no peel; choose an empty or new --out")
        SearchConfig(space=space, threshold=threshold, **cfg_kw).validate()
        # The threshold is decided before the folder is written: a bad model spec or metric
        # fails here and leaves nothing that blocks the corrected retry.
        if threshold is not None or evaluator_for is not None:
            decided, rule = float(90.0 if threshold is None else threshold), None
        else:
            log("calibrating the failure threshold on easy reference scenes ...")
            decided, rule = _calibrate(model, space, cfg_kw)
        out.mkdir(parents=True, exist_ok=True)
        state = {"schema": "poseexaminer-peel", "schema_version": 1, "config": config, "stages": [],
                 "threshold": decided, "threshold_rule": rule, "status": "running",
                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_state(out, state, STATE)
    state["stages_asked"] = stages

    def save() -> None:
        _write_state(out, state, STATE)

    while len(state["stages"]) < stages:
        last = state["stages"][-1] if state["stages"] else None
        if last is not None and _ended(last):
            break
        k = len(state["stages"]) + 1
        spec = last["rest"]["space"] if last else space
        log(f"stage {k}: examining {model} on {spec}")
        ev = evaluator_for(spec) if evaluator_for else None
        rule = decided_rule(state.get("threshold_rule"), f"decided once by examiner peel before stage 1, on {space}")
        examined = _search(model, spec, cfg_kw, state["threshold"], out / f"stage-{k}", quiet, evaluator=ev,
                           threshold_rule=rule)
        state["stages"].append(_stage_record(k, spec, examined))
        save()
    last = state["stages"][-1]
    state["ended"] = _ended(last) or f"--stages {stages} reached; a larger --stages goes on from here"
    state["status"] = "complete"
    from reports.peel import findings

    state["findings"] = findings(state)  # what peel.html leads with, for machines (derived, not resumed from)
    save()
    return state


def stage_lines(state: dict) -> list[str]:
    """One paragraph per stage for the terminal."""
    from reports.peel import need_words

    lines = []
    for s in state["stages"]:
        u = s.get("uniform")
        share = f"{u['rate']:.0%} of {u['n']} uniform scenes fail" if u and u.get("rate") is not None else \
            "uniform failure rate not measured"
        lines.append(f"stage {s['stage']} ({s['space']}): {share}; {len(s['modes'])} mode(s)")
        for f in s["needs"]["failures"]:
            what = " and ".join(f"{d['dimension']} {d['box']}{need_words(d)}" for d in f["dimensions"])
            rates = ", ".join(f"{m['rate']:.0%}" for m in s["modes"] if m["rank"] in f["modes"] and m["rate"] is not None)
            lines.append(f"  needs {what}: mode(s) {', '.join(map(str, f['modes']))}" + (f", failing {rates}" if rates else ""))
        if s["needs"]["nothing_alone"]:
            lines.append(f"  no single constraint alone: mode(s) {', '.join(map(str, s['needs']['nothing_alone']))}")
        if not s["modes"] and s.get("factors"):
            from reports.peel import factor_text

            lines.append("  fails more often (failure factors): " + factor_text(s["factors"]))
        if (s.get("rest") or {}).get("factors"):
            words = {}  # a cut factor's words, by its label or its reach
            for f in s.get("factors") or []:
                if f.get("words"):
                    words[f.get("label")] = words[f.get("reaches") or f.get("label")] = f["words"]
            named = [f"{label} ({words[label]})" if label in words else label for label in s["rest"]["factors"]]
            lines.append(f"  cut with the confirmed failure factor{'s' if len(named) > 1 else ''} "
                         f"{'; '.join(named)}: {', '.join(s['rest']['entries'])}")
    lines.append(f"ended: {state.get('ended')}")
    from reports.peel import findings

    found = findings(state)
    dims = list(dict.fromkeys(f["dimensions"][0] for f in found if len(f["dimensions"]) == 1))
    several = sum(len(f["dimensions"]) > 1 for f in found)
    if found:
        lines.append(f"found: conditions on {len(dims)} dimension(s) alone ({', '.join(dims)})"
                     + (f", {several} failure(s) needing several constraints together" if several else ""))
    return lines


def peel_command(
    model: str = typer.Option(..., "--model", help="Target spec, e.g. mediapipe."),
    out: Path = typer.Option(..., "--out", help="Peel folder (an existing peel there is resumed)."),
    space: str = typer.Option("pose,shape,camera", "--space", help="The space of stage 1; name=LOW:HIGH narrows a "
                              "dimension."),
    stages: int = typer.Option(3, "--stages", help="At most this many stages (each a full search)."),
    factor_samples: int = typer.Option(None, "--factor-samples", help=f"Fresh samples per failure factor in "
                                       f"every stage (default {FACTOR_SAMPLES}; a run's default is 80)."),
    budget: int = typer.Option(3000, "--budget", help="Evaluations per stage."),
    agents: int = typer.Option(8, "--agents"),
    strategy: str = typer.Option("marl", "--strategy"),
    seed: int = typer.Option(0, "--seed"),
    metric: str = typer.Option("pa_mpjpe", "--metric", help="Failure metric (e.g. pa_mpjpe_scaled)."),
    threshold: float = typer.Option(None, "--threshold", help="Failure threshold (default: the relative rule, "
                                    "calibrated once before stage 1)."),
    workers: int = typer.Option(None, "--workers", help="Parallel evaluation workers."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display."),
    json_out: bool = typer.Option(False, "--json", help="Print the peel state as JSON."),
) -> None:
    """Examine, cut away what the failures need, examine the rest; resumable; writes OUT/peel.html."""
    from reports.peel import write_peel_html

    if budget < 1:
        raise PeelError(f"--budget must be at least 1, got {budget}")
    state = run_peel(out, model=model, space=space, stages=stages, budget=budget, agents=agents, strategy=strategy,
                     seed=seed, metric=metric, threshold=threshold, workers=workers,
                     quiet=quiet or console._state["quiet"], factor_samples=factor_samples)
    html = write_peel_html(state, out / "peel.html")
    if json_out:
        console.emit_json(state)
        return
    for line in stage_lines(state):
        console.info(line)
    console.info(f"open {html}")
