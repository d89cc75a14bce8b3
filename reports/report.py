"""`write_report`: report.html (one self-contained file), results.json, optional JUnit and
gating, for one run directory.

report.html has no script and no external reference: images are data: URIs, charts are
inline SVG, styles are inline, and a Content-Security-Policy forbids anything else, so it
opens offline from file:// and makes no network request.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from examiner.search.reference import children_metric_note
from examiner.store import dumps
from reports import views
from reports.errors import ReportError
from reports.gating import GateResult, evaluate_rules, failure_line, parse_rules, report_quantities
from reports.junit import junit_xml, write_junit
from reports.rundata import RunData, incomplete_reason, load_run, min_failure_rate, run_stats
from simulator.errors import PoseExaminerError

RESULTS_SCHEMA = "poseexaminer-results"
RESULTS_SCHEMA_VERSION = 1
TEMPLATE = "report.html.j2"


@dataclass
class ReportPaths:
    """What `write_report` wrote, and the gating outcome.

    html / results / junit: paths (junit None unless asked); gates: every rule evaluated;
    gate_failure: one line naming the tripped rules, or None; seconds: time taken."""

    html: Path
    results: Path
    junit: Path | None = None
    gates: list[GateResult] = field(default_factory=list)
    gate_failure: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "html": str(self.html), "results": str(self.results), "junit": None if self.junit is None else str(self.junit),
            "gates": [{"rule": g.rule.text, "value": g.value, "tripped": g.tripped} for g in self.gates],
            "gate_failure": self.gate_failure,
        }


# ---------------------------------------------------------------------------------------
# Failure modes: region bars, descriptions, gallery
# ---------------------------------------------------------------------------------------

def _region_rows(run: RunData, mode: dict, importance: dict | None = None,
                 seed: int | None = None) -> tuple[list[dict], int]:
    """The constrained dimensions as bars: ranked by the constraint test where the mode has
    one (what matters first), else narrowest first; and the number of free dimensions. With
    a seed, a pose dimension's bar says what it does to the body (`pose`: the joint angles
    the box changes most against outside it, examiner.search.importance.pose_change)."""
    tested = {r["dimension"]: (i, r) for i, r in enumerate((importance or {}).get("constraints") or [])}
    rows = []
    free = 0
    for i, dim in enumerate(run.space.dimensions):
        lo, hi = float(mode["lo"][i]), float(mode["hi"][i])
        if lo <= -1.0 + 1e-9 and hi >= 1.0 - 1e-9:
            free += 1
            continue
        rows.append({
            "name": dim.name,
            "left": 100.0 * (lo + 1.0) / 2.0,
            "width": max(100.0 * (hi - lo) / 2.0, 0.6),
            "fraction": (hi - lo) / 2.0,
            "box": views.box_text(dim, lo, hi),
            "full": views.full_range_text(dim),
            "description": dim.description,
            "outside": tested.get(dim.name, (None, None))[1],
            "pose": _bar_pose_text(run, mode, i, seed, tested.get(dim.name, (None, None))[1]),
        })
    rows.sort(key=lambda r: (tested[r["name"]][0], 0.0) if r["name"] in tested else (len(tested), r["fraction"]))
    return rows, free


def _bar_pose_text(run: RunData, mode: dict, d: int, seed: int | None, tested_row: dict | None) -> str:
    """A pose dimension's bar line: the constraint test view's `pose_change` when it has
    one (computed there already), else computed here; '' without a seed."""
    from examiner.search.importance import pose_change, pose_change_text

    if seed is None:
        return ""
    change = (tested_row or {}).get("pose_change")
    if change is None:
        change = pose_change(run.space, np.asarray(mode["lo"]), np.asarray(mode["hi"]), d, seed, int(mode["id"]))
    return pose_change_text(change)


_DESCRIPTION_CACHE: dict[tuple, Any] = {}


def _describe_modes(run: RunData, seed: int) -> dict[Any, Any]:
    """Region descriptions per mode id (posecodes), memoised per process (they are
    deterministic given the space, the box and the seed); {"error": reason} when the body
    model is unusable."""
    from reports.posecodes import code_frequencies, region_description

    space_key = json.dumps(run.meta["space"], sort_keys=True)
    try:
        base_key = (space_key, seed, "baseline")
        if base_key not in _DESCRIPTION_CACHE:
            rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E5C]))
            _DESCRIPTION_CACHE[base_key] = code_frequencies(run.space, run.space.sample(rng, 128))[0]
        baseline = _DESCRIPTION_CACHE[base_key]
        out = {}
        for m in run.modes:
            key = (space_key, seed, tuple(m["lo"]), tuple(m["hi"]))
            if key not in _DESCRIPTION_CACHE:
                rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E5C, int(m["id"])]))
                _DESCRIPTION_CACHE[key] = region_description(run.space, np.asarray(m["lo"]), np.asarray(m["hi"]), rng,
                                                             baseline, n=40)
            out[m["id"]] = _DESCRIPTION_CACHE[key]
        return out
    except (PoseExaminerError, ImportError, OSError) as e:
        return {"error": f"pose descriptions unavailable: {e}"}


def _factor_views(run: RunData, seed: int | None) -> dict[str, Any] | None:
    """The run's failure factors (summary.json `factors`, examiner.search.factors) for the
    report, each with the posecodes that stand out among scenes drawn under it (pose
    latent slices read as poses; seed None: no words), and for a pose latent's slice that
    no posecode names, the joint angles it changes most against outside it (`pose`, as
    the constraint test's bars say it); None when the run tested none."""
    record = (run.summary or {}).get("factors")
    if not record or not record.get("factors"):
        return None

    out = []
    for f in record["factors"]:
        words, pose = None, ""
        if seed is None:
            out.append({**f, "words": None, "pose": None})
            continue
        try:
            from reports.posecodes import describe, region_description

            d = run.space.names.index(f["dimension"])
            lo, hi = -np.ones(run.space.dim), np.ones(run.space.dim)
            lo[d], hi[d] = f["lo_u"], f["hi_u"]
            rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E5C, 0xFAC7, d]))
            desc = region_description(run.space, lo, hi, rng, n=40, min_inside=0.5, min_lift=0.2)
            words = describe(caused_by(f["dimension"], [c for c, _i, _o in desc.codes])) or None
            if words is None:  # a slice of a pose latent no posecode names: what it does to the body
                from examiner.search.importance import pose_change, pose_change_text

                pose = pose_change_text(pose_change(run.space, lo, hi, d, seed, 0xFAC7))
        except (PoseExaminerError, ImportError, OSError, ValueError):
            words = None
        out.append({**f, "words": words, "pose": pose or None})
    return {**record, "factors": out}


def _importance_views(run: RunData, seed: int | None, images: bool = False, size: int = 144,
                      quality: int = 72, contrast: int = 2) -> dict[int, dict]:
    """Per mode id, its constraints tested alone (modes.json `importance`,
    examiner/search/importance.py) with each constraint's range in words and, for those
    that matter, what changes in the scenes when it leaves its range: the posecodes that
    hold in the box and are clearly rarer in the test's own samples outside it (seed None:
    no words), and with `images` up to `contrast` of those samples that pass, rendered
    (`contrast`: [{raw, value}]), and for a pose dimension what it does to the body
    (`pose_change`, examiner.search.importance.pose_change; seed None: not computed).
    Modes without a test are left out."""
    from examiner.search.importance import pose_change

    out: dict[int, dict] = {}
    for m in run.modes:
        imp = m.get("importance")
        if not imp or not imp.get("constraints"):
            continue
        lo, hi = np.asarray(m["lo"], np.float64), np.asarray(m["hi"], np.float64)
        rows = []
        for r in imp["constraints"]:
            row = {**r, "words": None, "box": None, "pose_change": None}
            if r["dimension"] in run.space.names:
                d = run.space.names.index(r["dimension"])
                row["box"] = views.box_text(run.space.dimensions[d], lo[d], hi[d])
                if seed is not None:
                    row["pose_change"] = pose_change(run.space, lo, hi, d, seed, int(m["id"]))
                if r["matters"] and seed is not None:
                    row["words"] = _constraint_words(run, m, d, imp)
                if r["matters"] and images:
                    row["contrast"] = _contrast_pictures(run, m, d, imp, r, size, quality, contrast)
            rows.append(row)
        out[m["id"]] = {**imp, "constraints": rows}
    return out


def _outside_value_text(dim: Any, u: float, lo: float, hi: float) -> str:
    """A value outside [lo, hi] in words; "just below 3 years" where the display rounds it
    to the interval's edge."""
    def one(v: float) -> str:
        return views.box_text(dim, v, v).split(" to ")[0]

    text = one(u)
    if not dim.choices:
        if u < lo and text == one(lo):
            return f"just below {text}"
        if u > hi and text == one(hi):
            return f"just above {text}"
    return text


def _contrast_pictures(run: RunData, mode: dict, d: int, imp: dict, row: dict, size: int, quality: int,
                       count: int) -> list[dict]:
    """Renders of the constraint test's samples outside dimension d's range that pass
    (regenerated from their seed; [] when the run kept no outcomes or nothing renders)."""
    from examiner.search.importance import drawn, outside_samples, sample_rng

    picks = [i for i, (failed, _v) in enumerate(row.get("outcomes") or []) if failed is False][:count]
    if not picks:
        return []
    try:
        from reports.images import data_uri, render_scenes

        lo, hi = np.asarray(mode["lo"], np.float64), np.asarray(mode["hi"], np.float64)
        U = outside_samples(run.space, lo, hi, d, drawn(imp), sample_rng(imp["seed"]["root"], int(mode["id"]), d))
        scenes = render_scenes([run.space.to_params(U[i]) for i in picks], max(size, 256))
        from PIL import Image

        from reports.posecodes import describe, posecodes

        return [{"raw": data_uri(Image.fromarray(sc.rgb), quality=quality, max_side=size),
                 "value": row["outcomes"][i][1],
                 "text": _outside_value_text(run.space.dimensions[d], float(U[i, d]), float(lo[d]), float(hi[d])),
                 "description": (describe(posecodes(sc.params, sc.joints_world, sc.keypoints["coco17"].visibility))
                                 if sc.joints_world is not None else "")}
                for i, sc in zip(picks, scenes)]
    except (PoseExaminerError, ImportError, OSError, RuntimeError):
        return []


def _outside_codes(run: RunData, mode: dict, d: int, imp: dict) -> dict[str, float]:
    """Posecode frequencies in the importance test's samples with dimension d outside its
    range (regenerated from their seed; memoised)."""
    from examiner.search.importance import drawn, outside_samples, sample_rng
    from reports.posecodes import code_frequencies

    key = ("outside codes", json.dumps(run.meta["space"], sort_keys=True), tuple(mode["lo"]), tuple(mode["hi"]), d)
    if key not in _DESCRIPTION_CACHE:
        lo, hi = np.asarray(mode["lo"], np.float64), np.asarray(mode["hi"], np.float64)
        U = outside_samples(run.space, lo, hi, d, drawn(imp), sample_rng(imp["seed"]["root"], int(mode["id"]), d))
        _DESCRIPTION_CACHE[key] = code_frequencies(run.space, U)[0]
    return _DESCRIPTION_CACHE[key]


DESCRIPTION_DROP = 0.25  # a described property "comes from" a constraint when leaving it drops its frequency this much
DESCRIPTION_STILL_FAILS = 0.75  # ... and is "not needed alone" when the model still fails this often without it


def description_check(run: RunData, mode: dict, imp: dict | None, desc: Any) -> list[dict]:
    """The mode's described properties that the failure does not need alone: a posecode
    of the description whose frequency falls by DESCRIPTION_DROP or more (and below one
    half) when a constraint that does not matter leaves its range while the model still
    fails at least DESCRIPTION_STILL_FAILS of those samples, and by less for every
    constraint that matters (a drop the test could not call significant, say 81% to 55%,
    is not flagged). The words describe the box; this says which of them the
    constraint test found the failure to do without ([{key, phrase, dimension, k, n}]:
    with that constraint outside its range, k of n test samples still fail)."""
    if not imp or not imp.get("constraints") or desc is None or not getattr(desc, "codes", ()):
        return []
    from reports.posecodes import describe

    try:
        rows = [r for r in imp["constraints"] if r["dimension"] in run.space.names and r.get("n")]
        freqs = {r["dimension"]: _outside_codes(run, mode, run.space.names.index(r["dimension"]), imp) for r in rows}
    except (PoseExaminerError, ImportError, OSError, ValueError):
        return []
    out = []
    for code, inside, _overall in desc.codes:
        def drop(r: dict) -> float:
            return inside - freqs[r["dimension"]].get(code.key, 0.0)

        if any(r["matters"] and drop(r) >= DESCRIPTION_DROP for r in rows):
            continue
        cands = [r for r in rows if not r["matters"] and drop(r) >= DESCRIPTION_DROP
                 and freqs[r["dimension"]].get(code.key, 0.0) < 0.5 and (r.get("rate") or 0.0) >= DESCRIPTION_STILL_FAILS]
        if cands:
            r = max(cands, key=drop)
            out.append({"key": code.key, "phrase": describe((code,)) or code.phrase, "dimension": r["dimension"],
                        "k": r["k"], "n": r["n"]})
    return out


# Which posecode groups (reports.posecodes.GROUP_ORDER) a dimension's group can change: a
# constraint is described only by facts it can cause. MediaPipe's seed-2 stage-3 mode needed
# shape.belly, and 40 scenes in the box against 24 outside it made "head bowed" its words.
_CAN_CHANGE = {"pose": ("pose", "view", "frame"), "shape": ("body", "frame"), "camera": ("view", "frame"),
               "occluder": ("frame",), "light": ("scene",), "background": ("scene",), "ground": ("scene", "frame"),
               "clothing": ("body", "frame", "scene")}


def caused_by(dimension: str, codes: Sequence[Any]) -> list[Any]:
    """The posecodes a dimension can change (`_CAN_CHANGE` by its group; all for a group
    not listed)."""
    can = _CAN_CHANGE.get(dimension.partition(".")[0])
    return [c for c in codes if can is None or c.group in can]


def _constraint_words(run: RunData, mode: dict, d: int, imp: dict) -> str | None:
    """What a constraint changes in the scenes: the posecodes holding in at least half of
    the box's scenes and at least 0.25 more often than in the importance test's samples
    with dimension d outside its range (the same samples, regenerated from their seed),
    among those the dimension's group can change (`_CAN_CHANGE`: a body-shape dimension
    is not described by a head pose)."""
    try:
        from reports.posecodes import describe, region_description

        key = ("constraint", json.dumps(run.meta["space"], sort_keys=True), tuple(mode["lo"]), tuple(mode["hi"]), d)
        if key not in _DESCRIPTION_CACHE:
            away = _outside_codes(run, mode, d, imp)
            rng = np.random.default_rng(np.random.SeedSequence([imp["seed"]["root"], 0x5E5C, int(mode["id"]), d]))
            desc = region_description(run.space, np.asarray(mode["lo"], np.float64),
                                      np.asarray(mode["hi"], np.float64), rng, away, n=40, min_inside=0.5, min_lift=0.25)
            _DESCRIPTION_CACHE[key] = describe(caused_by(run.space.names[d], [c for c, _i, _o in desc.codes])) or None
        return _DESCRIPTION_CACHE[key]
    except (PoseExaminerError, ImportError, OSError, ValueError):
        return None


def importance_sentence(imp: dict | None) -> tuple[str, str]:
    """The mode's constraint test for the mode card: (what the failure needs, with the
    words of the constraints that matter; how it was tested). ("", "") without a test."""
    from examiner.search.importance import pose_change_text

    if not imp or not imp.get("constraints"):
        return "", ""
    rows = imp["constraints"]
    inside = imp["inside"]
    matters = [r for r in rows if r["matters"]]
    rest = [r for r in rows if not r["matters"] and r["rate"] is not None]
    if matters:
        main = "What the failure needs: " + "; ".join(
            f"{r['dimension']} {r.get('box') or ''}".rstrip() + f" ({r['k']} of {r['n']} fail outside it"
            + (f"; here: {r['words']}" if r.get("words") else "")
            + (f"; the box's poses against outside it: {pose_change_text(r['pose_change'])}" if r.get("pose_change") else "")
            + ")" for r in matters)
        main += f", against {inside['rate']:.0%} inside"
    else:
        main = (f"No single constraint makes a clear difference alone: the model fails {inside['rate']:.0%} inside, "
                f"and the constraints may matter only together")
    if rest:
        lo_r, hi_r = min(r["rate"] for r in rest), max(r["rate"] for r in rest)
        span = f"{lo_r:.0%}" if lo_r == hi_r else f"{lo_r:.0%} to {hi_r:.0%}"
        main += (f". Without any one of the other {len(rest)} it still fails {span}" if matters
                 else f" (without any one of them it still fails {span})")
    retested = sum(r.get("retest") is not None for r in rows)
    how = (f"Each constraint tested alone: {imp['samples']} fresh samples with it outside its range and the rest in "
           f"the box; the {retested} that looked like mattering (p < {imp.get('screen', 0.25):g}) retested on "
           f"{imp.get('retest_samples') or imp['samples']} more and judged on those alone, one-sided Fisher exact against the {inside['n']} "
           f"samples inside, Holm-adjusted p below {imp['alpha']:g}.")
    return main + ".", how


def _gallery(run: RunData, size: int, quality: int, max_examples: int) -> tuple[dict[int, list[dict]], str | None]:
    """Rendered examples per mode id, or an explanation why there are none."""
    from reports.images import gallery_items, render_scenes, scale_prediction
    from reports.posecodes import describe, posecodes

    wanted: list[tuple[int, dict, dict | None]] = []
    for m in run.modes:
        for ex in (m.get("examples") or [])[:max_examples]:
            wanted.append((m["id"], ex, run.record_for(ex["u"])))
    if not wanted:
        return {}, None
    try:
        params = [run.space.to_params(np.asarray(ex["u"])) for _, ex, _ in wanted]
        samples = render_scenes(params, max(size, 256))
    except (PoseExaminerError, ImportError, OSError, RuntimeError) as e:
        return {}, f"examples could not be rendered here ({type(e).__name__}: {e}); the report shows everything else"
    recs = []
    for (_, _, rec), p, s in zip(wanted, params, samples):
        recs.append(scale_prediction(rec, (p.camera.width, p.camera.height), (s.rgb.shape[1], s.rgb.shape[0])))
    items = gallery_items(samples, recs, quality=quality, size=size)
    out: dict[int, list[dict]] = {}
    for (mid, ex, rec), s, item in zip(wanted, samples, items):
        vis = s.keypoints["coco17"].visibility
        out.setdefault(mid, []).append({
            "item": item,
            "value": ex.get("value"),
            "missed": bool(rec is not None and rec.get("missed")),
            "failed": bool(ex.get("failed")),
            "index": None if rec is None else rec.get("i"),
            "description": describe(posecodes(s.params, s.joints_world, vis)) if s.joints_world is not None else "",
        })
    return out, None


def _confirmed_low(run: RunData, mode: dict) -> bool:
    """Whether the confirmation samples fail below the acceptance standard."""
    c = mode.get("confirmed") or {}
    return c.get("rate") is not None and c["rate"] < min_failure_rate(run)


def _mode_view(run: RunData, mode: dict, described: dict, gallery: dict,
               importance: dict | None = None, seed: int | None = None) -> dict[str, Any]:
    from reports import svg

    imp = (importance or {}).get(mode["id"])
    rows, free = _region_rows(run, mode, imp, seed)
    v = mode["verified"]
    errs = mode.get("errors") or {}
    q = errs.get("quantiles") or {}
    desc = described.get(mode["id"])
    unit = views.metric_unit(run.metric)
    return {
        "rank": mode["rank"],
        "id": mode["id"],
        "rate": v["rate"],
        "n": v["n"],
        "k": v["k"],
        "implausible": int(v.get("implausible") or 0),
        "interval": v["interval"],
        "confirmed": mode.get("confirmed"),
        "confirmed_low": _confirmed_low(run, mode),
        "simplified": simplified_text(mode),
        "released": (mode.get("simplified") or {}).get("released") or [],
        "importance": importance_sentence(imp)[0],
        "importance_how": importance_sentence(imp)[1],
        "importance_rows": (imp or {}).get("constraints") or [],
        "volume": float(mode.get("volume_fraction") or 0.0),
        "median": q.get("0.5"),
        "p10": q.get("0.1"),
        "p90": q.get("0.9"),
        "mean": errs.get("mean"),
        "n_errors": errs.get("n", 0),
        "agents": mode.get("agents", []),
        "members": mode.get("members", []),
        "rows": rows,
        "free": free,
        "description": mode_words(run, mode, desc),
        "headline": needed_words(desc, (imp or {}).get("description_check") or []),
        "needs": needs_lead(imp),
        "unneeded": (imp or {}).get("description_check") or [],
        "codes": [{"phrase": c.phrase, "inside": fi, "overall": fb} for c, fi, fb in getattr(desc, "codes", ())],
        "histogram": svg.histogram(errs.get("values") or [], run.threshold, f"{run.metric} ({unit})" if unit else run.metric,
                                   label=f"error distribution of mode {mode['rank']}"),
        "examples": gallery.get(mode["id"], []),
    }


# ---------------------------------------------------------------------------------------
# results.json
# ---------------------------------------------------------------------------------------

def needed_words(desc: Any, unneeded: list[dict]) -> str | None:
    """The card's headline when the constraint test flagged some of the description's
    properties as not needed alone (`description_check`): the description without them
    ("" when none is left: the card then leads with what the failure needs); None when
    nothing was flagged (the description stands as it is)."""
    if not unneeded or desc is None or not getattr(desc, "codes", ()):
        return None
    from reports.posecodes import describe

    flagged = {u["key"] for u in unneeded}
    # ... and what a flagged property implies ("partly cut off" under "a quarter or more cut off")
    drop = flagged | {k for c, _i, _o in desc.codes if c.key in flagged for k in c.supersedes}
    return describe(c for c, _inside, _overall in desc.codes if c.key not in drop)


def needs_lead(imp: dict | None) -> str | None:
    """The mode card's first line when its constraint test found constraints the failure
    needs alone: their words, each with its dimension ("left elbow bent (pose.z02), seen
    from above (camera.elevation)"); None without such a constraint. The description's
    posecodes say what stands out in the box's scenes, which need not be what the failure
    needs (MediaPipe: "right elbow bent" described, the left elbow needed). A pose latent
    no posecode names says the two joint angles it changes most ("pose.z02 -2.50σ to
    -0.74σ (left hip flexion -23°, left knee flexion -20°)")."""
    from examiner.search.importance import pose_change_text

    def said(r: dict) -> str:
        if r.get("words"):
            return f"{r['words']} ({r['dimension']})"
        text = f"{r['dimension']} {r.get('box') or ''}".rstrip()
        # a pose latent no posecode names: the two joint angles it changes most
        return text + (f" ({pose_change_text(r['pose_change'][:2])})" if r.get("pose_change") else "")

    rows = [r for r in (imp or {}).get("constraints") or [] if r.get("matters")]
    return ", ".join(said(r) for r in rows) if rows else None


def mode_words(run: RunData, mode: dict, desc: Any) -> str:
    """The mode's description: its distinctive pose, view and scene properties, or, when
    none stands out (a region narrower than any property's threshold, e.g. a few degrees
    of camera roll), its constrained parameters in words and physical units."""
    text = getattr(desc, "text", "") if desc is not None else ""
    if text:
        return text
    parts = []
    for i, dim in enumerate(run.space.dimensions):
        lo, hi = float(mode["lo"][i]), float(mode["hi"][i])
        if lo > -1.0 + 1e-9 or hi < 1.0 - 1e-9:
            parts.append(f"{dim.name.replace('_', ' ').replace('.', ' ')} {views.box_text(dim, lo, hi)}")
    return "; ".join(parts)


def build_results(run: RunData, stats: dict, described: dict | None = None, gates: Sequence[GateResult] = (),
                  sensitivity: Sequence[Any] = (), per_joint: dict | None = None,
                  factors: dict | None = None, importance: dict | None = None) -> dict[str, Any]:
    """The machine-readable results (schema `poseexaminer-results` v1; docs/reports.md)."""
    described = described or {}
    importance = importance if importance is not None else _importance_views(run, None)
    dims = run.space.dimensions
    modes = []
    for m in run.modes:
        desc = described.get(m["id"])
        constrained = {}
        for i, dim in enumerate(dims):
            lo, hi = float(m["lo"][i]), float(m["hi"][i])
            if lo > -1.0 + 1e-9 or hi < 1.0 - 1e-9:
                entry: dict[str, Any] = {"lo_u": lo, "hi_u": hi, "unit": dim.unit, "text": views.box_text(dim, lo, hi)}
                if not dim.choices:
                    entry.update(lo=dim.to_physical(lo), hi=dim.to_physical(hi))
                constrained[dim.name] = entry
        errs = m.get("errors") or {}
        modes.append({
            "rank": m["rank"], "id": m["id"],
            "description": mode_words(run, m, desc) or None,
            "posecodes": [c.key for c, _, _ in getattr(desc, "codes", ())],
            "box": {"lo": m["lo"], "hi": m["hi"], "constrained": constrained},
            "volume_fraction": m.get("volume_fraction"),
            "verified": m["verified"],
            "confirmed": m.get("confirmed"),
            "simplified": _simplified_summary(m),
            "importance": _importance_record(importance.get(m["id"])),
            "errors": {k: errs.get(k) for k in ("n", "mean", "quantiles")},
            "examples": [
                {**ex, "evaluation": (run.record_for(ex["u"]) or {}).get("i")} for ex in (m.get("examples") or [])
            ],
            "agents": m.get("agents", []), "members": m.get("members", []),
        })
    meta = run.meta
    return {
        "schema": RESULTS_SCHEMA,
        "schema_version": RESULTS_SCHEMA_VERSION,
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run": {
            "dir": str(run.root),
            "model_spec": meta.get("model_spec"),
            "created": meta.get("created"),
            "strategy": meta.get("strategy"),
            "metric": run.metric,
            "metric_unit": views.metric_unit(run.metric),
            "threshold": run.threshold,
            "threshold_rule": meta.get("threshold_rule"),
            "budget": stats["budget"],
            "status": stats["status"],
            "wall_time_s": stats["wall_time_s"],
            "seeds": meta.get("seeds"),
            "versions": meta.get("versions"),
            "config": meta.get("config"),
            "space": [
                {"name": d.name, "low": d.low, "high": d.high, "unit": d.unit, "choices": list(d.choices) if d.choices else None}
                for d in dims
            ],
        },
        "stats": {k: v for k, v in stats.items() if k not in ("wall_time_exact",)},
        "modes": modes,
        "sensitivity": [{"dimension": s.name, "score": s.score} for s in sensitivity],
        "per_joint": None if per_joint is None else {"unit": per_joint["unit"], "joints": per_joint["table"]},
        "gates": [{"rule": g.rule.text, "quantity": g.rule.name, "value": g.value, "tripped": g.tripped} for g in gates],
        "factors": factors if factors is not None else (run.summary or {}).get("factors"),
        "needs": needs_summary(run, importance),
    }


def needs_summary(run: RunData, importance: dict | None = None) -> dict | None:
    """The run's failures by what they need (examiner.search.importance.group_by_need):
    modes whose constraint test found the same constraints mattering alone, on ranges that
    overlap, are one failure. {"failures": [{"dimensions": [{dimension, box, words,
    pose}], "modes": [rank]}], "nothing_alone": [rank]}; None when no mode was tested.
    A failure's range on each dimension spans its modes' (`box`); `words` and `pose` are
    its first mode's (the report's importance views, when given)."""
    from examiner.search.importance import group_by_need, needs, pose_change, pose_change_text

    tested = [m for m in run.modes if (m.get("importance") or {}).get("constraints")]
    if not tested:
        return None
    names = run.space.names
    failures = []
    for group in group_by_need(tested, names):
        first = group[0]
        views_rows = {r["dimension"]: r for r in ((importance or {}).get(first["id"]) or {}).get("constraints", [])}
        dims = []
        for d in needs(first, names):
            lo = min(float(m["lo"][d]) for m in group)
            hi = max(float(m["hi"][d]) for m in group)
            row = views_rows.get(names[d]) or {}
            change = row.get("pose_change")
            if change is None:  # no report views (the CLI): the report's default seed
                change = pose_change(run.space, np.asarray(first["lo"], float), np.asarray(first["hi"], float), d, 0,
                                     int(first["id"]))
            said = row.get("words") if row.get("words") not in [x["words"] for x in dims] else None
            dims.append({"dimension": names[d], "box": views.box_text(run.space.dimensions[d], lo, hi),
                         "words": said, "pose": pose_change_text(change)})
        failures.append({"dimensions": dims, "modes": sorted(int(m["rank"]) for m in group)})
    return {"failures": failures,
            "nothing_alone": sorted(int(m["rank"]) for m in tested if not needs(m, names)),
            "rest": rest_of_space(run, group_by_need(tested, names))}


# A need range within this (normalised) distance of a space edge reaches it: the need is
# one-sided, and the rest of the space is the other side.
REST_EDGE = 0.02


def _held_rate(mode: dict) -> float:
    """A mode's failure rate on fresh samples after the search (else its verification's)."""
    return float((mode.get("confirmed") or mode.get("verified") or {}).get("rate") or 0.0)


def rest_of_space(run: RunData, groups: Sequence[Sequence[dict]], factors: Sequence[dict] = ()) -> dict | None:
    """Where to look next: the run's space with every failure that needs one constraint
    alone cut away (and, given `factors`, every confirmed failure factor: `_cut_factors`),
    as a space spec and a command. A failure needing one side of a
    continuous dimension (truncation 0.19 to 0.35) leaves the other side (0 to 0.19); one
    needing some choices leaves the others. A failure's modes that hold the standard on
    fresh samples cut their ranges together; without one, only what every mode needs is
    cut (a weaker, wider mode may owe its rate to the rest of its box; the next search
    finds the remainder again if it is real). Failures needing several constraints
    together, or a range inside a dimension, cannot be cut from a box: they stay (`kept`).
    {"entries", "space", "command", "cut": [rank], "kept": [rank], "factors": [label]};
    None when nothing can be cut or the run recorded no space spec."""
    from examiner.search.importance import needs
    from simulator.params import ParamSpace, choices_in

    config = run.meta.get("config") or {}
    spec = config.get("space")
    if not spec:
        return None
    names = run.space.names
    standard = min_failure_rate(run)
    try:
        if ParamSpace.from_groups(spec).names != names:  # a space given to run_search directly
            return None
    except PoseExaminerError:
        return None
    ranges: dict[int, list[float]] = {}  # continuous dimension -> the normalised range left
    choices: dict[int, list[str]] = {}  # categorical dimension -> the choices left
    cut: list[int] = []
    kept: list[int] = []
    for group in groups:
        ranks = [int(m["rank"]) for m in group]
        need = needs(group[0], names)
        d = need[0] if len(need) == 1 else None
        if d is None:
            kept += ranks
            continue
        strong = [m for m in group if _held_rate(m) >= standard]
        los = [float(m["lo"][d]) for m in strong or group]
        his = [float(m["hi"][d]) for m in strong or group]
        dim = run.space.dimensions[d]
        if dim.choices:
            hits = [set(choices_in(dim, lo, hi)) for lo, hi in zip(los, his)]
            hit = set.union(*hits) if strong else set.intersection(*hits)
            left = [c for c in choices.get(d, dim.choices) if c not in hit]
            if not hit or not left:
                kept += ranks
                continue
            choices[d] = left
            cut += ranks
            continue
        klo, khi = ranges.get(d, [-1.0, 1.0])
        if all(lo > -1 + REST_EDGE and hi >= 1 - REST_EDGE for lo, hi in zip(los, his)):
            khi = min(khi, min(los) if strong else max(los))
        elif all(hi < 1 - REST_EDGE and lo <= -1 + REST_EDGE for lo, hi in zip(los, his)):
            klo = max(klo, max(his) if strong else min(his))
        else:  # a range inside the dimension: the rest is not a box
            kept += ranks
            continue
        if khi - klo < REST_EDGE:  # nothing would be left of the dimension
            kept += ranks
            continue
        ranges[d] = [klo, khi]
        cut += ranks
    labels = _cut_factors(run, factors, ranges, choices)
    if not ranges and not choices:
        return None
    return {**_rest_spec(run, spec, ranges, choices), "cut": sorted(cut), "kept": sorted(kept), "factors": labels}


def _rest_spec(run: RunData, spec: str, ranges: dict[int, list[float]], choices: dict[int, list[str]]) -> dict:
    """{"entries", "space", "command"}: the run's space spec narrowed to `ranges`
    (normalised, per continuous dimension) and `choices` (per categorical one)."""
    from simulator.params import limit_entry, with_limits

    names = run.space.names
    config = run.meta.get("config") or {}
    entries = [limit_entry(run.space.dimensions[d], *ranges[d]) if d in ranges
               else f"{names[d]}={'|'.join(choices[d])}" for d in sorted({*ranges, *choices})]
    space = with_limits(spec, entries)
    words = ["examiner run", "--model", str(run.meta.get("model_spec") or "MODEL"), "--space", space]
    if config.get("metric") and config["metric"] != "pa_mpjpe":
        words += ["--metric", config["metric"]]
    if config.get("threshold") is not None:
        words += ["--threshold", f"{config['threshold']:g}"]
    words += ["--budget", str(config.get("budget", 3000)), "--out", "RUN_DIR"]
    command = " ".join([words[0]] + [shlex.quote(w) for w in words[1:]])
    return {"entries": entries, "space": space, "command": command}


def _cut_factors(run: RunData, factors: Sequence[dict], ranges: dict[int, list[float]],
                 choices: dict[int, list[str]]) -> list[str]:
    """Narrow `ranges` / `choices` (in place) by the confirmed failure factors
    (examiner.search.factors: one condition on one dimension, fresh samples under it failing
    more often than the space's uniform ones, Holm-adjusted), under the rule of the modes'
    needs: a factor at one end of a continuous dimension (elevation 38° to 50°, or as far
    inwards as it was found to reach: `extended`) leaves the other end, a categorical one
    leaves the other choices, one inside a dimension stays.
    Returns the labels of the factors cut."""
    from simulator.params import choices_in

    names = run.space.names
    labels: list[str] = []
    for f in factors:
        if not f.get("confirmed") or f.get("dimension") not in names or f.get("lo_u") is None:
            continue
        d = names.index(f["dimension"])
        dim = run.space.dimensions[d]
        reach = f.get("extended") or f  # how far inwards it still fails more often (factors.extend)
        lo, hi = float(reach["lo_u"]), float(reach["hi_u"])
        if dim.choices:
            left = [c for c in choices.get(d, dim.choices) if c not in set(choices_in(dim, lo, hi))]
            if not left or left == list(choices.get(d, dim.choices)):
                continue
            choices[d] = left
        else:
            klo, khi = ranges.get(d, [-1.0, 1.0])
            if lo <= -1 + REST_EDGE < hi < 1 - REST_EDGE:
                klo = max(klo, hi)
            elif -1 + REST_EDGE < lo and hi >= 1 - REST_EDGE:
                khi = min(khi, lo)
            else:
                continue
            if khi - klo < REST_EDGE or [klo, khi] == ranges.get(d):
                continue
            ranges[d] = [klo, khi]
        labels.append(str(reach.get("label") or f["dimension"]))
    return labels


def needs_lines(summary: dict | None) -> list[str]:
    """The failures by what they need, one line each, for the terminal and the report."""
    if not summary:
        return []
    out = []
    for f in summary["failures"]:
        what = " and ".join(f"{d['dimension']} {d['box']}" + (f" ({d['words']})" if d.get("words") else
                                                               f" (the poses: {d['pose']})" if d.get("pose") else "")
                            for d in f["dimensions"])
        ranks = ", ".join(str(r) for r in f["modes"])
        out.append(f"{what}: mode{'s' if len(f['modes']) > 1 else ''} {ranks}")
    if summary["nothing_alone"]:
        ranks = ", ".join(str(r) for r in summary["nothing_alone"])
        out.append(f"no single constraint alone: mode{'s' if len(summary['nothing_alone']) > 1 else ''} {ranks}")
    return out


def _importance_record(imp: dict | None) -> dict | None:
    """results.json's `importance` of a mode (None without a test)."""
    if not imp:
        return None
    keys = ("dimension", "box", "n", "k", "rate", "interval", "median", "implausible", "model_errors", "p_value",
            "p_adjusted", "matters", "screen", "retest", "words", "pose_change")
    return {"samples": imp["samples"], "retest_samples": imp.get("retest_samples") or imp["samples"], "alpha": imp["alpha"], "screen": imp.get("screen"), "test": imp["test"],
            "inside": imp["inside"], "description_check": imp.get("description_check") or [],
            "seed": imp["seed"], "constraints": [{k: r.get(k) for k in keys} for r in imp["constraints"]]}


def _simplified_summary(mode: dict) -> dict | None:
    """What the release tests after the search did to the mode's box (examiner/search/
    simplify.py): the constraints released, the test that allowed it, the modes it took
    in and the box the search found; None when nothing was tested."""
    s = mode.get("simplified")
    if not s:
        return None
    accepted = next((t for t in s.get("tests", []) if t.get("accepted")), None)
    return {
        "released": list(s.get("released", [])),
        "test": None if accepted is None else {k: accepted[k] for k in ("n", "k", "rate", "interval")},
        "merged": list(s.get("merged", [])),
        "tests": len([t for t in s.get("tests", []) if "skipped" not in t]),
        "searched_volume_fraction": (s.get("searched") or {}).get("volume_fraction"),
        "searched_confirmed": (s.get("searched") or {}).get("confirmed"),
    }


def simplified_text(mode: dict) -> str:
    """One clause for a simplified mode ("" otherwise)."""
    s = _simplified_summary(mode)
    if not s or not s["released"]:
        return ""
    t = s["test"]
    n = len(s["released"])
    k = len(s["merged"])
    merged = f"; the larger box takes in {k} other mode{'s' if k != 1 else ''} the search found" if k else ""
    c = s["searched_confirmed"] or {}
    searched = (f"; the searched box, confirmed too, failed {c['rate']:.0%} of {c['n']}"
                if c.get("rate") is not None else "")
    return (f"{n} looser constraint{'s' if n != 1 else ''} released after the search ({t['k']} of {t['n']} fresh "
            f"samples still fail without {'them' if n != 1 else 'it'}{merged}{searched})")


def _confirmed_text(c: dict | None) -> str:
    if not c or c.get("rate") is None:
        return ""
    lo, hi = c["interval"]
    return f"; confirmed after the search: {c['rate']:.0%} of {c['n']} more (95% CI {lo:.0%}-{hi:.0%})"


def mode_junit_cases(run: RunData, described: dict) -> list[dict]:
    cases = []
    for m in run.modes:
        v = m["verified"]
        lo, hi = v["interval"]
        desc = getattr(described.get(m["id"]), "text", "") or ""
        dims = ", ".join(views.box_text(run.space.dimensions[run.space.names.index(n)], a, b).join((f"{n} ", ""))
                         for n, (a, b) in (m.get("constrained") or {}).items() if n in run.space.names)
        cases.append({
            "title": f"mode {m['rank']}: {desc or dims or 'failure region'}"[:200],
            "message": f"fails {v['rate']:.0%} of {v['n']} plausible fresh samples (95% CI {lo:.0%}-{hi:.0%})"
                       + (f"; {v['implausible']} implausible left out" if v.get("implausible") else "")
                       + _confirmed_text(m.get("confirmed")),
            "details": f"region: {dims}\ndescription: {desc}\nvolume fraction: {m.get('volume_fraction')}",
        })
    return cases


# ---------------------------------------------------------------------------------------
# write_report
# ---------------------------------------------------------------------------------------

def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "unknown"
    if s < 90:
        return f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def render_html(context: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda x, d=0: "n/a" if x is None else f"{100 * x:.{d}f}%"
    env.filters["num"] = lambda x, d=1: "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"
    env.filters["vol"] = lambda x: "n/a" if x is None else (f"{100 * x:.3g}%" if x >= 1e-4 else f"{x:.2e}")
    return env.get_template(TEMPLATE).render(**context)


def write_report(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    junit: str | Path | None = None,
    fail_on: Sequence[str] = (),
    images: bool = True,
    describe: bool = True,
    image_size: int = 192,
    quality: int = 72,
    max_examples: int = 4,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> ReportPaths:
    """Write report.html and results.json for the run in `run_dir` (into `out_dir`,
    default the run directory), a JUnit file when `junit` is given, and evaluate the
    `fail_on` gating rules (see reports.gating). images=False skips rendering the
    examples, describe=False the descriptions in words (both need the body model). Raises ReportError / GateRuleError with a
    one-line message on a bad run directory or rule; never exits: the caller decides what
    a tripped gate means (`ReportPaths.gate_failure`)."""
    from markupsafe import Markup

    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    rules = parse_rules(fail_on)
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.root
    out.mkdir(parents=True, exist_ok=True)
    stats = run_stats(run)
    gates = evaluate_rules(rules, report_quantities(stats))

    say("describing failure modes")
    described = _describe_modes(run, seed) if run.modes and describe else {}
    describe_error = described.pop("error", None) if isinstance(described.get("error"), str) else None
    gallery, gallery_note = ({}, "images disabled (--no-images)") if not images else ({}, None)
    if images and run.modes:
        say("rendering examples")
        gallery, gallery_note = _gallery(run, image_size, quality, max_examples)
    say("whole-run views")
    sens = views.sensitivity(run)
    emap = views.evaluation_map(run)
    joints = views.per_joint(run)
    prog = views.progress(run)
    say("failure factors")
    factors = _factor_views(run, seed if describe else None)
    importance = _importance_views(run, seed if describe else None, images=images)
    for m in run.modes:
        if m["id"] in importance:
            importance[m["id"]]["description_check"] = description_check(run, m, importance[m["id"]],
                                                                         described.get(m["id"]))

    meta = run.meta
    unit = views.metric_unit(run.metric)
    fr = stats["failure_rate"]
    context = {
        "title": f"PoseExaminer report: {run.model_spec}",
        "model": run.model_spec,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "run_dir": str(run.root),
        "metric": run.metric,
        "metric_note": views.metric_note(run.metric),
        "children_note": children_metric_note(run.metric, run.space.names),
        "unit": unit,
        "threshold": run.threshold,
        "threshold_rule": meta.get("threshold_rule"),
        "scored_joints": _scored_joints(run.model_spec),
        "space_warning": _space_warning(fr, stats.get("space_failure_rate")),
        "stats": stats,
        "failure_rate": fr,
        "wall_time": ("" if stats["wall_time_exact"] else "≈ ") + _fmt_seconds(stats["wall_time_s"]),
        "strategy": meta.get("strategy"),
        "agents": (meta.get("config") or {}).get("agents"),
        "space_groups": (meta.get("config") or {}).get("space"),
        "dimensions": [
            {"name": d.name, "range": views.full_range_text(d), "unit": d.unit, "description": d.description}
            for d in run.space.dimensions
        ],
        "seeds": meta.get("seeds") or {},
        "versions": meta.get("versions") or {},
        "created": meta.get("created"),
        "config_json": json.dumps(meta.get("config") or {}, indent=1, sort_keys=True),
        "modes": [_mode_view(run, m, described, gallery, importance, seed if describe else None) for m in run.modes],
        "needs": needs_summary(run, importance),
        "min_rate": min_failure_rate(run),
        "describe_error": describe_error,
        "gallery_note": gallery_note,
        "sensitivity": [{**s.__dict__, "spark": Markup(s.spark), "plot": Markup(s.plot) if s.plot else None} for s in sens],
        "map": None if emap is None else {**emap, "svg": Markup(emap["svg"]), "colourbar": Markup(emap["colourbar"])},
        "per_joint": None if joints is None else {**joints, "svg": Markup(joints["svg"])},
        "progress": {**prog, "failures": Markup(prog["failures"]), "modes": Markup(prog["modes"])},
        "gates": gates,
        "phases": stats["phases"],
        "factors": factors if factors and factors.get("factors") else None,
    }
    for m in context["modes"]:
        m["histogram"] = Markup(m["histogram"])
    say("writing report.html")
    html = render_html(context)
    html_path = out / "report.html"
    html_path.write_text(html, encoding="utf-8")
    results = build_results(run, stats, described, gates, sens, joints, factors, importance)
    results_path = out / "results.json"
    results_path.write_text(dumps(results, indent=1), encoding="utf-8")
    junit_path = None
    if junit is not None:
        junit_path = write_junit(junit, junit_xml("poseexaminer", mode_junit_cases(run, described), gates))
    gate_failure = failure_line(gates)
    if rules:
        # A gate must never pass a run it cannot judge: a CI job relies on that.
        why = incomplete_reason(run)
        if why:
            gate_failure = f"gate failed: {why}; a --fail-on gate judges only a complete run"
    return ReportPaths(html_path, results_path, junit_path, list(gates), gate_failure, time.perf_counter() - t0)


RESULTS_SCHEMA_FILE = Path(__file__).parent / "schemas" / "results.schema.json"


def results_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of results.json, shipped with the package."""
    return json.loads(RESULTS_SCHEMA_FILE.read_text())


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results.json, checking its schema and version."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"cannot read {path}: {e}") from None
    if data.get("schema") != RESULTS_SCHEMA or data.get("schema_version") != RESULTS_SCHEMA_VERSION:
        raise ReportError(f"{path} is not a {RESULTS_SCHEMA} v{RESULTS_SCHEMA_VERSION} file")
    return data



def _scored_joints(model_spec: str) -> str | None:
    """'inside the image' / 'in view' when the run scored only those joints (sim.joints)."""
    from examiner.search.errors import SearchConfigError
    from examiner.search.sim_evaluator import split_evaluator_options

    try:
        joints = split_evaluator_options(model_spec or "")[1].get("joints")
    except SearchConfigError:
        return None
    return {"in_frame": "inside the image", "visible": "in view (inside the image, not hidden)"}.get(joints or "")


def _space_warning(failure_rate: dict | None, space_rate: dict | None = None) -> str | None:
    """The report's warning when the model fails on most of the space: judged on the
    uniform samples drawn after the search where the run has them, else on the search's
    proposals."""
    from examiner.search.reference import children_metric_note, most_space_fails_warning

    if space_rate and space_rate.get("n"):
        return most_space_fails_warning(space_rate["rate"], uniform=True)
    if not failure_rate or failure_rate.get("basis") != "search" or not failure_rate.get("n"):
        return None
    return most_space_fails_warning(failure_rate["rate"])
