"""What every generator shares: the common config, the per-process writer interface, the
generator spec, per-sample seeds and the shard files (`generators.engine` drives them;
`generators.registry` names the generators).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from examiner.store import atomic_write_bytes  # one atomic-write implementation
from generators.errors import GeneratorError

DATASET_FORMAT = "poseexaminer-dataset"
DATASET_VERSION = 1
MANIFEST = "manifest.json"
INDEX = "index.json"
SHARDS = "shards"
SHARD_FILE = "shard.json"


# --------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------


def sample_seed_sequence(seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of sample `index` (equal to SeedSequence(seed).spawn(index + 1)[index])."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(index),))


def sample_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(sample_seed_sequence(seed, index))


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary name, fsync, rename over `path`: readers see old or new."""
    atomic_write_bytes(path, text.encode())


def dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, allow_nan=False, separators=(",", ":") if indent is None else None)


def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def shard_dir(out: Path, k: int) -> Path:
    return Path(out) / SHARDS / shard_name(k)


def complete_shards(out: Path) -> dict[int, Path]:
    """Shards whose directory was renamed into place (their shard.json is inside)."""
    root = Path(out) / SHARDS
    found: dict[int, Path] = {}
    if not root.is_dir():
        return found
    for d in root.iterdir():
        if d.is_dir() and d.name.startswith("shard-") and (d / SHARD_FILE).is_file():
            found[int(d.name.split("-")[1])] = d
    return found


def remove_partial_shards(out: Path) -> int:
    root = Path(out) / SHARDS
    n = 0
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith(".shard-") and ".partial" in d.name:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
    return n


def read_shard(d: Path) -> dict:
    return json.loads((Path(d) / SHARD_FILE).read_text())


def iter_shards(out: Path) -> Iterable[dict]:
    """Complete shards in order (their shard.json contents)."""
    for k, d in sorted(complete_shards(out).items()):
        yield read_shard(d)


# --------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommonConfig:
    """What every dataset shares. n: samples; seed: root seed; shard_size: samples per
    shard; size: image width and height (pixels); image_format: jpg or png; jpeg_quality;
    gl: OpenGL backend (auto, egl, osmesa); renderer: pyrender or blender (the RGB from
    Blender Cycles, the ground truth from pyrender at the same camera; dense and finetune
    datasets)."""

    n: int = 100
    seed: int = 0
    shard_size: int = 64
    size: int = 256
    image_format: str = "jpg"
    jpeg_quality: int = 95
    gl: str = "auto"
    renderer: str = "pyrender"

    def check(self) -> None:
        if self.renderer != "pyrender":
            from simulator.renderer import check_renderer

            check_renderer(self.renderer)
        if self.n < 1:
            raise GeneratorError(f"--n must be at least 1, got {self.n}")
        if self.shard_size < 1:
            raise GeneratorError(f"--shard-size must be at least 1, got {self.shard_size}")
        if not 16 <= self.size <= 4096:
            raise GeneratorError(f"--size must be between 16 and 4096 pixels, got {self.size}")
        if self.image_format not in ("jpg", "png"):
            raise GeneratorError(f"--image-format must be jpg or png, got {self.image_format!r}")


def config_to_dict(config) -> dict:
    d = asdict(config)
    if d.get("renderer") == "pyrender":  # pyrender dataset manifests stay as they were
        del d["renderer"]
    return d


def blender_recolour(config, renderer):
    """sample -> sample with the RGB redrawn by Blender (config.renderer == "blender") from
    the scene `renderer` (a pyrender Renderer) has just rendered; identity for pyrender.
    Call it right after the render, while `renderer.last_scene` is that scene."""
    if getattr(config, "renderer", "pyrender") == "pyrender":
        return lambda sample: sample
    from simulator.blender.client import BlenderRGB
    from simulator.renderer import RenderConfig

    redraw = BlenderRGB(RenderConfig(renderer="blender", gl_backend=config.gl))
    renderer.rgb_redrawn = True  # background.kind "hdri" is Blender's to draw
    return lambda sample: redraw.apply(renderer, sample)


def config_from_dict(cls, d: dict):
    names = {f.name for f in fields(cls)}
    kw = {k: (tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v)
          for k, v in d.items() if k in names}
    return cls(**kw)


class SampleWriter:
    """Per-process state of a generator (renderer, charts ...).

    `write_batch(indices, rngs, shard_dir, rel_dir)` renders the samples `indices` (each
    drawing only from its own rng), writes their files under `shard_dir` (named relative
    to the dataset root through `rel_dir`) and returns their JSON records. The result must
    not depend on how samples are grouped into batches. `batch_size`: samples per call."""

    batch_size: int = 1

    def write(self, index: int, rng: np.random.Generator, shard_dir: Path, rel_dir: str) -> dict:  # pragma: no cover
        raise NotImplementedError

    def write_batch(self, indices, rngs, shard_dir: Path, rel_dir: str) -> list[dict]:
        return [self.write(i, r, shard_dir, rel_dir) for i, r in zip(indices, rngs)]


@dataclass(frozen=True)
class GeneratorSpec:
    """config_class: the generator's frozen config dataclass; writer(config) builds the
    per-process SampleWriter; prepare(config) validates inputs before any work (raises
    GeneratorError); finalize(config, out) merges the shards into the dataset's top-level
    files and returns their names; layout: a description of the files, for the manifest."""

    name: str
    config_class: type
    writer: Callable[[Any], Any]
    prepare: Callable[[Any], None]
    finalize: Callable[[Any, Any], dict]
    layout: dict
