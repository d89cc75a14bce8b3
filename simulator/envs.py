"""Isolated Python environments under ``$POSEEXAMINER_HOME/envs`` (shared installer).

A component whose dependencies clash with the examiner's (MediaPipe and bpy both need
numpy < 2) lives in its own virtual environment and is driven through a worker process
(``simulator.worker_protocol``). This module creates such environments from a pinned
`EnvRecipe`; ``examiner targets install`` (target models) and ``examiner renderers
install`` (the Blender renderer) both use it.

Layout::

    envs/<name>/                          the virtual environment
    envs/<name>/poseexaminer-target.json  written last; its presence means "installed"
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from simulator.errors import PoseExaminerError

HOME_ENV_VAR = "POSEEXAMINER_HOME"
MARKER = "poseexaminer-target.json"


class EnvError(PoseExaminerError):
    """An environment cannot be created or is not installed."""


def home_dir() -> Path:
    """$POSEEXAMINER_HOME or ~/.cache/poseexaminer."""
    env = os.environ.get(HOME_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "poseexaminer"


def envs_dir() -> Path:
    return home_dir() / "envs"


def env_path(name: str) -> Path:
    return envs_dir() / name


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


@dataclass(frozen=True)
class EnvRecipe:
    """A pinned environment.

    ``first`` is installed with ``--no-deps`` (packages whose declared dependencies are
    heavier than what they need at run time), ``then`` normally. ``check`` is Python code
    run in the new environment; it must exit 0. ``after_install(env)``, if given, runs
    after the marker is written (the targets register their worker there)."""

    name: str
    python: str
    first: tuple[str, ...]
    then: tuple[str, ...]
    check: str
    description: str
    make_worker: Callable[[Path], Any] | None = None


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


def find_python(version: str) -> str:
    """An interpreter of the given major.minor version: this one if it matches, else
    ``pythonX.Y`` on PATH."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    exe = shutil.which(f"python{version}")
    if exe is None:
        raise EnvError(
            f"python{version} is not on PATH; install Python {version} (e.g. `uv python install {version}` "
            "or your OS package) and retry"
        )
    return exe


def run_logged(cmd: Sequence[str], log: Callable[[str], None]) -> None:
    log("$ " + " ".join(cmd))
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = [line for line in proc.stdout.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
        raise EnvError(f"command failed ({proc.returncode}): {' '.join(cmd[:4])} ...: {tail[0]}")


def install_env(recipe: EnvRecipe, force: bool = False, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Create the environment of `recipe` under envs/<name>.

    Idempotent: an installed environment is kept unless ``force``. Returns the install
    record (also written to ``envs/<name>/poseexaminer-target.json``)."""
    name = recipe.name
    env = env_path(name)
    if is_installed(name) and not force:
        return install_record(name) or {}
    if env.exists():
        shutil.rmtree(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    run_logged([find_python(recipe.python), "-m", "venv", str(env)], log)
    pip = [str(env_python(env)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if recipe.first:
        run_logged(pip + ["--no-deps", *recipe.first], log)
    if recipe.then:
        run_logged(pip + list(recipe.then), log)
    run_logged([str(env_python(env)), "-c", recipe.check], log)
    record = {
        "name": name,
        "python": recipe.python,
        "packages": list(recipe.first) + list(recipe.then),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "install_seconds": round(time.monotonic() - t0, 1),
        "size_mb": round(dir_size_bytes(env) / 2**20, 1),
    }
    (env / MARKER).write_text(json.dumps(record, indent=2))
    return record
