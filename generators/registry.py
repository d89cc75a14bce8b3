"""Registry of dataset generators: name -> how to configure, render and merge one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


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


def _dense() -> GeneratorSpec:
    from generators import dense

    return dense.SPEC


def _anomaly() -> GeneratorSpec:
    from generators import anomaly

    return anomaly.SPEC


def _finetune() -> GeneratorSpec:
    from generators import finetune

    return finetune.SPEC


_FACTORIES: dict[str, Callable[[], GeneratorSpec]] = {"dense": _dense, "anomaly": _anomaly, "finetune": _finetune}


class _Lazy(dict):
    """Imports a generator module on first lookup."""

    def __missing__(self, key: str) -> GeneratorSpec:
        if key not in _FACTORIES:
            raise KeyError(key)
        spec = _FACTORIES[key]()
        self[key] = spec
        return spec

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __iter__(self):
        return iter(_FACTORIES)

    def __len__(self) -> int:
        return len(_FACTORIES)


GENERATORS: dict[str, GeneratorSpec] = _Lazy()


def register_generator(name: str, factory: Callable[[], GeneratorSpec]) -> None:
    _FACTORIES[name] = factory
    GENERATORS.pop(name, None)


def available_generators() -> list[str]:
    return sorted(_FACTORIES)
