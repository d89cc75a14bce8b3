"""PoseExaminer worker protocol, worker side. Standalone: needs only numpy (any version
>= 1.20) and the standard library, so it runs inside any model's own environment.

PoseExaminer starts the worker as a subprocess with this file's folder on PYTHONPATH
(or copy this file next to your worker script). The worker reads requests on stdin and
writes replies on stdout; nothing else may be written to stdout, so `serve` moves the
process's stdout to stderr before your code runs (prints and C-library logs go to the
worker log).

Frames, both directions: 4 bytes magic ``b"PEW1"``, 8 bytes little-endian unsigned
payload length, then the payload: an ``.npz`` archive (``numpy.savez``, no pickles). Every
archive has ``__meta__``, a uint8 array holding UTF-8 JSON.

1. worker -> examiner, once, after ``setup`` has loaded the model ("hello"):
   meta ``{"protocol": 1, "name", "convention", "outputs", "frame", "max_batch",
   "joint_names"?, "joint_map"?}``
2. examiner -> worker, per batch: meta ``{"op": "predict", "id": N}`` and arrays
   ``images`` (B, H, W, 3) uint8, ``K`` (B, 3, 3) float32, ``boxes`` (B, 4) float32 xyxy px.
3. worker -> examiner: meta ``{"id": N, "ok": true, "seconds": S}`` (S: time spent in
   ``predict``) and the declared outputs
   ``joints2d`` (B, J, 2) px, ``joints3d`` (B, J, 3) m, optional ``confidence`` (B, J),
   ``vertices`` (B, V, 3), ``errors`` (B,) str ("" = fine, else why that sample has no
   prediction, e.g. "no_detection"); or ``{"id": N, "ok": false, "error": "..."}`` when
   ``predict`` raised (the worker keeps running).
4. examiner -> worker: meta ``{"op": "close"}``; the worker exits 0.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import time
import traceback

import numpy as np

PROTOCOL = 1
MAGIC = b"PEW1"
_HEADER = struct.Struct("<4sQ")
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


HEADER_SIZE = _HEADER.size


def _read_exact(stream, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def serve(
    predict,
    convention: str,
    outputs=("joints2d", "joints3d"),
    frame: str = "root_relative",
    max_batch: int = 16,
    name: str = "worker",
    setup=None,
    joint_names=None,
    joint_map=None,
) -> None:
    """Run the request loop until the examiner closes the stream.

    ``predict(images, K, boxes) -> dict`` of output arrays (see the module docstring).
    ``setup()``, if given, runs before the hello frame (load the model there so that
    start-up time is not charged to the first batch); its return value, if not None, is
    passed to predict as a first argument.
    """
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    # From here on fd 1 is stderr: stray prints cannot corrupt the protocol stream.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    state = setup() if setup is not None else None
    hello = {
        "protocol": PROTOCOL,
        "name": name,
        "convention": convention,
        "outputs": list(outputs),
        "frame": frame,
        "max_batch": int(max_batch),
    }
    if joint_names is not None:
        hello["joint_names"] = list(joint_names)
    if joint_map is not None:
        hello["joint_map"] = dict(joint_map)
    proto_out.write(encode_frame(hello))
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
        if op != "predict":
            proto_out.write(encode_frame({"id": meta.get("id"), "ok": False, "error": f"unknown op {op!r}"}))
            continue
        try:
            args = (arrays["images"], arrays["K"], arrays["boxes"])
            t0 = time.perf_counter()
            result = predict(state, *args) if state is not None else predict(*args)
            seconds = time.perf_counter() - t0
            if not isinstance(result, dict):
                raise TypeError(f"predict must return a dict of arrays, got {type(result).__name__}")
            reply = encode_frame({"id": meta.get("id"), "ok": True, "seconds": seconds}, result)
        except Exception as e:  # noqa: BLE001 - reported to the examiner, loop goes on
            traceback.print_exc(file=sys.stderr)
            msg = traceback.format_exception_only(type(e), e)[-1].strip()
            reply = encode_frame({"id": meta.get("id"), "ok": False, "error": msg})
        proto_out.write(reply)
