"""Headless OpenGL backend selection for pyrender.

pyrender reads PYOPENGL_PLATFORM when it is first imported, so the choice must be made
before that. EGL (Mesa llvmpipe on CPU, the NVIDIA driver on a GPU machine) is preferred;
OSMesa is the fallback (no anti-aliasing, slower).
"""

from __future__ import annotations

import atexit
import ctypes.util
import os
from typing import Callable, Iterable

from simulator.errors import RenderError

_EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri libgles2"
_OSMESA_PACKAGES = "libosmesa6"


def _has_library(name: str) -> bool:
    if ctypes.util.find_library(name):
        return True
    try:
        ctypes.CDLL(f"lib{name}.so.1")
        return True
    except OSError:
        return False


def available_backends() -> list[str]:
    out = []
    if _has_library("EGL") and _has_library("GL"):
        out.append("egl")
    if _has_library("OSMesa"):
        out.append("osmesa")
    return out


def select_backend(requested: str = "auto") -> str:
    """Set PYOPENGL_PLATFORM for `requested` (auto | egl | osmesa) and return it.

    The environment variable PYOPENGL_PLATFORM, when already set, wins over auto."""
    if requested not in ("auto", "egl", "osmesa"):
        raise RenderError(f"unknown GL backend {requested!r}; use auto, egl or osmesa")
    if requested == "auto":
        env = os.environ.get("PYOPENGL_PLATFORM")
        if env in ("egl", "osmesa"):
            requested = env
        else:
            backends = available_backends()
            if not backends:
                raise RenderError(
                    "no headless OpenGL library found; install EGL with "
                    f"`apt-get install {_EGL_PACKAGES}` (or `{_OSMESA_PACKAGES}` for OSMesa)"
                )
            requested = backends[0]
    elif requested not in available_backends():
        pkgs = _EGL_PACKAGES if requested == "egl" else _OSMESA_PACKAGES
        raise RenderError(f"the {requested} OpenGL backend is not installed; run `apt-get install {pkgs}`")
    current = os.environ.get("PYOPENGL_PLATFORM")
    import sys

    if current and current != requested and "OpenGL" in sys.modules:
        raise RenderError(
            f"OpenGL was already initialised with PYOPENGL_PLATFORM={current}; "
            f"start a new process to use {requested}"
        )
    os.environ["PYOPENGL_PLATFORM"] = requested
    return requested


# GL objects each module keeps for the whole process, closed at exit (last registered first).
_KEPT_UNTIL_EXIT: list[tuple[Callable[[], Iterable], Callable[[object], None], Callable[[], None]]] = []


def close_at_exit(container: dict | list, close: Callable[[object], None] = lambda obj: obj.close()) -> None:
    """Call `close` on every object in `container` (a dict's values or a list's items, read
    at exit) and empty it when the interpreter exits: GL contexts must be released before
    teardown starts (PyOpenGL cannot afterwards). Best effort: errors are ignored."""
    items = container.values if isinstance(container, dict) else container.copy
    _KEPT_UNTIL_EXIT.append((items, close, container.clear))


@atexit.register
def _close_kept() -> None:
    for items, close, clear in reversed(_KEPT_UNTIL_EXIT):
        for obj in list(items()):
            try:
                close(obj)
            except Exception:  # best effort at exit
                pass
        clear()
