"""Simplifying failure modes after the search: release the constraints that do not matter.

Growth bounds a box on every dimension where a probe or bisection step passed, and with a
real model the failure probability falls off smoothly and noisily, so a grown box carries
constraints a reader cannot act on. Two kinds are common (on MediaPipe runs in the default
space about half of the modes had one or more of each):

- **weak**: a side pulled in a little, so the box still spans three quarters of the
  dimension's range or more ("shape.age 13 years to 80 years"); they fill the "(+6 more)"
  of a description;
- **slivers**: a dimension at the search's resolution (width at most twice
  `bisection_tol`), where both bisections came straight back to the seed: either a real
  narrow condition (the camera at its highest) or a passing step that was noise
  ("camera.offset_y 0.07 to 0.10", "pose.z04 -0.54σ to -0.49σ").

After the search, each mode's box with those dimensions released to their full range is
tested on `verify_samples` fresh uniform samples, asked in two halves with verification's
early decisions (`growth.verification_decided`), outside the budget and the log. If the
larger box still fails at `min_failure_rate` it becomes the mode: the same standard with
fewer conditions. Up to `region.simplify` tests per mode, in this order: weak and slivers
together, weak only, slivers only (empty or repeated sets, and a release that would leave
no constraint, are skipped and not counted). A released box that overlaps other modes by
`merge_overlap` absorbs them, the search's own merge rule. Categorical dimensions are
never released (which choices fail is the finding).

The confirmation (`confirm_samples`) then runs on each mode's final box; where a released
box confirms below the standard, `revert_unconfirmed` confirms the searched box too and
puts it back when it meets the standard. The searched box and every test are kept under
`simplified` in modes.json. On the analytic planted regions (boxes) growth constrains
exactly the planted dimensions, so nothing is released there.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from examiner.search.boxes import box_log_volume, box_overlap, wilson_interval
from examiner.search.config import RegionConfig
from examiner.search.growth import verification_decided
from examiner.search.modes import error_summary
from simulator.params import ParamSpace

WEAK_WIDTH = 1.5  # a constraint that keeps three quarters of the range or more (normalised width 2)


def release_candidates(lo: np.ndarray, hi: np.ndarray, space: ParamSpace, tol: float) -> tuple[list[int], list[int]]:
    """(weak, slivers): indices of the box's continuous constrained dimensions that keep at
    least three quarters of their range, and those no wider than twice the bisection
    tolerance."""
    weak, slivers = [], []
    for i, d in enumerate(space.dimensions):
        width = float(hi[i] - lo[i])
        if d.choices is not None or width >= 2.0 - 1e-9:
            continue
        if width >= WEAK_WIDTH:
            weak.append(i)
        elif width <= 2.0 * tol + 1e-9:
            slivers.append(i)
    return weak, slivers


def _tries(weak: list[int], slivers: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for dims in (sorted(weak + slivers), weak, slivers):
        if dims and dims not in out:
            out.append(dims)
    return out


def _test(evaluate, U: np.ndarray, cfg: RegionConfig) -> dict:
    """Verification's rule on the fresh samples U (asked in halves with early decisions)."""
    n_round = len(U)
    failed, usable = [], []
    for a, b in ((0, n_round // 2), (n_round // 2, n_round)) if cfg.early_verify else ((0, n_round),):
        scored = list(evaluate(U[a:b]))
        failed += [bool(s.failed) for s in scored]
        usable += [bool(s.plausible and not s.model_error) for s in scored]
        if len(failed) < n_round and verification_decided(np.array(failed), np.array(usable), n_round, cfg):
            break
    f, p = np.array(failed), np.array(usable)
    n, k = int(p.sum()), int((f & p).sum())
    rate = k / n if n else None
    ok = n >= max(1, len(failed) // 4) and rate is not None and rate >= cfg.min_failure_rate
    return {"samples": len(failed), "n": n, "k": k, "rate": rate,
            "interval": list(wilson_interval(k, n, cfg.confidence)), "accepted": bool(ok)}


def simplify_modes(modes: list[dict], evaluate: Callable[[np.ndarray], Sequence], space: ParamSpace,
                   cfg: RegionConfig, seed: int) -> int:
    """Release weak and sliver constraints of `modes` (dicts from `FailureMode.to_dict`,
    changed in place) where fresh samples say they do not matter; `evaluate(U)` scores
    fresh samples (outside the budget and the log). A released box that overlaps other
    modes by `merge_overlap` absorbs them (the search's merge rule), so they leave the
    list. Adds `simplified` to every mode that had something to test. Returns the number
    of fresh evaluations."""
    spent = 0
    names = list(space.names)
    merged: set[int] = set()
    for m in modes:
        if m["id"] in merged:
            continue
        lo, hi = np.asarray(m["lo"], np.float64), np.asarray(m["hi"], np.float64)
        weak, slivers = release_candidates(lo, hi, space, cfg.bisection_tol)
        tries = _tries(weak, slivers)
        if not tries:
            continue
        tests: list[dict] = []
        released: list[int] = []
        for t, dims in enumerate(tries):
            if sum("skipped" not in x for x in tests) >= cfg.simplify:
                break
            lo2, hi2 = lo.copy(), hi.copy()
            lo2[dims], hi2[dims] = -1.0, 1.0
            if np.all(lo2 <= -1.0) and np.all(hi2 >= 1.0):
                tests.append({"released": [names[i] for i in dims], "skipped": "no constraint would be left"})
                continue
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x51A1, int(m["id"]), t]))
            res = _test(evaluate, rng.uniform(lo2, hi2, size=(cfg.verify_samples, len(lo2))), cfg)
            spent += res["samples"]
            tests.append({"released": [names[i] for i in dims], **res})
            if res["accepted"]:
                released = dims
                break
        info: dict = {"released": [names[i] for i in released],
                      "candidates": {"weak": [names[i] for i in weak], "slivers": [names[i] for i in slivers]},
                      "tests": tests}
        if released:
            info["searched"] = {"lo": lo.tolist(), "hi": hi.tolist(), "volume_fraction": m.get("volume_fraction"),
                                "constrained": m.get("constrained")}
            lo[released], hi[released] = -1.0, 1.0
            m["lo"], m["hi"] = lo.tolist(), hi.tolist()
            m["volume_fraction"] = math.exp(box_log_volume(lo, hi))
            if "constrained" in m:
                gone = {names[i] for i in released}
                m["constrained"] = {k: v for k, v in m["constrained"].items() if k not in gone}
            absorbed = [o for o in modes if o is not m and o["id"] not in merged and box_overlap(
                lo, hi, np.asarray(o["lo"]), np.asarray(o["hi"])) >= cfg.merge_overlap]
            for o in absorbed:
                merged.add(o["id"])
                m["members"] = list(m.get("members", [])) + list(o.get("members", []))
                m["agents"] = sorted(set(m.get("agents", [])) | set(o.get("agents", [])))
                m["errors"] = error_summary(list(m["errors"].get("values", [])) + list(o["errors"].get("values", [])))
            if absorbed:
                info["merged"] = [o["id"] for o in absorbed]
        m["simplified"] = info
    modes[:] = [m for m in modes if m["id"] not in merged]
    return spent


def revert_unconfirmed(modes: list[dict], searched: list[dict], min_rate: float,
                       confirm: Callable[[list[dict]], None]) -> None:
    """For every mode whose released box fails below `min_rate` on its confirmation
    samples, confirm the box the search found too (`confirm(mode_dicts)` adds
    "confirmed"; `searched` are the modes before `simplify_modes`) and put it back, with
    the modes the larger box had taken in, when it meets the standard: a release never
    turns a reliable mode into an unreliable one. When neither box meets it, the simpler
    one stays. Either way `simplified.searched.confirmed` records the searched box's
    confirmation. Changes `modes` in place (kept in id order)."""
    by_id = {m["id"]: m for m in searched}
    weak = [m for m in modes if (m.get("simplified") or {}).get("released")
            and (m.get("confirmed") or {}).get("rate") is not None and m["confirmed"]["rate"] < min_rate]
    if not weak:
        return
    backs = {m["id"]: [dict(by_id[m["id"]])] + [dict(by_id[i]) for i in m["simplified"].get("merged", [])]
             for m in weak}
    confirm([b for group in backs.values() for b in group])
    for m in weak:
        group = backs[m["id"]]
        s = m["simplified"]
        s["searched"]["confirmed"] = group[0]["confirmed"]
        rate = group[0]["confirmed"]["rate"]
        if rate is None or rate < min_rate:
            continue  # neither box meets the standard: the simpler one stays
        back = group[0]
        back["simplified"] = {k: v for k, v in s.items() if k not in ("searched", "merged")}
        back["simplified"]["released"] = []
        back["simplified"]["reverted"] = {"released": s["released"], "confirmed": m["confirmed"],
                                          "volume_fraction": m.get("volume_fraction")}
        modes[modes.index(m)] = back
        modes.extend(group[1:])
    modes.sort(key=lambda m: m["id"])
