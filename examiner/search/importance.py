"""What matters in a failure mode: each of its constraints tested on its own.

A verified box says "the model fails here"; it does not say which of its constraints the
failure needs. A grown box on a real model bounds many dimensions (MediaPipe's modes in
the default space: 2 to 29), and a reader who wants to act (collect or render more data of
this kind, fix a preprocessing step) needs to know which one or two carry it. After the
search, simplification and confirmation, each constraint of each mode is tested alone:

- `samples` fresh scenes uniform in the box except that this one dimension is drawn
  uniformly *outside* its interval (over the rest of its range; a choice dimension: over
  the choices the box leaves out), from its own generator seeded by the run seed, the mode
  id and the dimension, outside the budget and the log, judged like every evaluation;
- against the mode's own fresh samples inside the box (its confirmation; the verification
  round when the run has none), a one-sided Fisher exact test that the model fails less
  often outside. Screen, then retest: a box bounds up to ~30 dimensions, and a Holm
  correction over all of them leaves 12 samples the power to see only the largest drops.
  So every constraint whose first `samples` give p < `SCREEN_P` (at most `MAX_RETEST`
  per mode, the lowest p first) is retested on `RETEST_FACTOR * samples` new ones,
  judged on those alone and Holm-adjusted over the retested constraints of the mode (the
  screen picks what to retest, the retest decides; no sample does both). A
  constraint *matters* when its adjusted retest p-value is below `alpha`.

The constraints are then ranked by the failure rate outside over all their samples
(lowest first: the condition without which the model stops failing). A constraint that does not matter alone can still
matter together with others (each costs a few points and the box sits at the standard's
edge; docs/search.md, "Simplification"): "does not matter alone" is what it says, not that
the box could do without it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from examiner.search.factors import holm, tally
from simulator.params import ParamSpace

_TAG = 0x1A9C  # SeedSequence tag of the importance samples (confirmation 0xC0F1, factors 0xFAC7)
_EPS = 1e-9
SCREEN_P = 0.25  # a constraint whose first samples give p below this is retested on fresh ones
# The retest draws RETEST_FACTOR x samples: with 12, a truncation-only mode failing 82% inside
# and ~45% outside (the space's rate) missed p < 0.05 (8 of 12 outside); 24 has the power.
RETEST_FACTOR = 2
# At most this many constraints of a mode are retested (the lowest screen p first): Holm over
# the retested divides alpha among them, and a mode failing 95% inside lets nearly every
# constraint through a p < 0.25 screen (the demo's mode: 9, which left its strongest, retest
# p 0.008, at 0.07 adjusted). No mode measured had more than 2 constraints that matter alone.
MAX_RETEST = 4


def constrained_dims(space: ParamSpace, lo: np.ndarray, hi: np.ndarray) -> list[int]:
    """Indices of the dimensions the box constrains (a choice dimension: leaves out a choice)."""
    out = []
    for i, d in enumerate(space.dimensions):
        if d.choices:
            if _outside_choices(len(d.choices), lo[i], hi[i]):
                out.append(i)
        elif lo[i] > -1.0 + _EPS or hi[i] < 1.0 - _EPS:
            out.append(i)
    return out


def _choice_index(u: float, n: int) -> int:
    return min(max(int((u + 1.0) / 2.0 * n), 0), n - 1)


def _outside_choices(n: int, lo: float, hi: float) -> list[int]:
    a, b = _choice_index(lo, n), _choice_index(hi, n)
    return [j for j in range(n) if j < a or j > b]


def outside_samples(space: ParamSpace, lo: np.ndarray, hi: np.ndarray, d: int, n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """n points uniform in the box [lo, hi] except dimension d, uniform outside its interval."""
    U = rng.uniform(lo, hi, size=(n, len(lo)))
    dim = space.dimensions[d]
    if dim.choices:
        c = len(dim.choices)
        j = rng.choice(np.asarray(_outside_choices(c, lo[d], hi[d])), size=n)
        U[:, d] = -1.0 + 2.0 * (j + rng.uniform(0.0, 1.0, size=n)) / c
    else:
        left, right = max(lo[d] + 1.0, 0.0), max(1.0 - hi[d], 0.0)
        t = rng.uniform(0.0, left + right, size=n)
        U[:, d] = np.where(t < left, -1.0 + t, hi[d] + (t - left))
    return np.clip(U, -1.0, 1.0)


def sample_rng(seed: int, mode_id: int, d: int) -> np.random.Generator:
    """The generator of one constraint's samples (the report regenerates them from it)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _TAG, int(mode_id), int(d)]))


def inside_counts(mode: dict) -> dict[str, Any] | None:
    """The mode's fresh samples in its box: the confirmation, else the verification round."""
    for basis in ("confirmed", "verified"):
        c = mode.get(basis) or {}
        if c.get("n"):
            return {"basis": basis, "n": int(c["n"]), "k": int(c["k"]), "rate": c["k"] / c["n"]}
    return None


def _fisher_less(inside: dict, k: int, n: int) -> float:
    """One-sided Fisher exact p-value that the model fails less often outside (k of n)
    than inside."""
    from scipy.stats import fisher_exact

    if not n:
        return 1.0
    table = [[inside["k"], inside["n"] - inside["k"]], [k, n - k]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def _outcomes(part: Sequence) -> list[list]:
    """Per sample, for the report's contrast pictures: failed (None: not usable), metric."""
    return [[bool(x.failed) if x.plausible and not x.model_error else None,
             float(x.value) if math.isfinite(float(x.value)) else None] for x in part]


def _to_retest(tests: list[dict], screen: float) -> list[dict]:
    """Per mode, the constraints whose screen gave p < screen, at most MAX_RETEST of them
    (the lowest screen p first, ties by dimension), in the tests' order."""
    keep: set[int] = set()
    for m in {id(t["mode"]): t["mode"] for t in tests}.values():
        mine = [(t["screen"]["p_value"], t["d"], i) for i, t in enumerate(tests)
                if t["mode"] is m and t["screen"]["p_value"] < screen]
        keep.update(i for _, _, i in sorted(mine)[:MAX_RETEST])
    return [t for i, t in enumerate(tests) if i in keep]


def drawn(imp: dict) -> int:
    """How many samples a constraint's generator drew (screen + retest; runs before the
    retest was doubled drew 2 x samples)."""
    return int(imp["samples"]) + int(imp.get("retest_samples") or imp["samples"])


def rank_constraints(modes: list[dict], evaluate: Callable[[np.ndarray], Sequence], space: ParamSpace,
                     samples: int, seed: int, alpha: float = 0.05, screen: float = SCREEN_P) -> int:
    """Test every constraint of every mode alone (module docstring: screen on `samples`
    fresh samples, retest the screened ones on RETEST_FACTOR x `samples` more) and add
    `importance` to each mode dict (changed in place); one batch per stage for all modes.
    Returns the number of fresh evaluations."""
    retest_n = RETEST_FACTOR * samples
    names = list(space.names)
    tests: list[dict] = []
    for m in modes:
        lo, hi = np.asarray(m["lo"], np.float64), np.asarray(m["hi"], np.float64)
        inside = inside_counts(m)
        for d in (constrained_dims(space, lo, hi) if inside else []):
            U = outside_samples(space, lo, hi, d, samples + retest_n, sample_rng(seed, int(m["id"]), d))
            tests.append({"mode": m, "d": d, "U": U, "inside": inside, "scored": []})
    if not tests:
        return 0
    spent = 0
    for stage in (0, 1):
        todo = tests if stage == 0 else _to_retest(tests, screen)
        if not todo:
            break
        a, b = (0, samples) if stage == 0 else (samples, samples + retest_n)
        scored = list(evaluate(np.concatenate([t["U"][a:b] for t in todo])))
        spent += len(scored)
        for i, t in enumerate(todo):
            part = scored[i * (b - a):(i + 1) * (b - a)]
            t["scored"] += part
            c = tally(part)
            t["screen" if stage == 0 else "retest"] = {"n": c["n"], "k": c["k"],
                                                      "p_value": _fisher_less(t["inside"], c["k"], c["n"])}
    for m in modes:
        mine = [t for t in tests if t["mode"] is m]
        if not mine:
            continue
        retested = [t for t in mine if "retest" in t]
        for t, p_adj in zip(retested, holm([t["retest"]["p_value"] for t in retested])):
            t["retest"]["p_adjusted"] = p_adj
        rows = []
        for t in mine:
            r = t.get("retest")
            rows.append({"dimension": names[t["d"]], **tally(t["scored"]), "screen": t["screen"], "retest": r,
                         "p_value": (r or t["screen"])["p_value"], "p_adjusted": r["p_adjusted"] if r else 1.0,
                         "matters": bool(r is not None and r["p_adjusted"] < alpha), "outcomes": _outcomes(t["scored"])})
        rows.sort(key=lambda r: (not r["matters"], math.inf if r["rate"] is None else r["rate"], r["p_value"]))
        m["importance"] = {
            "samples": samples, "retest_samples": retest_n, "alpha": alpha, "screen": screen,
            "inside": mine[0]["inside"], "constraints": rows,
            "test": (f"one-sided Fisher exact (fails less often outside than inside): {samples} samples each, "
                     f"p < {screen:g} (at most {MAX_RETEST}, lowest first) retested on {retest_n} more, "
                     f"Holm over the retested"),
            "seed": {"root": int(seed), "tag": _TAG,
                     "method": "SeedSequence([seed, tag, mode id, dimension index]); samples + retest_samples drawn, "
                               "the first samples for the screen, the rest for the retest"},
        }
    return spent


def importance_order(mode: dict) -> dict[str, int]:
    """Dimension name -> rank in the mode's importance test ({} for modes without one)."""
    rows = (mode.get("importance") or {}).get("constraints") or []
    return {r["dimension"]: i for i, r in enumerate(rows)}


POSE_CHANGE_SAMPLES = 64
POSE_GROUPS = ("pose", "posture")  # the groups whose dimensions a reader sees only as latents
POSE_CHANGE_MIN_DEGREES = 10.0


def pose_change(space: ParamSpace, lo: np.ndarray, hi: np.ndarray, d: int, seed: int, mode_id: int,
                n: int = POSE_CHANGE_SAMPLES, top: int = 3,
                min_degrees: float = POSE_CHANGE_MIN_DEGREES) -> list[dict[str, Any]]:
    """What a constraint does to the body, for dimensions a reader cannot picture (a pose
    prior's latent): n scenes outside dimension d's range (the rest uniform in the box,
    as the test draws them) paired with the same scenes with d drawn inside it; the mean
    paired difference of each joint angle, inside minus outside, in degrees. Returns up to
    `top` angles that change by at least `min_degrees` on average, largest first
    ([{"dof", "degrees"}]; [] for a dimension outside POSE_GROUPS or one that does not
    move the pose). Decoding only, no rendering; deterministic given the seed, mode id and
    dimension."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if space.dimensions[d].choices or space.dimensions[d].group not in POSE_GROUPS:
        return []
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _TAG, int(mode_id), int(d), 0x90E]))
    U_out = outside_samples(space, lo, hi, d, n, rng)
    U_in = U_out.copy()
    U_in[:, d] = rng.uniform(lo[d], hi[d], size=n)

    def angles(U: np.ndarray) -> tuple[list[str], np.ndarray]:
        scenes = space.to_params_batch(U)
        names = list(scenes[0].pose)
        return names, np.array([[p.pose[k] for k in names] for p in scenes], np.float64)

    names, a_in = angles(U_in)
    _, a_out = angles(U_out)
    diff = np.degrees(np.mean(a_in - a_out, axis=0))
    order = np.argsort(-np.abs(diff))
    return [{"dof": names[i], "degrees": round(float(diff[i]), 1)} for i in order[:top]
            if abs(diff[i]) >= min_degrees]


def dof_words(dof: str) -> str:
    """'l_knee_flexion' -> 'left knee flexion'; 'root_pitch' -> 'body pitch'."""
    side = {"l": "left", "r": "right", "root": "body"}
    head, _, rest = dof.partition("_")
    return " ".join([side.get(head, head)] + rest.split("_")) if rest else dof


def pose_change_text(change: Sequence[dict]) -> str:
    """'left knee flexion +35°, right hip flexion -21°' ('' for no change)."""
    return ", ".join(f"{dof_words(c['dof'])} {c['degrees']:+.0f}°" for c in change)


SAME_NEED = 0.5


def needs(mode: dict, names: Sequence[str]) -> list[int]:
    """Indices of the dimensions whose constraint matters alone in the mode's test
    (sorted; [] for a mode without a test or needing nothing alone)."""
    rows = (mode.get("importance") or {}).get("constraints") or []
    return sorted(list(names).index(r["dimension"]) for r in rows if r["matters"] and r["dimension"] in names)


def need_box(mode: dict, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The mode's need region: its box with every constraint that does not matter alone
    released to the whole range (the box itself for a mode needing nothing alone, or
    without a test). Scenes drawn here have what the failure needs and vary in everything
    else, instead of repeating the one neighbourhood the search grew the box in."""
    lo, hi = np.asarray(mode["lo"], np.float64).copy(), np.asarray(mode["hi"], np.float64).copy()
    keep = needs(mode, names)
    if keep:
        free = np.setdiff1d(np.arange(len(lo)), keep)
        lo[free], hi[free] = -1.0, 1.0
    return lo, hi


def _inside_on(b: dict, a: dict, dims: Sequence[int]) -> float:
    """The share of B's extent on `dims` that lies in A's box."""
    d = np.asarray(dims, dtype=int)
    alo, ahi = np.asarray(a["lo"], float)[d], np.asarray(a["hi"], float)[d]
    blo, bhi = np.asarray(b["lo"], float)[d], np.asarray(b["hi"], float)[d]
    inter = np.clip(np.minimum(ahi, bhi) - np.maximum(alo, blo), 0.0, None)
    return float(np.prod(inter / np.maximum(bhi - blo, 1e-12)))


def same_need(a: dict, b: dict, names: Sequence[str]) -> bool:
    """Two modes are the same failure by what it needs: the same non-empty set of
    constraints that matter alone, and on those dimensions one box lies in the other for
    at least SAME_NEED of its extent (boxes of one failure grown from different points pin
    different dimensions the failure does not need, so whole boxes rarely coincide)."""
    na, nb = needs(a, names), needs(b, names)
    if not na or na != nb:
        return False
    return max(_inside_on(b, a, na), _inside_on(a, b, na)) >= SAME_NEED


def group_by_need(modes: Sequence[dict], names: Sequence[str]) -> list[list[dict]]:
    """The modes grouped into failures by what they need (single linkage on `same_need`),
    in the order of their first mode; modes needing nothing alone are left out."""
    groups: list[list[dict]] = []
    for m in modes:
        if not needs(m, names):
            continue
        hit = [g for g in groups if any(same_need(m, x, names) for x in g)]
        if not hit:
            groups.append([m])
            continue
        first = groups.index(hit[0])
        merged = [x for g in hit for x in g] + [m]
        groups = [g for g in groups if g not in hit]
        groups.insert(min(first, len(groups)), merged)
    return groups
