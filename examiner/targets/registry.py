"""Model spec strings -> target models.

A spec is ``KIND:BODY[?key=value&key=value]`` or a built-in name with optional options::

    python:pkg.module:factory        in-process; factory(**options) -> TargetModel
    python:path/to/file.py:factory   same, from a file
    onnx:model.onnx                  onnxruntime + model.yaml sidecar
    worker:NAME                      a registered worker environment (`examiner targets list`)
    cmd:"/env/bin/python my_worker.py --flag"   a worker started from a command line
    whitebox:REGIONS                 ground truth + planted errors (tests the examiner)
    mediapipe                        MediaPipe BlazePose full in its own environment
    baseline                         the bundled baseline network

Adapters register under their prefix; `available_adapters()` lists them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple
from urllib.parse import parse_qsl, quote

from examiner.targets.base import Prediction, TargetBatch, TargetError, TargetModel, validate_declaration


@dataclass(frozen=True)
class Adapter:
    kind: str
    make: Callable[[str, dict[str, str]], TargetModel]
    usage: str
    description: str
    takes_body: bool = True


_ADAPTERS: dict[str, Adapter] = {}


def register_adapter(adapter: Adapter) -> None:
    _ADAPTERS[adapter.kind] = adapter


def available_adapters() -> list[Adapter]:
    return [ _ADAPTERS[k] for k in sorted(_ADAPTERS)]


class SpecParts(NamedTuple):
    """A model spec cut at its query: ``head`` is the raw text before the '?' (quotes kept),
    ``kind`` and ``body`` its two parts (body unquoted), ``query`` the raw text after the '?'."""

    head: str
    kind: str
    body: str
    query: str


def split_spec(spec: str) -> SpecParts:
    """Cut 'kind:body?query' (or 'name?query') into its parts without interpreting them.

    The kind ends at the first ':' or '?'; a body in double quotes may hold any character,
    '?' included (cmd:"python w.py --x=1?"). Raises TargetError (one line) on an empty spec,
    an unclosed quote or text after a quoted body that is not a query.
    """
    spec = spec.strip()
    if not spec:
        raise TargetError("empty model spec; e.g. --model mediapipe or --model python:pkg.module:factory")
    cut = min((i for i in (spec.find(":"), spec.find("?")) if i >= 0), default=len(spec))
    kind = spec[:cut]
    if cut == len(spec) or spec[cut] == "?":
        return SpecParts(kind, kind, "", spec[cut + 1 :])
    rest = spec[cut + 1 :]
    if rest.startswith('"'):
        end = rest.find('"', 1)
        if end < 0:
            raise TargetError(f"unclosed quote in model spec {spec!r}; close the quoted command with \"")
        body, tail = rest[1:end], rest[end + 1 :]
        if tail and not tail.startswith("?"):
            raise TargetError(f"unexpected text after the quoted command in {spec!r}: {tail!r}; options go after '?'")
        return SpecParts(spec[: cut + 1 + end + 1], kind, body, tail[1:])
    body, _, query = rest.partition("?")
    return SpecParts(f"{kind}:{body}", kind, body, query)


def parse_query(query: str, spec: str = "") -> dict[str, str]:
    """'k=v&k2=v2' -> {'k': 'v', 'k2': 'v2'} (``urllib.parse``: %XX escapes and '+' decode;
    empty items are skipped; a repeated key keeps its last value). An item that is not
    key=value raises TargetError naming it."""
    out: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        k, sep, _ = item.partition("=")
        if not sep or not k:
            raise TargetError(f"bad option {item!r} in model spec {spec or query!r}; write key=value (e.g. ?threads=1)")
        try:
            ((key, value),) = parse_qsl(item, keep_blank_values=True, strict_parsing=True)
        except ValueError as e:
            raise TargetError(f"bad option {item!r} in model spec {spec or query!r}: {e}") from None
        out[key] = value
    return out


# Characters format_query leaves unescaped: those the built-in specs use in values.
_QUERY_SAFE = ":/,;.-_~*@"


def format_query(options: Mapping[str, str]) -> str:
    """The inverse of parse_query: parse_query(format_query(d)) == d."""
    return "&".join(f"{quote(str(k), safe=_QUERY_SAFE)}={quote(str(v), safe=_QUERY_SAFE)}" for k, v in options.items())


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """'kind:body?k=v&k2=v2' -> (kind, body, options) for a target spec (the kind must be
    a registered adapter when the spec has a body). A body in double quotes may hold any
    character (cmd:"python w.py --x=1")."""
    parts = split_spec(spec)
    has_body = parts.head != parts.kind
    if has_body and parts.kind not in _ADAPTERS:
        hint = ", ".join(f"{a.kind}:" if a.takes_body else a.kind for a in available_adapters())
        raise TargetError(f"unknown model kind {parts.kind!r} in {spec.strip()!r}; valid: {hint}")
    return parts.kind, parts.body, parse_query(parts.query, spec.strip())


def load_target(spec: str | TargetModel) -> TargetModel:
    """A ready target for a spec string (or a TargetModel, returned as is after checks)."""
    if isinstance(spec, TargetModel):
        validate_declaration(spec)
        return spec
    kind, body, options = parse_spec(spec)
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        hint = ", ".join(f"{a.kind}:" if a.takes_body else a.kind for a in available_adapters())
        raise TargetError(f"unknown model {kind!r}; valid kinds: {hint}")
    if adapter.takes_body and not body and kind != "whitebox":
        raise TargetError(f"model spec {spec!r} is incomplete; usage: {adapter.usage}")
    if not adapter.takes_body and body:
        raise TargetError(f"model {kind!r} takes no ':' part; usage: {adapter.usage}")
    target = adapter.make(body, dict(options))
    validate_declaration(target)
    return target


# ---------------------------------------------------------------------------------------
# In-process Python models
# ---------------------------------------------------------------------------------------


class CallableTarget(TargetModel):
    """Wraps any object with ``predict(batch) -> Prediction`` and a ``convention``."""

    def __init__(self, obj: Any, name: str) -> None:
        self.obj = obj
        self.name = getattr(obj, "name", name)
        self.convention = getattr(obj, "convention")
        self.outputs = frozenset(getattr(obj, "outputs", ("joints2d", "joints3d")))
        self.frame = getattr(obj, "frame", "root_relative")
        self.max_batch = int(getattr(obj, "max_batch", 16))
        self.needs_ground_truth = bool(getattr(obj, "needs_ground_truth", False))  # type: ignore[misc]

    def predict(self, batch: TargetBatch) -> Prediction:
        return self.obj.predict(batch)

    def close(self) -> None:
        close = getattr(self.obj, "close", None)
        if callable(close):
            close()


def _import_module(ref: str) -> Any:
    if ref.endswith(".py") or "/" in ref:
        path = Path(ref).expanduser()
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "not found"
            raise TargetError(f"python model file {path} {what}")
        name = f"poseexaminer_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(ref)
    except ModuleNotFoundError as e:
        raise TargetError(f"cannot import {ref!r} ({e}); is it installed in this environment or on PYTHONPATH?") from None


def make_python(body: str, options: dict[str, str]) -> TargetModel:
    module_ref, sep, factory_name = body.rpartition(":")
    if not sep or not module_ref or not factory_name:
        raise TargetError(f"python model spec needs module and factory: python:pkg.module:factory, got python:{body}")
    module = _import_module(module_ref)
    factory = getattr(module, factory_name, None)
    if factory is None or not callable(factory):
        raise TargetError(f"{module_ref} has no callable {factory_name!r}")
    obj = factory(**options)
    if isinstance(obj, TargetModel):
        return obj
    if hasattr(obj, "predict") and hasattr(obj, "convention"):
        return CallableTarget(obj, name=factory_name)
    raise TargetError(
        f"{module_ref}:{factory_name} returned {type(obj).__name__}; it must return a TargetModel "
        "(or an object with predict(batch) and convention)"
    )


# ---------------------------------------------------------------------------------------
# Built-in registrations (heavy modules are imported by the factories, not here)
# ---------------------------------------------------------------------------------------


def _make_onnx(body: str, options: dict[str, str]) -> TargetModel:
    from examiner.targets.onnx_adapter import make_onnx

    return make_onnx(body, options)


def _make_worker(body: str, options: dict[str, str]) -> TargetModel:
    from examiner.targets.envs import WorkerSpec, get_worker
    from examiner.targets.worker import WorkerTarget

    spec = get_worker(body)
    if "timeout" in options:
        spec = WorkerSpec(**{**spec.to_dict(), "command": spec.command, "timeout_s": float(options.pop("timeout"))})
    isolate = options.pop("isolate", "1") not in ("0", "false", "no")
    if options:
        raise TargetError(f"unknown worker option(s) {sorted(options)}; valid: timeout, isolate")
    return WorkerTarget(spec, isolate_failures=isolate)


def _make_cmd(body: str, options: dict[str, str]) -> TargetModel:
    from examiner.targets.worker import command_worker

    timeout = float(options.pop("timeout", "60"))
    startup = float(options.pop("startup_timeout", "180"))
    if options:
        raise TargetError(f"unknown cmd option(s) {sorted(options)}; valid: timeout, startup_timeout")
    return command_worker(body, timeout_s=timeout, startup_timeout_s=startup)


def _make_whitebox(body: str, options: dict[str, str]) -> TargetModel:
    from examiner.targets.whitebox import make_whitebox

    return make_whitebox(body, options)


def _make_mediapipe(body: str, options: dict[str, str]) -> TargetModel:
    from examiner.targets.mediapipe_target import make_mediapipe

    return make_mediapipe(options)


def _make_baseline(body: str, options: dict[str, str]) -> TargetModel:
    from examiner.targets.baseline import make_baseline

    return make_baseline(options)


for _a in (
    Adapter("python", make_python, "python:pkg.module:factory[?key=value]", "in-process Python model (batched)"),
    Adapter("onnx", _make_onnx, "onnx:model.onnx[?config=model.yaml]", "ONNX model via onnxruntime + YAML sidecar"),
    Adapter("worker", _make_worker, "worker:NAME[?timeout=S]", "registered worker environment (subprocess)"),
    Adapter("cmd", _make_cmd, 'cmd:"/env/bin/python my_worker.py"[?timeout=S]', "worker started from a command line"),
    Adapter("whitebox", _make_whitebox, "whitebox:dim=lo:hi,...;...[?error=0.3&noise=0.005&seed=0&halo=0&halo_error=0.05]",
            "ground truth + planted failure regions (tests the examiner)"),
    Adapter("mediapipe", _make_mediapipe, "mediapipe[?crop=box|full]", "MediaPipe BlazePose full (own environment)",
            takes_body=False),
    Adapter("baseline", _make_baseline, "baseline", "the bundled baseline network (assets/baseline/)", takes_body=False),
):
    register_adapter(_a)
