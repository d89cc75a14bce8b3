"""Compare two folders of search runs (one subfolder per run, same names): every
evaluations.jsonl record and the values of results.json, modes.json and summary.json,
floats with tolerance TOL (default 1e-12; TOL=0 lists every bit difference), skipping
volatile keys (timings, wall times, dirs, dates). Used to check that a refactoring keeps
same seed -> same log:

    python benchmarks/compare_runs.py /tmp/ref-search /tmp/new-search
    TOL=0 SHOW=100000 python benchmarks/compare_runs.py /tmp/ref-search /tmp/new-search

Exit status 1 when anything differs."""
import json
import math
import os
import sys
from pathlib import Path

VOLATILE = {"timings", "wall_time_s", "elapsed_s", "generated", "created", "dir", "t", "time", "seconds",
            "wall_s", "updated", "started", "finished", "path", "report", "out"}
TOL = float(os.environ.get("TOL", "1e-12"))

def walk(a, b, where, diffs):
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            diffs.append((where, f"keys differ: -{sorted(set(a)-set(b))} +{sorted(set(b)-set(a))}"))
        for k in set(a) & set(b):
            if k in VOLATILE:
                continue
            walk(a[k], b[k], f"{where}.{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append((where, f"len {len(a)} != {len(b)}"))
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{where}[{i}]", diffs)
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            diffs.append((where, f"{a!r} != {b!r}"))
        elif math.isnan(a) and math.isnan(b):
            pass
        elif abs(a - b) > TOL:
            diffs.append((where, f"{a!r} != {b!r} (abs diff {abs(a-b):.3g})"))
    elif a != b:
        if isinstance(a, str) and isinstance(b, str) and (str(ref) in a or str(new) in a):
            return
        diffs.append((where, f"{a!r} != {b!r}"[:200]))

def load_jsonl(p):
    return [json.loads(l) for l in open(p) if l.strip()]

ref, new = Path(sys.argv[1]), Path(sys.argv[2])
total = 0
for run in sorted(p.name for p in ref.iterdir() if p.is_dir()):
    diffs = []
    walk(load_jsonl(ref / run / "evaluations.jsonl"), load_jsonl(new / run / "evaluations.jsonl"), f"{run}/evaluations.jsonl", diffs)
    for f in ("results.json", "modes.json", "summary.json"):
        if (ref / run / f).exists():
            walk(json.load(open(ref / run / f)), json.load(open(new / run / f)), f"{run}/{f}", diffs)
    n = len(load_jsonl(ref / run / "evaluations.jsonl"))
    print(f"{run}: {n} evaluations, {len(diffs)} differences")
    for w, d in diffs[:int(os.environ.get("SHOW", "15"))]:
        print("   ", w, d)
    total += len(diffs)
print("TOTAL differences:", total)
sys.exit(1 if total else 0)
