"""Subprocess worker targets: the model runs in its own Python environment and speaks the
frame protocol of ``simulator.worker_protocol`` (worker side for users:
``runtime/pe_worker.py``) on stdin/stdout (no network ports).

Failure handling, per batch: a crash (process exits), hang (no reply within
``timeout_s``), protocol garbage (bad frame) or wrong output shapes restart the worker; with
``isolate_failures`` the batch is then retried one image at a time, so only the images
that break the model are recorded as failures. Nothing here raises for model
misbehaviour after a successful start; a worker that cannot start at all is a
configuration error (`TargetError`).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np

from examiner.conventions import get_convention, user_convention
from examiner.targets.base import (
    FAILURE_KINDS,
    ModelFailure,
    Prediction,
    TargetBatch,
    TargetError,
    TargetModel,
    check_prediction,
    concat_predictions,
)
from simulator.worker_protocol import WorkerFailure, WorkerProcess, WorkerSpec  # noqa: F401 - re-exported

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"


class WorkerTarget(TargetModel):
    """A target served by a worker process (``worker:NAME``, ``cmd:"..."``, ``mediapipe``)."""

    def __init__(self, spec: WorkerSpec, runtime_dir: Path = RUNTIME_DIR, isolate_failures: bool = True) -> None:
        self.spec = spec
        self.name = spec.name
        self.isolate_failures = isolate_failures
        self.restarts = 0
        self._worker = WorkerProcess(spec, runtime_dir)
        try:
            hello = self._worker.start()
        except WorkerFailure as e:
            self._worker.kill()
            raise TargetError(f"worker {spec.name!r} failed to start ({e.kind}): {e.message}") from None
        self._apply_hello(hello)

    def _apply_hello(self, hello: dict[str, Any]) -> None:
        conv = hello.get("convention")
        if hello.get("joint_names"):
            conv = conv or f"{self.name}-joints"
            user_convention(conv, hello["joint_names"], hello.get("joint_map"))
        try:
            get_convention(conv)
        except Exception as e:
            self._worker.kill()
            raise TargetError(f"worker {self.name!r}: {e}") from None
        self.convention = conv
        self.outputs = frozenset(hello.get("outputs", ("joints2d", "joints3d")))
        self.frame = hello.get("frame", "root_relative")
        self.max_batch = int(hello.get("max_batch", 16))

    @property
    def pid(self) -> int | None:
        return self._worker.pid

    def _restart(self) -> None:
        self._worker.kill()
        self.restarts += 1
        self._worker.start()

    def _run(self, batch: TargetBatch) -> Prediction:
        """One request; raises WorkerFailure for anything that needs a restart."""
        meta, out = self._worker.request(
            {"images": batch.images, "K": batch.K, "boxes": batch.boxes}, self.spec.timeout_s
        )
        n = len(batch)
        if not meta.get("ok", False):
            msg = str(meta.get("error", "worker reported an error"))
            return Prediction.all_failed(self, n, ModelFailure("exception", msg))
        failures: list[ModelFailure | None] = [None] * n
        errors = out.get("errors")
        if errors is not None:
            errors = np.asarray(errors).reshape(-1)
            if errors.shape != (n,):
                raise WorkerFailure("shape", f"errors has {errors.shape[0]} entries for {n} images")
            for i, e in enumerate(errors):
                e = str(e)
                if e:
                    kind = e if e in FAILURE_KINDS else "exception"
                    failures[i] = ModelFailure(kind, e)
        pred = Prediction(
            convention=self.convention,
            joints3d=out.get("joints3d"),
            joints2d=out.get("joints2d"),
            frame=str(meta.get("frame", self.frame)),
            vertices=out.get("vertices"),
            confidence=out.get("confidence"),
            failures=failures,
            inference_seconds=float(meta.get("seconds", 0.0)),
        )
        checked = check_prediction(self, pred, n)
        batch_level = checked.failures and all(f is not None and f.kind == "shape" for f in checked.failures)
        if batch_level:
            raise WorkerFailure("shape", checked.failures[0].message)  # type: ignore[index, union-attr]
        return checked

    def predict(self, batch: TargetBatch) -> Prediction:
        n = len(batch)
        try:
            return self._run(batch)
        except WorkerFailure as e:
            first = e
        # The worker broke on this batch: restart, then (optionally) find the culprits.
        if not self._try_restart():
            return Prediction.all_failed(self, n, ModelFailure(first.kind, first.message))
        if n == 1 or not self.isolate_failures:
            return Prediction.all_failed(self, n, ModelFailure(first.kind, first.message))
        parts = []
        for i in range(n):
            try:
                parts.append(self._run(batch.subset([i])))
            except WorkerFailure as e:
                parts.append(Prediction.all_failed(self, 1, ModelFailure(e.kind, e.message)))
                if not self._try_restart():
                    rest = n - i - 1
                    if rest:
                        parts.append(
                            Prediction.all_failed(self, rest, ModelFailure("crash", "worker could not be restarted"))
                        )
                    break
        return concat_predictions(parts)

    def _try_restart(self) -> bool:
        try:
            self._restart()
            return True
        except WorkerFailure:
            self._worker.kill()
            return False

    def close(self) -> None:
        self._worker.close()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"command": list(self.spec.command), "timeout_s": self.spec.timeout_s, "restarts": self.restarts})
        return d


def command_worker(command: str | list[str], timeout_s: float = 60.0, startup_timeout_s: float = 180.0, name: str = "cmd") -> WorkerTarget:
    """A worker target from a command line (``cmd:"..."``)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise TargetError('empty worker command; use cmd:"/path/to/python my_worker.py"')
    return WorkerTarget(WorkerSpec(name=name, command=tuple(argv), timeout_s=timeout_s, startup_timeout_s=startup_timeout_s))
