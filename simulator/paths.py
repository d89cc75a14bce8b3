"""Where PoseExaminer keeps caches and environments (never inside the repository)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root of PoseExaminer's caches: $POSEEXAMINER_HOME or ~/.cache/poseexaminer."""
    return Path(os.environ.get("POSEEXAMINER_HOME", Path.home() / ".cache" / "poseexaminer"))


def configure_caches() -> None:
    """Point anny's, warp's and Mesa's caches at our cache dir unless the user chose.

    Must run before `anny` / `warp` are imported (they read the variables at import)."""
    root = home()
    os.environ.setdefault("ANNY_CACHE_DIR", str(root / "anny"))
    os.environ.setdefault("WARP_CACHE_PATH", str(root / "warp"))
    os.environ.setdefault("MESA_SHADER_CACHE_DIR", str(root / "mesa"))
