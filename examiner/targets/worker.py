"""Subprocess worker targets: the model runs in its own Python environment and speaks the
frame protocol of ``runtime/pe_worker.py`` on stdin/stdout (no network ports).

Failure handling, per batch: a crash (process exits), hang (no reply within
``timeout_s``), protocol garbage (bad frame) or wrong output shapes restart the worker; with
``isolate_failures`` the batch is then retried one image at a time, so only the images
that break the model are recorded as failures. Nothing here raises for model
misbehaviour after a successful start; a worker that cannot start at all is a
configuration error (`TargetError`).
"""

from __future__ import annotations

import collections
import os
import select
import shlex
import signal
import subprocess
import threading
import time
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
from examiner.targets.envs import WorkerSpec
from examiner.targets.runtime import pe_worker

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"


class WorkerFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class WorkerProcess:
    """One running worker: start, request/reply with a deadline, kill."""

    def __init__(self, spec: WorkerSpec, runtime_dir: Path = RUNTIME_DIR) -> None:
        self.spec = spec
        self.runtime_dir = runtime_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self.hello: dict[str, Any] = {}
        self._next_id = 0
        self._stderr_thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        env = dict(os.environ)
        env.update(self.spec.env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.runtime_dir), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["POSEEXAMINER_WORKER"] = "1"
        try:
            self.proc = subprocess.Popen(
                list(self.spec.command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                env=env,
                start_new_session=True,  # so a kill takes the worker's children too
            )
        except OSError as e:
            raise WorkerFailure("crash", f"cannot start {self.spec.command[0]!r}: {e.strerror}") from None
        self._stderr_thread = threading.Thread(target=self._drain_stderr, args=(self.proc,), daemon=True)
        self._stderr_thread.start()
        meta, _ = self._read_frame(time.monotonic() + self.spec.startup_timeout_s)
        if meta.get("protocol") != pe_worker.PROTOCOL:
            raise WorkerFailure("protocol", f"worker speaks protocol {meta.get('protocol')!r}, expected {pe_worker.PROTOCOL}")
        self.hello = meta
        return meta

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            self.stderr_tail.append(raw.decode("utf-8", "replace").rstrip())

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc = None

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(pe_worker.encode_frame({"op": "close"}))
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    # ---- I/O ---------------------------------------------------------------------------
    def _last_stderr(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()]
        return lines[-1][:300] if lines else "(no stderr)"

    def _exit_message(self) -> str:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)  # the last stderr lines usually say why
        return f"worker exited with code {code}; last stderr: {self._last_stderr()}"

    def _read_exact(self, n: int, deadline: float) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        chunks: list[bytes] = []
        got = 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerFailure("timeout", f"no reply within {self._timeout_text(deadline)}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise WorkerFailure("crash", self._exit_message())
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _timeout_text(self, deadline: float) -> str:
        return f"{self._current_timeout:.1f} s"

    _current_timeout = 0.0  # the budget of the frame being read, for the timeout message

    def _read_frame(self, deadline: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._current_timeout = max(0.0, deadline - time.monotonic())
        header = self._read_exact(pe_worker.HEADER_SIZE, deadline)
        try:
            length = pe_worker.parse_header(header)
            body = self._read_exact(length, deadline)
            return pe_worker.decode_payload(body)
        except pe_worker.ProtocolError as e:
            raise WorkerFailure("protocol", str(e)) from None

    def request(self, arrays: dict[str, np.ndarray], timeout_s: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if not self.alive():
            raise WorkerFailure("crash", "worker is not running")
        assert self.proc is not None and self.proc.stdin is not None
        self._next_id += 1
        rid = self._next_id
        frame = pe_worker.encode_frame({"op": "predict", "id": rid}, arrays)
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.stdin.write(frame)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerFailure("crash", self._exit_message()) from None
        meta, out = self._read_frame(deadline)
        if meta.get("id") != rid:
            raise WorkerFailure("protocol", f"reply id {meta.get('id')!r} does not match request {rid}")
        return meta, out


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
