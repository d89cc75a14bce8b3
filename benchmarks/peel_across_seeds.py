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

    python benchmarks/peel_across_seeds.py PEEL_SEED0 PEEL_SEED1

Prints each peel's stages (space, uniform failure rate, failures with their modes'
confirmed rates), then the failures of each peel found by the other."""
from __future__ import annotations

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


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[3].strip(), file=sys.stderr)
        return 2
    peels = [failures_of(p) for p in argv]
    for path, (state, fails) in zip(argv, peels):
        print(f"{path}: {len(state['stages'])} stage(s); ended: {state.get('ended')}")
        for s in state["stages"]:
            u = s.get("uniform") or {}
            share = f"{u['rate']:.0%} of {u['n']}" if u.get("rate") is not None else "-"
            print(f"  stage {s['stage']}: {s['space']}: uniform scenes failing {share}, {len(s['modes'])} mode(s)")
            for f in fails:
                if f["stage"] == s["stage"]:
                    rates = ", ".join("-" if r is None else f"{r:.0%}" for r in f["rates"])
                    print(f"    needs {f['text']}: modes {f['modes']} (confirmed {rates})")
    (_, fa), (_, fb) = peels
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
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
