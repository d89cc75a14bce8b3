"""Library entry points behind `examiner render` and `examiner sample`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from simulator.params import ParamSpace, SceneParams, validate_params


def render_scene_file(params_path: str, out_dir: str, clamp: bool = False, config=None) -> dict:
    from simulator.io import load_params, write_sample
    from simulator.overlay import sample_overlay
    from simulator.renderer import render

    params = validate_params(load_params(params_path), clamp=clamp)
    sample = render(params, config)
    stem = Path(params_path).stem
    paths = write_sample(sample, out_dir, stem)
    overlay = Path(out_dir) / f"{stem}_overlay.png"
    sample_overlay(sample).save(overlay)
    paths["overlay"] = str(overlay)
    return paths


def sample_scenes(
    n: int,
    seed: int,
    space: str,
    out_dir: str,
    config=None,
    image_size: int = 256,
    batch: int = 16,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Render n uniformly sampled scenes of `space` (groups) to out_dir with ground truth,
    a contact sheet with skeleton overlays and a manifest."""
    from simulator.io import write_sample
    from simulator.overlay import contact_sheet, sample_overlay
    from simulator.renderer import render_batch

    from simulator.errors import ParamError
    from simulator.params import check_image_size

    if n <= 0:
        raise ParamError(f"--n must be positive, got {n}")
    if seed < 0:
        raise ParamError(f"--seed must be a non-negative integer, got {seed}")
    check_image_size(image_size)
    base = SceneParams().with_values({"camera.width": image_size, "camera.height": image_size})
    ps = ParamSpace.from_groups(space, base=base)
    rng = np.random.default_rng(seed)
    U = ps.sample(rng, n)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overlays = []
    t0 = time.perf_counter()
    plausible = 0
    for start in range(0, n, batch):
        params = [ps.to_params(u) for u in U[start:start + batch]]
        for i, s in enumerate(render_batch(params, config)):
            k = start + i
            write_sample(s, out, f"{k:05d}")
            plausible += bool(s.plausible)
            if len(overlays) < 64:
                overlays.append(sample_overlay(s))
        if on_progress:
            on_progress(len(params))
    elapsed = time.perf_counter() - t0
    sheet = out / "contact_sheet.png"
    contact_sheet(overlays, columns=min(8, max(1, int(np.ceil(np.sqrt(len(overlays))))))).save(sheet)
    manifest = {
        "n": n,
        "seed": seed,
        "space": ps.to_dict(),
        "vectors": U.tolist(),
        "plausible": plausible,
        "seconds": round(elapsed, 3),
        "contact_sheet": sheet.name,
        "versions": versions(),
    }
    renderer = getattr(config, "renderer", "pyrender")
    if renderer != "pyrender":  # pyrender manifests stay as they were
        manifest["renderer"] = {"name": renderer, "samples": config.blender_samples}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"out": str(out), "contact_sheet": str(sheet), "n": n, "plausible": plausible, "seconds": elapsed}


SIMULATOR_PACKAGES = ("poseexaminer", "anny", "pyrender-maintained", "torch", "numpy")


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    """{"python": version, package: installed version or "not installed", ...} in the given
    order: the one recipe behind every `versions` stored with runs, datasets and models."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def versions() -> dict[str, str]:
    """The simulator's package versions (stored with rendered scenes)."""
    return package_versions(SIMULATOR_PACKAGES)
