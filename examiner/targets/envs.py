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
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from examiner.targets.base import TargetError

HOME_ENV_VAR = "POSEEXAMINER_HOME"
MARKER = "poseexaminer-target.json"


def home_dir() -> Path:
    """$POSEEXAMINER_HOME or ~/.cache/poseexaminer."""
    env = os.environ.get(HOME_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "poseexaminer"


def envs_dir() -> Path:
    return home_dir() / "envs"


def workers_dir() -> Path:
    return home_dir() / "workers"


def env_python(env: Path) -> Path:
    return env / "bin" / "python"


def dir_size_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            if not p.is_symlink():
                total += p.stat().st_size
    return total


# ---------------------------------------------------------------------------------------
# Registered workers
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one worker process. ``command`` is an argv list; the worker speaks the
    protocol in ``examiner/targets/runtime/pe_worker.py`` on stdin/stdout."""

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


@dataclass(frozen=True)
class EnvRecipe:
    """A pinned environment for a built-in target.

    ``first`` is installed with ``--no-deps`` (packages whose declared dependencies are
    heavier than what they need at run time), ``then`` normally."""

    name: str
    python: str
    first: tuple[str, ...]
    then: tuple[str, ...]
    check: str  # python code run in the new env; must exit 0
    description: str
    make_worker: Callable[[Path], WorkerSpec]


BUILTIN_ENVS: dict[str, EnvRecipe] = {}


def env_path(name: str) -> Path:
    return envs_dir() / name


def is_installed(name: str) -> bool:
    return (env_path(name) / MARKER).is_file() and env_python(env_path(name)).exists()


def install_record(name: str) -> dict[str, Any] | None:
    p = env_path(name) / MARKER
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError:
        return None


def _find_python(version: str) -> str:
    """An interpreter of the given major.minor version: this one if it matches, else
    ``pythonX.Y`` on PATH."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    exe = shutil.which(f"python{version}")
    if exe is None:
        raise TargetError(
            f"python{version} is not on PATH; install Python {version} (e.g. `uv python install {version}` "
            "or your OS package) and retry"
        )
    return exe


def _run(cmd: Sequence[str], log: Callable[[str], None]) -> None:
    log("$ " + " ".join(cmd))
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = [line for line in proc.stdout.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
        raise TargetError(f"command failed ({proc.returncode}): {' '.join(cmd[:4])} ...: {tail[0]}")


def install_env(name: str, force: bool = False, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Create the environment for a built-in target and register its worker.

    Idempotent: an installed environment is kept unless ``force``. Returns the install
    record (also written to ``envs/<name>/poseexaminer-target.json``)."""
    recipe = BUILTIN_ENVS.get(name)
    if recipe is None:
        raise TargetError(
            f"no installable target named {name!r}; installable: {', '.join(sorted(BUILTIN_ENVS))}"
        )
    env = env_path(name)
    if is_installed(name) and not force:
        register_worker(recipe.make_worker(env))
        return install_record(name) or {}
    if env.exists():
        shutil.rmtree(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    _run([_find_python(recipe.python), "-m", "venv", str(env)], log)
    pip = [str(env_python(env)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if recipe.first:
        _run(pip + ["--no-deps", *recipe.first], log)
    if recipe.then:
        _run(pip + list(recipe.then), log)
    _run([str(env_python(env)), "-c", recipe.check], log)
    record = {
        "name": name,
        "python": recipe.python,
        "packages": list(recipe.first) + list(recipe.then),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "install_seconds": round(time.monotonic() - t0, 1),
        "size_mb": round(dir_size_bytes(env) / 2**20, 1),
    }
    (env / MARKER).write_text(json.dumps(record, indent=2))
    register_worker(recipe.make_worker(env))
    return record
