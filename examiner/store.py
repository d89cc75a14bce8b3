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
`RunStore.open(..., repair=True)` truncates. Any other unparsable line is damage: opening
the run fails with the line number and `examiner runs repair DIR` (`repair_evaluations`),
which keeps a backup and drops only the unparsable lines. Evaluations logged after the
last checkpoint are replayed on resume (not re-evaluated, not re-logged).

Checkpoints are pickles, so they are signed: an HMAC-SHA256 with a key that this
installation creates under $POSEEXAMINER_HOME (`checkpoint.key`, mode 0600). A checkpoint
whose signature does not verify (from another machine, or crafted) is never unpickled.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import logging
import math
import os
import pickle
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from simulator.errors import PoseExaminerError

STORE_FORMAT = "poseexaminer-run"
STORE_VERSION = 1

META_FILE = "meta.json"
EVAL_FILE = "evaluations.jsonl"
MODES_FILE = "modes.json"
CHECKPOINT_FILE = "checkpoint.pkl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_MAGIC = b"POSEEXAMINER-CKPT-HMAC-SHA256\n"
KEY_FILE = "checkpoint.key"

log = logging.getLogger(__name__)


class StoreError(PoseExaminerError):
    """A run directory is missing, not a run, or damaged beyond a torn last line."""


def checkpoint_key() -> bytes:
    """This installation's checkpoint signing key ($POSEEXAMINER_HOME/checkpoint.key,
    32 random bytes, mode 0600), created on first use."""
    from simulator.paths import home

    path = home() / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile
        return _read_key(path)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
        f.flush()
        os.fsync(f.fileno())
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) < 32:
        raise StoreError(f"{path} is not a checkpoint key (too short); delete it (old checkpoints then no longer verify)")
    return key


def _signature(blob: bytes) -> bytes:
    return hmac.new(checkpoint_key(), blob, hashlib.sha256).digest()


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


def _parse_record(line: bytes) -> dict | None:
    """The record on one log line, or None when the line is torn or not a JSON object."""
    if not line.endswith(b"\n"):
        return None
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def _record_problem(r: dict, dim: int) -> str | None:
    """What makes a parsed record unusable for the EvaluationTable, or None."""
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731
    u = r.get("u")
    if not isinstance(u, list) or len(u) != dim or not all(num(x) for x in u):
        return f"'u' is not a list of {dim} numbers"
    for key in ("i", "round", "agent"):
        if not isinstance(r.get(key), int) or isinstance(r.get(key), bool):
            return f"{key!r} is not an integer"
    if r.get("job") is not None and (not isinstance(r["job"], int) or isinstance(r["job"], bool)):
        return "'job' is not an integer or null"
    for key in ("failed", "model_error", "plausible"):
        if not isinstance(r.get(key), bool):
            return f"{key!r} is not true/false"
    if not isinstance(r.get("phase"), str):
        return "'phase' is not a string"
    if r.get("error") is not None and not num(r["error"]):
        return "'error' is not a number or null"
    metrics = r.get("metrics")
    if metrics is not None and (not isinstance(metrics, dict) or not all(v is None or num(v) for v in metrics.values())):
        return "'metrics' is not an object of numbers"
    return None


def _importance_ok(imp: Any, num: Callable[[Any], bool]) -> bool:
    """The fields of a mode's constraint test (examiner.search.importance) that the report,
    the CLI and the fine-tuning sets read."""
    if not isinstance(imp, dict) or not isinstance(imp.get("constraints"), list):
        return False
    if not isinstance(imp.get("samples"), int) or not isinstance(imp.get("seed"), dict) \
            or not isinstance(imp["seed"].get("root"), int) or not isinstance(imp.get("inside"), dict) \
            or not num(imp["inside"].get("rate")) or not num(imp["inside"].get("n")):
        return False
    return all(isinstance(r, dict) and isinstance(r.get("dimension"), str) and isinstance(r.get("matters"), bool)
               and num(r.get("k")) and num(r.get("n")) for r in imp["constraints"])


def check_modes(modes: Sequence[dict], dim: int, where: str | Path) -> None:
    """StoreError unless every mode has an integer id, numeric lo/hi boxes of `dim`
    numbers and a `verified` object with a numeric (or null) rate."""
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)  # noqa: E731
    for m in modes:
        problem = None
        if not isinstance(m.get("id"), int) or isinstance(m.get("id"), bool):
            problem = f"mode id {m.get('id')!r} is not an integer"
        elif any(not isinstance(m.get(k), list) or len(m[k]) != dim or not all(num(x) for x in m[k]) for k in ("lo", "hi")):
            problem = f"mode {m['id']}: 'lo' / 'hi' are not lists of {dim} numbers"
        elif not isinstance(m.get("verified"), dict) or not (m["verified"].get("rate") is None or num(m["verified"]["rate"])):
            problem = f"mode {m['id']}: 'verified' has no numeric rate"
        elif m.get("importance") is not None and not _importance_ok(m["importance"], num):
            problem = (f"mode {m['id']}: 'importance' is not a constraint test (samples, seed.root, inside, and "
                       "constraints with dimension, matters, k and n)")
        if problem:
            raise StoreError(f"{where} is damaged ({problem}); rerun or resume the search to rewrite it")


def repair_evaluations(root: str | Path) -> dict[str, Any]:
    """Drop the unparsable lines of a run's evaluations.jsonl, keeping every parsable
    record in order; the original is kept as evaluations.jsonl.bak-<UTC timestamp>.
    Returns {"kept", "dropped", "lines", "backup"} (backup None when nothing changed)."""
    root = Path(root)
    path = root / EVAL_FILE
    if not (root / META_FILE).is_file() or not path.is_file():
        raise StoreError(f"{root} is not a run directory (no {META_FILE} / {EVAL_FILE}); check the path")
    raw = path.read_bytes()
    lines = raw.splitlines(keepends=True)
    kept = [ln for ln in lines if _parse_record(ln) is not None]
    dropped = [i + 1 for i, ln in enumerate(lines) if _parse_record(ln) is None]
    if not dropped:
        return {"kept": len(kept), "dropped": 0, "dropped_lines": [], "lines": len(lines), "backup": None}
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    backup = path.with_name(f"{EVAL_FILE}.bak-{stamp}")
    with open(backup, "xb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    atomic_write_bytes(path, b"".join(kept))
    return {"kept": len(kept), "dropped": len(dropped), "dropped_lines": dropped, "lines": len(lines),
            "backup": str(backup)}


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
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(f"{root / META_FILE} is not valid JSON; the run directory is damaged") from None
        if not isinstance(meta, dict):
            raise StoreError(f"{root / META_FILE} is not a JSON object; the run directory is damaged")
        if meta.get("format") != STORE_FORMAT or meta.get("format_version") != STORE_VERSION:
            raise StoreError(
                f"{root} has run-store format {meta.get('format')} v{meta.get('format_version')}; "
                f"this version reads {STORE_FORMAT} v{STORE_VERSION}"
            )
        space = meta.get("space")
        if space is not None and not (isinstance(space, dict) and isinstance(space.get("dimensions", []), list)):
            raise StoreError(f"{root / META_FILE}: 'space' is not a parameter-space object; the run directory is damaged")
        if not isinstance(meta.get("config", {}), dict):
            raise StoreError(f"{root / META_FILE}: 'config' is not an object; the run directory is damaged")
        good_bytes, n = cls._scan(root / EVAL_FILE)
        if repair and (root / EVAL_FILE).exists() and (root / EVAL_FILE).stat().st_size != good_bytes:
            log.warning("%s: dropping a torn last line (an append interrupted by a kill)", root / EVAL_FILE)
            with open(root / EVAL_FILE, "r+b") as f:
                f.truncate(good_bytes)
                f.flush()
                os.fsync(f.fileno())
        return cls(root, meta, n)

    @staticmethod
    def _scan(path: Path) -> tuple[int, int]:
        """(bytes of complete, parseable lines, their count). Only the last line may be
        torn (no newline: a kill mid-append); a complete line that does not parse is
        damage and raises StoreError naming the line and the repair command."""
        if not path.exists():
            return 0, 0
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not the evaluation log; the run directory is damaged")
        good = n = 0
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if _parse_record(line) is None:
                    if not line.endswith(b"\n"):
                        break  # the last line, torn by a kill mid-append
                    raise StoreError(
                        f"{path} line {lineno} is damaged (not a JSON record); repair with "
                        f"`examiner runs repair {path.parent}` (keeps a backup, drops only unparsable lines)"
                    )
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
                rec = _parse_record(line)
                if rec is None:  # changed on disk since open
                    raise StoreError(f"{self.root / EVAL_FILE} line {i + 1} is damaged; repair with "
                                     f"`examiner runs repair {self.root}`")
                yield rec

    def records(self) -> list[dict]:
        return list(self.iter_records())

    def evaluations(self) -> EvaluationTable:
        dim = len(self.metadata.get("space", {}).get("dimensions", [])) or 0
        recs = self.records()
        if recs and not dim:
            dim = len(recs[0]["u"]) if isinstance(recs[0].get("u"), list) else 0
        for k, r in enumerate(recs):
            problem = _record_problem(r, dim)
            if problem:
                raise StoreError(
                    f"{self.root / EVAL_FILE} line {k + 1} has a malformed record ({problem}); the run directory is "
                    "damaged"
                )
        return _table(recs, dim)

    # ---- modes, checkpoints, summary -----------------------------------------------------
    def write_modes(self, modes: Sequence[Mapping[str, Any]]) -> None:
        atomic_write_bytes(self.root / MODES_FILE, dumps({"modes": list(modes)}, indent=1).encode())

    def has_modes(self) -> bool:
        return (self.root / MODES_FILE).is_file()

    def modes(self) -> list[dict]:
        """The failure modes ([] before the first checkpoint); StoreError when modes.json
        is damaged (not JSON, not a list of objects). `check_modes` checks the fields."""
        path = self.root / MODES_FILE
        if not path.exists():
            return []
        try:
            modes = json.loads(path.read_text())["modes"]
            if not isinstance(modes, list) or not all(isinstance(m, dict) for m in modes):
                raise TypeError("'modes' is not a list of objects")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
            raise StoreError(f"{path} is damaged ({type(e).__name__}: {e}); rerun or resume the search to rewrite it") from None
        return modes

    def save_checkpoint(self, state: Any) -> None:
        """Persist `state`, signed with this installation's key; it must account for
        exactly the evaluations logged so far."""
        blob = pickle.dumps({"n_evaluations": self._n, "state": state}, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write_bytes(self.root / CHECKPOINT_FILE, CHECKPOINT_MAGIC + _signature(blob) + blob)

    def load_checkpoint(self) -> tuple[int, Any] | None:
        """(evaluation count, state) of the last checkpoint, or None before the first (or
        when it was written by a version of the code whose pickled classes have moved).

        The file is unpickled only when its HMAC verifies with this installation's key;
        otherwise StoreError (nothing from the file is executed)."""
        path = self.root / CHECKPOINT_FILE
        if not path.exists():
            return None
        raw = path.read_bytes()
        head = len(CHECKPOINT_MAGIC)
        sig, blob = raw[head:head + 32], raw[head + 32:]
        if not raw.startswith(CHECKPOINT_MAGIC) or len(sig) != 32 or not hmac.compare_digest(sig, _signature(blob)):
            raise StoreError(
                f"{path.name} is not signed by this installation; it was not loaded. Delete {path} to resume by "
                "replaying the evaluation log from the start (nothing logged is lost)"
            )
        try:
            data = pickle.loads(blob)
        except (ModuleNotFoundError, AttributeError):
            # Signed by us but pickled by a version whose classes lived elsewhere: a stale
            # shortcut, not damage. Without it the run replays its log from the start.
            return None
        except Exception:  # signed by us, so this is damage, not an attack
            raise StoreError(f"{path} is unreadable; delete it to replay the run from its start") from None
        if not isinstance(data, dict) or not isinstance(data.get("n_evaluations"), int):
            raise StoreError(f"{path} is unreadable; delete it to replay the run from its start")
        if data["n_evaluations"] > self._n:
            raise StoreError(f"{path} accounts for more evaluations than {EVAL_FILE} holds; the run directory is damaged")
        return int(data["n_evaluations"]), data["state"]

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write_bytes(self.root / SUMMARY_FILE, dumps(summary, indent=2).encode())

    def summary(self) -> dict | None:
        path = self.root / SUMMARY_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise StoreError(f"{path} is damaged (not valid JSON); resume the run to rewrite it") from None
        if not isinstance(data, dict):
            raise StoreError(f"{path} is damaged (not a JSON object); resume the run to rewrite it")
        return data

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
