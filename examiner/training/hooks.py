"""The training-hook contract of `examiner finetune` / `examiner loop` (docs/finetune.md).

A hook is a Python function named by `python:pkg.module:train` or
`python:path/to/file.py:train`:

    def train(dataset_dir: str, model_spec: str) -> str

It receives the fine-tuning set (`examiner generate finetune` layout: COCO keypoints in
`annotations.json` with the images, `labels.npz` with 3D joints, camera and SceneParams
per sample) and the spec of the model to improve, trains, and returns the spec of the new
model (anything `examiner run --model` accepts, e.g. `onnx:/abs/path/model.onnx` or
`python:mypkg.model:load?weights=/abs/path.pt`). Anything else it returns is refused with a
one-line error; an exception inside it is reported as one line naming the hook.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Callable

from simulator.errors import PoseExaminerError

BUILTIN = "builtin"


class HookError(PoseExaminerError):
    """A training hook could not be loaded, failed, or returned something that is not a
    model spec."""


def load_hook(spec: str) -> Callable[[str, str], str]:
    """`python:pkg.module:func` or `python:path/file.py:func` -> the function."""
    if not isinstance(spec, str) or not spec.startswith("python:"):
        raise HookError(f"--trainer {spec!r}: write python:pkg.module:train or python:path/to/file.py:train "
                        f"(or {BUILTIN} for the bundled baseline)")
    body = spec[len("python:"):]
    target, sep, name = body.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise HookError(f"--trainer {spec!r}: name the function after a colon, e.g. python:mypkg.train:train")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise HookError(f"--trainer {spec!r}: {path} does not exist")
            mod_name = f"_examiner_hook_{abs(hash(str(path.resolve())))}"
            loader = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[mod_name] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except HookError:
        raise
    except ImportError as e:
        raise HookError(f"--trainer {spec!r}: cannot import {target!r} ({e}); put it on PYTHONPATH or give a .py path") from None
    except Exception as e:  # the user's module failed while importing
        raise HookError(f"--trainer {spec!r}: importing {target!r} raised {type(e).__name__}: {e}") from None
    fn = getattr(module, name, None)
    if fn is None:
        raise HookError(f"--trainer {spec!r}: {target!r} has no function {name!r}")
    if not callable(fn):
        raise HookError(f"--trainer {spec!r}: {target}.{name} is a {type(fn).__name__}, not a function")
    return fn


def check_returned_spec(value: object, hook: str) -> str:
    """The hook's return value as a model spec, or a one-line HookError."""
    from examiner.search.factory import spec_kind
    from examiner.targets.registry import parse_spec

    if not isinstance(value, str):
        raise HookError(f"training hook {hook} returned {type(value).__name__} {value!r:.60}; it must return the new "
                        "model's spec as a string, e.g. 'onnx:/abs/path/model.onnx'")
    if not value.strip():
        raise HookError(f"training hook {hook} returned an empty string; return the new model's spec, "
                        "e.g. 'onnx:/abs/path/model.onnx'")
    if "\n" in value:
        raise HookError(f"training hook {hook} returned a multi-line string; return one model spec")
    if spec_kind(value) == "analytic":  # the search's own synthetic targets (tests, demos)
        return value
    try:
        kind, body, _ = parse_spec(value)
    except PoseExaminerError as e:
        raise HookError(f"training hook {hook} returned {value!r}, not a model spec: {e}") from None
    if kind == "onnx" and not Path(body).is_file():
        raise HookError(f"training hook {hook} returned {value!r} but {body} does not exist; export the model "
                        "before returning (and use an absolute path)")
    return value


def call_hook(spec: str, dataset_dir: str | Path, model_spec: str) -> str:
    """Load the hook, call it with (dataset_dir, model_spec), check what it returns."""
    fn = load_hook(spec)
    try:
        value = fn(str(dataset_dir), str(model_spec))
    except PoseExaminerError:
        raise
    except Exception as e:  # the user's training code failed
        raise HookError(f"training hook {spec} raised {type(e).__name__}: {e}") from e
    return check_returned_spec(value, spec)
