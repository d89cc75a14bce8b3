"""Which failures two peels of the same model and space both found (`examiner peel`;
issue 15's "distinct modes, found with both seeds", counted by what the failures need).

A peel's stages search different spaces (each stage cuts away what the earlier ones'
failures need), so modes are compared in physical units, not in each stage's normalised
coordinates. A failure is a group of one stage's modes that need the same constraints
(examiner.search.importance.group_by_need), or a confirmed failure factor of a stage (a
condition on one dimension) that no such group of the stage holds; two failures of two
peels are the same when
they need the same dimensions and, on each, one's range lies in the other's for at least
half of its extent (a categorical dimension: they share a choice). Failures whose modes
need nothing alone are listed apart.

    python benchmarks/peel_across_seeds.py PEEL_SEED0 PEEL_SEED1 [--cross-test [--samples 200]]

Prints each peel's stages (space, uniform failure rate, failures with their modes'
confirmed rates), then the failures of each peel found by the other. With --cross-test,
each single condition one peel found and the other did not is tested directly in the
other peel's last stage space (`cross_seed_factors.py`'s test: --samples fresh scenes
with the condition, everything else uniform, against twice as many uniform scenes of that
space, one-sided Fisher, Holm across the conditions tested there); a confirmed one counts
as found with both seeds (benchmarks/RESULTS-world.md, "Peels with two new seeds")."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SAME = 0.5


def failures_of(peel_dir: str) -> tuple[dict, list[dict]]:
    """The peel's state and its failures: [{stage, dims: {name: (lo, hi) | set}, text,
    rates}]; a failure needing nothing alone has dims {}."""
    from examiner.search.importance import group_by_need, needs
    from reports.rundata import load_run
    from simulator.params import choices_in

    state = json.loads((Path(peel_dir) / "peel.json").read_text())
    out = []
    for s in state["stages"]:
        run = load_run(s["run"])
        rate = {m["rank"]: m.get("rate") for m in s["modes"]}
        tested = [m for m in run.modes if (m.get("importance") or {}).get("constraints")]
        for group in group_by_need(tested, run.space.names):
            dims = {}
            for d in needs(group[0], run.space.names):
                dim = run.space.dimensions[d]
                lo = min(float(m["lo"][d]) for m in group)
                hi = max(float(m["hi"][d]) for m in group)
                if dim.choices:
                    dims[dim.name] = set(choices_in(dim, lo, hi))
                else:
                    dims[dim.name] = (float(dim.to_physical(lo)), float(dim.to_physical(hi)))
            out.append({"stage": s["stage"], "dims": dims, "modes": [m["rank"] for m in group],
                        "rates": [rate.get(m["rank"]) for m in group],
                        "text": "; ".join(f"{x['dimension']} {x['box']}" for f in s["needs"]["failures"]
                                          if set(f["modes"]) == {m["rank"] for m in group} for x in f["dimensions"])})
        for m in tested:
            if not needs(m, run.space.names):
                out.append({"stage": s["stage"], "dims": {}, "modes": [m["rank"]], "rates": [rate.get(m["rank"])],
                            "text": "nothing alone"})
        # Confirmed failure factors: a condition on one dimension, tested on fresh samples.
        results = Path(s["run"]) / "results.json"
        factors = (json.loads(results.read_text()).get("factors") or {}).get("factors") or [] if results.is_file() else []
        for f in factors:
            if not f.get("confirmed") or f.get("dimension") not in run.space.names or f.get("lo_u") is None:
                continue
            dim = run.space.dimensions[run.space.names.index(f["dimension"])]
            reach = f.get("extended") or f  # as far in as it still fails more often
            rng = (set(choices_in(dim, f["lo_u"], f["hi_u"])) if dim.choices
                   else (float(dim.to_physical(reach["lo_u"])), float(dim.to_physical(reach["hi_u"]))))
            fail = {"stage": s["stage"], "dims": {dim.name: rng}, "modes": [],
                    "rates": [(f.get("fresh") or {}).get("rate")], "text": f"factor {reach['label']}"}
            if not any(same(fail, g) for g in out if g["stage"] == s["stage"]):
                out.append(fail)
    return state, out


def same(a: dict, b: dict) -> bool:
    if not a["dims"] or set(a["dims"]) != set(b["dims"]):
        return False
    for name, ra in a["dims"].items():
        rb = b["dims"][name]
        if isinstance(ra, set):
            if not ra & rb:
                return False
            continue
        inter = max(0.0, min(ra[1], rb[1]) - max(ra[0], rb[0]))
        if max(inter / max(ra[1] - ra[0], 1e-12), inter / max(rb[1] - rb[0], 1e-12)) < SAME:
            return False
    return True


def cross_test(mine: list[dict], other: list[dict], other_state: dict, samples: int, seed_offset: int) -> dict | None:
    """The single conditions of `mine` that `other` did not find, tested in the space of
    `other`'s last stage (clipped to it; a condition wholly outside it is left out and
    listed). None when there is nothing to test."""
    from examiner.search.factors import Condition, condition_label
    from failure_factors import confirm_on_run  # benchmarks/ (this script's folder)
    from reports.rundata import load_run

    run = load_run(other_state["stages"][-1]["run"])
    space = run.space
    conds, tested, outside = [], [], []
    for f in mine:
        if len(f["dims"]) != 1 or any(same(f, g) for g in other):
            continue
        (name, rng), = f["dims"].items()
        d = space.names.index(name)
        dim = space.dimensions[d]
        if dim.choices:
            picked = [i for i, c in enumerate(dim.choices) if c in rng]
            if not picked:
                outside.append(f)
                continue
            step = 2.0 / len(dim.choices)  # a run of choices: one slice from the first to the last
            lo, hi = -1.0 + step * min(picked), -1.0 + step * (max(picked) + 1)
        else:
            lo = max(-1.0, float(dim.to_normalised(max(rng[0], dim.low))))
            hi = min(1.0, float(dim.to_normalised(min(rng[1], dim.high))))
            if hi - lo < 1e-6:
                outside.append(f)
                continue
        conds.append(Condition(d, name, lo, hi, condition_label(space, d, lo, hi), 0, 1))
        tested.append(f)
    if not conds:
        return {"run": str(run.root), "record": None, "outside": outside, "held": []} if outside else None
    record = confirm_on_run(run, conds, samples, seed_offset, float("nan"))
    return {"run": str(run.root), "record": record, "outside": outside,
            "held": [f for f, x in zip(tested, record["factors"]) if x["confirmed"]]}


def touching(a: dict, b: dict) -> bool:
    """Two single conditions on the same continuous dimension whose ranges overlap or meet:
    one gradual condition cut in slices (truncation 0.15-0.19, then 0.19-0.35)."""
    if len(a["dims"]) != 1 or set(a["dims"]) != set(b["dims"]):
        return False
    (ra,), (rb,) = a["dims"].values(), b["dims"].values()
    if isinstance(ra, set):
        return bool(ra & rb)
    gap = max(ra[0], rb[0]) - min(ra[1], rb[1])
    return gap <= 0.02 * (max(ra[1], rb[1]) - min(ra[0], rb[0]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peels", nargs=2)
    ap.add_argument("--cross-test", action="store_true")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed-offset", type=int, default=2000, help="added to the run seed: samples differ from the run's")
    a = ap.parse_args(argv)
    peels = [failures_of(p) for p in a.peels]
    for path, (state, fails) in zip(a.peels, peels):
        print(f"{path}: {len(state['stages'])} stage(s); ended: {state.get('ended')}")
        for s in state["stages"]:
            u = s.get("uniform") or {}
            share = f"{u['rate']:.0%} of {u['n']}" if u.get("rate") is not None else "-"
            print(f"  stage {s['stage']}: {s['space']}: uniform scenes failing {share}, {len(s['modes'])} mode(s)")
            for f in fails:
                if f["stage"] == s["stage"]:
                    rates = ", ".join("-" if r is None else f"{r:.0%}" for r in f["rates"])
                    print(f"    needs {f['text']}: modes {f['modes']} (confirmed {rates})")
    (sa, fa), (sb, fb) = peels
    for label, mine, other in (("first", fa, fb), ("second", fb, fa)):
        distinct = [f for f in mine if f["dims"]]
        found = [f for f in distinct if any(same(f, g) for g in other)]
        print(f"{label}: {len(distinct)} distinct failure(s) by need or confirmed factor ({len(mine) - len(distinct)} "
              f"mode(s) needing nothing alone); found by the other peel: {len(found)}"
              + "".join(f"\n  stage {f['stage']}: {f['text']}" for f in found))
    # A failure whose rate rises gradually is cut slice by slice (truncation 0.19-0.35, then
    # 0.16-0.19): counted once per set of dimensions it needs.
    kinds = [{frozenset(f["dims"]) for f in fails if f["dims"]} for fails in (fa, fb)]
    print("by the dimensions they need: " + "; ".join(
        f"{label} {len(k)} ({', '.join(sorted(' + '.join(sorted(x)) for x in k))})"
        for label, k in zip(("first", "second"), kinds))
          + f"; in both: {len(kinds[0] & kinds[1])} ({', '.join(sorted(' + '.join(sorted(x)) for x in kinds[0] & kinds[1]))})")
    if a.cross_test:
        from failure_factors import print_record

        # Single conditions: found by both peels (matched), or confirmed in the other's space.
        held: list[dict] = []
        for f in fa:
            if len(f["dims"]) == 1 and any(same(f, g) for g in fb) and not any(touching(f, g) for g in held):
                held.append(f)
        for label, mine, other, other_state in (("first", fa, fb, sb), ("second", fb, fa, sa)):
            res = cross_test(mine, other, other_state, a.samples, a.seed_offset)
            if res is None:
                print(f"{label}'s conditions the other did not find, tested in its last space: none")
                continue
            print(f"{label}'s conditions the other did not find, tested in {res['run']}:")
            if res["outside"]:  # its range was cut by the other peel: a failure of that peel
                print("  outside that space (the other peel cut it, so found it): "
                      + "; ".join(f["text"] for f in res["outside"]))
            if res["record"]:
                print_record(res["run"], res["record"])
            held += [f for f in res["held"] + res["outside"] if not any(same(f, g) or touching(f, g) for g in held)]
        print(f"single conditions in both seeds (found by both, or confirmed in the other's space; a gradual one "
              f"cut in slices counted once): {len(held)}"
              + "".join(f"\n  {f['text']} (stage {f['stage']} of the {'first' if any(f is g for g in fa) else 'second'})"
                        for f in held))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
