"""Which failure modes two searches of the same model and space both found (issue 15's
"at least 2 modes found with both seeds").

Boxes from different seeds never coincide: each search grows its own box around its own
seed point, and dimensions the failure does not depend on end anywhere between slightly
and fully open. So two modes are compared only on the dimensions that define them: a
mode's *key* dimensions are those its box narrows to under `KEY_WIDTH` of the normalised
range (default 1.5 of 2, i.e. at least a quarter cut off). Mode B is *inside* mode A when
B's box lies in A's box on A's key dimensions for at least half of its extent (the product
over A's key dimensions of |A ∩ B| / |B|); A and B are the same failure when either is
inside the other (one can be a special case of the other: "cut off at the bottom, seen
from above" inside "a quarter or more cut off").

    python benchmarks/modes_across_seeds.py RUN_SEED0 RUN_SEED1

Prints every mode of both runs with its share of the space, failure rate and
description, the matrix of containment scores, the modes of the first run found by the
second, and the failure *factors* of each run: the posecodes that stand out in its modes
(results.json). Boxes of a noisy model can constrain 20-30 dimensions around one failing
neighbourhood and then match no box of another seed even when both say "a quarter or more
cut off"; the factors compare what the modes are about.

Runs with the constraint test (`region.importance`, examiner/search/importance.py) are
also compared by *what the failure needs*: a mode's needs are the constraints that matter
alone; two modes are the same failure by need when their needs are the same dimensions
and one's ranges lie in the other's for at least half of its extent. Printed: each run's
distinct failures by need (modes with no constraint that matters alone are counted
apart) and those found by both runs."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

KEY_WIDTH = float(os.environ.get("KEY_WIDTH", "1.5"))
SAME = 0.5


def modes_of(run_dir: str) -> list[dict]:
    from reports.rundata import load_run

    run = load_run(run_dir)
    desc, codes = {}, {}
    res = Path(run_dir) / "results.json"
    if res.is_file():
        described = json.loads(res.read_text()).get("modes", [])
        desc = {m["id"]: m.get("description", "") for m in described}
        codes = {m["id"]: list(m.get("posecodes") or []) for m in described}
    out = []
    for m in run.modes:
        lo, hi = np.asarray(m["lo"], float), np.asarray(m["hi"], float)
        from examiner.search.importance import needs

        out.append({"rank": m["rank"], "lo": lo, "hi": hi, "key": np.flatnonzero(hi - lo < KEY_WIDTH), "raw": m,
                    "needs": np.array(needs(m, run.space.names), dtype=int),
                    "tested": bool(m.get("importance")),
                    "share": float(m.get("volume_fraction") or 0.0), "rate": float(m["verified"]["rate"]),
                    "confirmed": (m.get("confirmed") or {}).get("rate"),
                    "description": desc.get(m["id"], ""), "posecodes": codes.get(m["id"], []),
                    "names": run.space.names})
    return out


def inside(b: dict, a: dict) -> float:
    """The share of B's extent, on A's key dimensions, that lies in A's box (1 when A has
    no key dimension)."""
    if not len(a["key"]):
        return 1.0
    k = a["key"]
    inter = np.clip(np.minimum(a["hi"][k], b["hi"][k]) - np.maximum(a["lo"][k], b["lo"][k]), 0.0, None)
    return float(np.prod(inter / np.maximum(b["hi"][k] - b["lo"][k], 1e-12)))


def same_need(a: dict, b: dict) -> bool:
    """examiner.search.importance.same_need on the modes' records."""
    from examiner.search.importance import same_need as same

    return same(a["raw"], b["raw"], a["names"])


def distinct_by_need(ms: list[dict]) -> list[list[dict]]:
    """examiner.search.importance.group_by_need on the modes' records."""
    from examiner.search.importance import group_by_need

    if not ms:
        return []
    by_id = {id(m["raw"]): m for m in ms}
    return [[by_id[id(r)] for r in g] for g in group_by_need([m["raw"] for m in ms], ms[0]["names"])]


def need_text(m: dict) -> str:
    return ", ".join(f"{m['names'][i]} [{m['lo'][i]:+.2f}, {m['hi'][i]:+.2f}]" for i in m["needs"])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[2].strip(), file=sys.stderr)
        return 2
    A, B = modes_of(argv[0]), modes_of(argv[1])
    for label, ms, d in (("first", A, argv[0]), ("second", B, argv[1])):
        print(f"{label}: {d}: {len(ms)} mode(s)")
        for m in ms:
            keys = ", ".join(f"{m['names'][i]} [{m['lo'][i]:+.2f}, {m['hi'][i]:+.2f}]" for i in m["key"])
            conf = f" (confirmed {m['confirmed']:.2f})" if m["confirmed"] is not None else ""
            print(f"  #{m['rank']} share {m['share']:.2e} fail {m['rate']:.2f}{conf}  {m['description']}\n      key: {keys or '-'}")
    score = np.array([[max(inside(b, a), inside(a, b)) for b in B] for a in A]) if A and B else np.zeros((len(A), len(B)))
    if A and B:
        print("\nsame-failure score (rows: first run's modes, columns: second's; >= 0.5 = the same failure):")
        print("      " + " ".join(f"#{b['rank']:<5}" for b in B))
        for a, row in zip(A, score):
            print(f"  #{a['rank']:<3} " + " ".join(f"{x:<6.2f}" for x in row))
    common = [a["rank"] for a, row in zip(A, score) if len(row) and row.max() >= SAME]
    print(f"\nmodes of the first run found by the second: {len(common)} of {len(A)} ({', '.join(f'#{r}' for r in common) or 'none'})")
    if any(m["tested"] for m in A + B):
        print("\nby what the failure needs (constraints that matter alone; modes needing nothing alone apart):")
        for label, ms in (("first", A), ("second", B)):
            groups = distinct_by_need(ms)
            none = [m["rank"] for m in ms if not len(m["needs"])]
            print(f"  {label}: {len(groups)} distinct failure(s)" + "".join(
                f"\n    modes {', '.join('#' + str(x['rank']) for x in g)}: needs {need_text(g[0])}" for g in groups)
                + (f"\n    needing nothing alone: {', '.join(f'#{r}' for r in none)}" if none else ""))
        both = [(a["rank"], b["rank"]) for a in A for b in B if same_need(a, b)]
        found = sorted({ra for ra, _ in both})
        print(f"  the first run's modes found by the second by need: {len(found)} of {len(A)}"
              + (f" ({', '.join(f'#{ra}~#{rb}' for ra, rb in both)})" if both else ""))
    fa, fb = ({c for m in ms for c in m["posecodes"]} for ms in (A, B))
    print(f"failure factors (posecodes that stand out in a mode, from results.json): first {sorted(fa)}; "
          f"second {sorted(fb)}; in both: {sorted(fa & fb) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
