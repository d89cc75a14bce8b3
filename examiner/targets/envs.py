"""Isolated model environments and registered workers.

Layout under ``$POSEEXAMINER_HOME`` (default ``~/.cache/poseexaminer``)::

    envs/<name>/                 a virtual environment made by ``examiner targets install``
    envs/<name>/poseexaminer-target.json   written last; its presence means "installed"
    workers/<name>.json          a registered worker: {"command": [...], "timeout_s": ...}

A registered worker is what the ``worker:NAME`` model spec starts. Built-in installs
(MediaPipe) register themselves; users register their own with
``examiner targets register NAME -- /path/to/env/bin/python my_worker.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from examiner.targets.base import TargetError
from simulator import envs as _envs
from simulator.envs import (  # noqa: F401 - re-exported: the shared installer lives in simulator
    HOME_ENV_VAR,
    MARKER,
    EnvRecipe,
    dir_size_bytes,
    env_path,
    env_python,
    envs_dir,
    home_dir,
    install_record,
    is_installed,
)
from simulator.worker_protocol import WorkerSpec  # noqa: F401 - re-exported


def workers_dir() -> Path:
    return home_dir() / "workers"


# ---------------------------------------------------------------------------------------
# Registered workers
# ---------------------------------------------------------------------------------------


WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_worker_name(name: str) -> str:
    """A worker name is a file name in the registry folder: letters, digits, '_', '.',
    '-' (starting with a letter or digit), so it can never point outside the folder."""
    if not isinstance(name, str) or not WORKER_NAME.fullmatch(name) or ".." in name:
        raise TargetError(
            f"worker name {name!r} is not allowed; use letters, digits, '_', '.' and '-' (starting with a letter "
            "or digit, at most 64 characters)"
        )
    return name


def register_worker(spec: WorkerSpec) -> Path:
    check_worker_name(spec.name)
    workers_dir().mkdir(parents=True, exist_ok=True)
    path = workers_dir() / f"{spec.name}.json"
    path.write_text(json.dumps(spec.to_dict(), indent=2))
    return path


def registered_workers() -> dict[str, WorkerSpec]:
    out: dict[str, WorkerSpec] = {}
    d = workers_dir()
    if not d.is_dir():
        return out
    for p in sorted(d.glob("*.json")):
        try:
            raw = json.loads(p.read_text())
            raw["command"] = tuple(raw["command"])
            out[p.stem] = WorkerSpec(**raw)
        except (ValueError, KeyError, TypeError):
            continue  # a broken file is reported by `targets list`, not fatal here
    return out


def get_worker(name: str) -> WorkerSpec:
    workers = registered_workers()
    if name in workers:
        return workers[name]
    builtin = BUILTIN_ENVS.get(name)
    if builtin is not None:
        raise TargetError(
            f"worker {name!r} is not installed; run `examiner targets install {name}`"
        )
    known = ", ".join(sorted(workers)) or "none"
    raise TargetError(
        f"no registered worker named {name!r} (registered: {known}); register one with "
        f"`examiner targets register {name} -- PYTHON SCRIPT.py`"
    )


# ---------------------------------------------------------------------------------------
# Installable environments
# ---------------------------------------------------------------------------------------


BUILTIN_ENVS: dict[str, EnvRecipe] = {}


def _find_python(version: str) -> str:
    try:
        return _envs.find_python(version)
    except _envs.EnvError as e:
        raise TargetError(str(e)) from None


def install_env(name: str, force: bool = False, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Create the environment for a built-in target (`simulator.envs.install_env`) and
    register its worker. Idempotent unless ``force``; returns the install record."""
    recipe = BUILTIN_ENVS.get(name)
    if recipe is None:
        raise TargetError(
            f"no installable target named {name!r}; installable: {', '.join(sorted(BUILTIN_ENVS))}"
        )
    try:
        record = _envs.install_env(recipe, force=force, log=log)
    except _envs.EnvError as e:
        raise TargetError(str(e)) from None
    if recipe.make_worker is not None:
        register_worker(recipe.make_worker(env_path(name)))
    return record
