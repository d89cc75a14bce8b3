"""Append-only run store: every evaluation, the run's metadata, failure modes and
checkpoints, in a directory that survives `kill -9` at any moment.

Layout (docs/run_store.md has the full format):

    RUN_DIR/
      meta.json            run metadata (written once, atomically)
      evaluations.jsonl    one JSON object per evaluation, appended + fsynced per round
      modes.json           failure modes (replaced atomically)
      checkpoint.pkl       strategy/agent state + the evaluation count it accounts for
      summary.json         written when the run ends

Crash safety: a round's records go out in one `write` followed by `fsync`, and a
checkpoint is written to a temporary file, fsynced and renamed over the old one (then the
directory is fsynced). A kill can therefore leave at most a torn last line, which
`RunStore.open(..., repair=True)` truncates. Evaluations logged after the last checkpoint
are replayed on resume (not re-evaluated, not re-logged).
"""

from __future__ import annotations

import json
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from simulator.errors import PoseExaminerError

STORE_FORMAT = "poseexaminer-run"
STORE_VERSION = 1

META_FILE = "meta.json"
EVAL_FILE = "evaluations.jsonl"
MODES_FILE = "modes.json"
CHECKPOINT_FILE = "checkpoint.pkl"
SUMMARY_FILE = "summary.json"


class StoreError(PoseExaminerError):
    """A run directory is missing, not a run, or damaged beyond a torn last line."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old or the new file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _jsonable(x: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN); numpy scalars become Python."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def dumps(x: Any, **kw: Any) -> str:
    return json.dumps(_jsonable(x), allow_nan=False, **kw)


@dataclass
class EvaluationTable:
    """All evaluations of a run as columns. N evaluations, D dimensions.

    u: (N, D) float64 normalised vectors; error: (N,) float64 (NaN for model errors);
    failed, model_error, plausible: (N,) bool; agent, index, round: (N,) int64;
    phase: (N,) str ("search", "probe", "bisect", "verify"); job: (N,) int64 (-1 for
    search evaluations); metrics: name -> (N,) float64; records: the raw dicts (with
    "params", the SceneParams dict, and "timings").
    """

    u: np.ndarray
    error: np.ndarray
    failed: np.ndarray
    model_error: np.ndarray
    plausible: np.ndarray
    agent: np.ndarray
    index: np.ndarray
    round: np.ndarray
    phase: np.ndarray
    job: np.ndarray
    metrics: dict[str, np.ndarray]
    records: list[dict]

    def __len__(self) -> int:
        return len(self.records)


def _table(records: Sequence[dict], dim: int) -> EvaluationTable:
    n = len(records)
    f = lambda key, default=np.nan: np.array(  # noqa: E731
        [default if r.get(key) is None else r[key] for r in records], dtype=np.float64
    )
    metric_names = sorted({k for r in records for k in (r.get("metrics") or {})})
    metrics = {
        m: np.array([np.nan if (r.get("metrics") or {}).get(m) is None else r["metrics"][m] for r in records], dtype=np.float64)
        for m in metric_names
    }
    return EvaluationTable(
        u=np.array([r["u"] for r in records], dtype=np.float64).reshape(n, dim),
        error=f("error"),
        failed=np.array([bool(r["failed"]) for r in records], dtype=bool),
        model_error=np.array([bool(r["model_error"]) for r in records], dtype=bool),
        plausible=np.array([bool(r["plausible"]) for r in records], dtype=bool),
        agent=np.array([r["agent"] for r in records], dtype=np.int64),
        index=np.array([r["i"] for r in records], dtype=np.int64),
        round=np.array([r["round"] for r in records], dtype=np.int64),
        phase=np.array([r["phase"] for r in records], dtype=str),
        job=np.array([-1 if r.get("job") is None else r["job"] for r in records], dtype=np.int64),
        metrics=metrics,
        records=list(records),
    )


class RunStore:
    """A run directory. `create` starts one, `open` reads (and with repair=True, fixes a
    torn tail of) an existing one.

    >>> store = RunStore.open("runs/r1")          # doctest: +SKIP
    >>> table = store.evaluations()                # numpy columns
    >>> store.metadata["config"], store.modes()    # dicts
    """

    def __init__(self, root: Path, meta: dict, n_evaluations: int) -> None:
        self.root = Path(root)
        self.metadata = meta
        self._n = n_evaluations
        self._fh = None

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, meta: Mapping[str, Any]) -> "RunStore":
        root = Path(root)
        if (root / META_FILE).exists() or (root / EVAL_FILE).exists():
            raise StoreError(f"{root} already holds a run; resume it with --resume {root} or choose another --out")
        root.mkdir(parents=True, exist_ok=True)
        meta = {"format": STORE_FORMAT, "format_version": STORE_VERSION, **meta}
        (root / EVAL_FILE).touch()
        fsync_dir(root)
        atomic_write_bytes(root / META_FILE, dumps(meta, indent=2).encode())
        return cls(root, meta, 0)

    @classmethod
    def open(cls, root: str | Path, repair: bool = False) -> "RunStore":
        """Open an existing run. A torn last line (a kill mid-append) is ignored, or with
        repair=True truncated away so appends continue cleanly."""
        root = Path(root)
        if not (root / META_FILE).is_file():
            raise StoreError(f"{root} is not a run directory (no {META_FILE}); check the path or start a new run")
        try:
            meta = json.loads((root / META_FILE).read_text())
        except json.JSONDecodeError:
            raise StoreError(f"{root / META_FILE} is not valid JSON; the run directory is damaged") from None
        if meta.get("format") != STORE_FORMAT or meta.get("format_version") != STORE_VERSION:
            raise StoreError(
                f"{root} has run-store format {meta.get('format')} v{meta.get('format_version')}; "
                f"this version reads {STORE_FORMAT} v{STORE_VERSION}"
            )
        good_bytes, n = cls._scan(root / EVAL_FILE)
        if repair and (root / EVAL_FILE).exists() and (root / EVAL_FILE).stat().st_size != good_bytes:
            with open(root / EVAL_FILE, "r+b") as f:
                f.truncate(good_bytes)
                f.flush()
                os.fsync(f.fileno())
        return cls(root, meta, n)

    @staticmethod
    def _scan(path: Path) -> tuple[int, int]:
        """(bytes of complete, parseable lines, their count). Stops at the first torn
        line; a torn line can only be the last one written."""
        if not path.exists():
            return 0, 0
        good = n = 0
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    break
                good += len(line)
                n += 1
        return good, n

    # ---- evaluations ----------------------------------------------------------------------
    @property
    def n_evaluations(self) -> int:
        return self._n

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records (one round) durably: one write, flush, fsync."""
        lines = "".join(dumps(r) + "\n" for r in records)
        if not lines:
            return
        if self._fh is None:
            self._fh = open(self.root / EVAL_FILE, "ab")
        self._fh.write(lines.encode())
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._n += lines.count("\n")

    def iter_records(self) -> Iterable[dict]:
        with open(self.root / EVAL_FILE, "rb") as f:
            for i, line in enumerate(f):
                if i >= self._n:
                    break
                yield json.loads(line)

    def records(self) -> list[dict]:
        return list(self.iter_records())

    def evaluations(self) -> EvaluationTable:
        dim = len(self.metadata.get("space", {}).get("dimensions", [])) or 0
        recs = self.records()
        if recs and not dim:
            dim = len(recs[0]["u"])
        return _table(recs, dim)

    # ---- modes, checkpoints, summary -----------------------------------------------------
    def write_modes(self, modes: Sequence[Mapping[str, Any]]) -> None:
        atomic_write_bytes(self.root / MODES_FILE, dumps({"modes": list(modes)}, indent=1).encode())

    def modes(self) -> list[dict]:
        path = self.root / MODES_FILE
        if not path.exists():
            return []
        return json.loads(path.read_text())["modes"]

    def save_checkpoint(self, state: Any) -> None:
        """Persist `state`; it must account for exactly the evaluations logged so far."""
        blob = pickle.dumps({"n_evaluations": self._n, "state": state}, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write_bytes(self.root / CHECKPOINT_FILE, blob)

    def load_checkpoint(self) -> tuple[int, Any] | None:
        """(evaluation count, state) of the last checkpoint, or None before the first."""
        path = self.root / CHECKPOINT_FILE
        if not path.exists():
            return None
        try:
            data = pickle.loads(path.read_bytes())
        except Exception:  # a checkpoint is only ever replaced atomically; this is damage
            raise StoreError(f"{path} is unreadable; delete it to replay the run from its start") from None
        if data["n_evaluations"] > self._n:
            raise StoreError(f"{path} accounts for more evaluations than {EVAL_FILE} holds; the run directory is damaged")
        return int(data["n_evaluations"]), data["state"]

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write_bytes(self.root / SUMMARY_FILE, dumps(summary, indent=2).encode())

    def summary(self) -> dict | None:
        path = self.root / SUMMARY_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
