"""The framed stdin/stdout worker protocol, both sides; stdlib and numpy only.

Used by the target workers (``examiner.targets.worker``; their user-facing worker side is
the standalone copy ``examiner/targets/runtime/pe_worker.py``) and by the Blender
renderer (``simulator.blender``), whose worker runs inside the bpy environment and loads
this file by path, so it must import nothing from the project.

Frames, both directions: 4 bytes magic ``b"PEW1"``, 8 bytes little-endian unsigned
payload length, then the payload: an ``.npz`` archive (``numpy.savez``, no pickles). Every
archive has ``__meta__``, a uint8 array holding UTF-8 JSON. The worker writes one hello
frame (``{"protocol": 1, ...}``) after its setup, then answers each request
``{"op": ..., "id": N}`` with ``{"id": N, "ok": ...}``; ``{"op": "close"}`` ends it.
"""

from __future__ import annotations

import collections
import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

PROTOCOL = 1
MAGIC = b"PEW1"
_HEADER = struct.Struct("<4sQ")
HEADER_SIZE = _HEADER.size
MAX_FRAME_BYTES = 2 ** 34


class ProtocolError(Exception):
    pass


def encode_frame(meta: dict, arrays: dict | None = None) -> bytes:
    buf = io.BytesIO()
    payload = {"__meta__": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    for k, v in (arrays or {}).items():
        if v is not None:
            payload[k] = np.asarray(v)
    np.savez(buf, **payload)
    body = buf.getvalue()
    return _HEADER.pack(MAGIC, len(body)) + body


def decode_payload(body: bytes) -> tuple[dict, dict]:
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - any decoding problem is a protocol error
        raise ProtocolError(f"payload is not a valid npz archive ({type(e).__name__}: {e})") from None
    if "__meta__" not in arrays:
        raise ProtocolError("payload has no __meta__ entry")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    except ValueError as e:
        raise ProtocolError(f"__meta__ is not JSON: {e}") from None
    return meta, arrays


def parse_header(header: bytes) -> int:
    magic, length = _HEADER.unpack(header)
    if magic != MAGIC:
        raise ProtocolError(f"bad frame magic {magic!r} (something else wrote to the protocol stream)")
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes is too large")
    return length


# ---------------------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------------------


def _read_exact(stream, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def serve_ops(handlers: dict[str, Callable[[dict, dict], tuple[dict, dict]]], hello: dict,
              setup: Callable[[], None] | None = None) -> None:
    """Worker main loop: ``setup()``, the hello frame, then ``handlers[op](meta, arrays)
    -> (reply meta, reply arrays)`` per request until ``close`` or end of input. A handler
    that raises answers ``ok: false`` with the error and the worker keeps serving. stdout
    is moved to stderr first, so library prints cannot corrupt the stream."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if setup is not None:
        setup()
    proto_out.write(encode_frame({"protocol": PROTOCOL, **hello}))
    while True:
        header = _read_exact(proto_in, HEADER_SIZE)
        if header is None:
            return
        body = _read_exact(proto_in, parse_header(header))
        if body is None:
            return
        meta, arrays = decode_payload(body)
        op = meta.get("op")
        if op == "close":
            return
        handler = handlers.get(op)
        if handler is None:
            proto_out.write(encode_frame({"id": meta.get("id"), "ok": False, "error": f"unknown op {op!r}"}))
            continue
        t0 = time.perf_counter()
        try:
            reply, out = handler(meta, arrays)
        except Exception as e:  # noqa: BLE001 - reported to the client, the worker lives on
            import traceback

            traceback.print_exc(file=sys.stderr)
            proto_out.write(encode_frame({"id": meta.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}"}))
            continue
        proto_out.write(encode_frame({"id": meta.get("id"), "ok": True,
                                      "seconds": time.perf_counter() - t0, **reply}, out))


# ---------------------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one worker process. ``command`` is an argv list; the worker speaks
    this protocol on stdin/stdout."""

    name: str
    command: tuple[str, ...]
    timeout_s: float = 60.0
    startup_timeout_s: float = 180.0
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["command"] = list(self.command)
        return d


class WorkerFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class WorkerProcess:
    """One running worker: start, request/reply with a deadline, kill."""

    def __init__(self, spec: WorkerSpec, runtime_dir=None) -> None:
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
        if self.runtime_dir is not None:
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
        if meta.get("protocol") != PROTOCOL:
            raise WorkerFailure("protocol", f"worker speaks protocol {meta.get('protocol')!r}, expected {PROTOCOL}")
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
                self.proc.stdin.write(encode_frame({"op": "close"}))
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
                raise WorkerFailure("timeout", f"no reply within {self._current_timeout:.1f} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise WorkerFailure("crash", self._exit_message())
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    _current_timeout = 0.0  # the budget of the frame being read, for the timeout message

    def _read_frame(self, deadline: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._current_timeout = max(0.0, deadline - time.monotonic())
        header = self._read_exact(HEADER_SIZE, deadline)
        try:
            length = parse_header(header)
            body = self._read_exact(length, deadline)
            return decode_payload(body)
        except ProtocolError as e:
            raise WorkerFailure("protocol", str(e)) from None

    def request(self, arrays: dict[str, np.ndarray], timeout_s: float, op: str = "predict",
                meta: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if not self.alive():
            raise WorkerFailure("crash", "worker is not running")
        assert self.proc is not None and self.proc.stdin is not None
        self._next_id += 1
        rid = self._next_id
        frame = encode_frame({**(meta or {}), "op": op, "id": rid}, arrays)
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.stdin.write(frame)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerFailure("crash", self._exit_message()) from None
        reply, out = self._read_frame(deadline)
        if reply.get("id") != rid:
            raise WorkerFailure("protocol", f"reply id {reply.get('id')!r} does not match request {rid}")
        return reply, out
